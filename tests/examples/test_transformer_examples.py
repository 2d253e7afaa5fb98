"""examples/transformer_classifier.py, char_lm.py and seq2seq.py with tiny settings, each in a
subprocess (the examples install the keras alias, which must not leak into the test process):
the classifier beats the majority class on held-out sentences, the language model's loss goes
down and its sampler returns strings of the asked length from the vocabulary, the
encoder-decoder's loss goes down and its decoder returns answers of the right form."""
import os
import subprocess
import sys
import textwrap

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO_ROOT, "examples")

PRELUDE = f"""
import os, sys, re
import numpy as np
sys.path.insert(0, {EXAMPLES!r})
"""


def run(body, timeout=240):
    env = dict(os.environ)
    env.pop("EXAMPLE_BACKEND", None)
    code = PRELUDE + textwrap.dedent(body) + "\nprint('CHECKS PASSED')\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "CHECKS PASSED" in proc.stdout, out[-4000:]
    return proc.stdout


def test_transformer_classifier_beats_the_majority_class():
    run("""
        import transformer_classifier as ex
        import keras
        assert getattr(keras, "__axone_alias__", False)
        r = ex.main(["--quick"])
        # held-out accuracy well above the majority class (0.5 here)
        assert r["accuracy"] > r["majority"] + 0.1, r
        assert r["loss"][-1] < r["loss"][0] - 0.05, r["loss"]
        # the layers are the keras.io subclasses, and the block holds attention + 2 norms
        (xt, yt), _ = ex.load_data(40)
        model = ex.build_model(62)
        kinds = [type(l).__name__ for l in model.layers]
        assert "TokenAndPositionEmbedding" in kinds and "TransformerBlock" in kinds, kinds
        assert model.predict(xt, verbose=0).shape == (len(xt), 2)
    """)


def test_char_lm_learns_and_samples():
    run("""
        import char_lm as ex
        from keras import ops
        r = ex.main(["--quick"])
        assert r["loss_after"] < r["loss_before"] - 1.0, r
        assert r["history"][-1] < r["history"][0], r["history"]
        model, vocab = r["model"], r["vocab"]
        for n, t in ((25, 0.8), (1, 1.5), (40, 0.0), (0, 1.0)):
            s = ex.generate(model, vocab, "Jack ", n, temperature=t, seed=3)
            assert isinstance(s, str) and len(s) == n, (n, s)
            assert set(s) <= set(vocab.chars), s
        # greedy sampling is deterministic; a prompt longer than the window uses its tail
        assert ex.generate(model, vocab, "Mary had ", 20, 0.0) == \\
            ex.generate(model, vocab, "Mary had ", 20, 0.0, seed=9)
        long = ex.generate(model, vocab, "Humpty Dumpty sat on a wall, " * 3, 5, 0.0)
        assert len(long) == 5
        # causal: the logits at position t do not depend on the characters after t
        seqlen = model.inputs[0].shape[1]
        a = vocab.encode(ex.text_corpus.load_rhymes()[:seqlen])[None]
        b = a.copy()
        b[0, 10:] = (b[0, 10:] + 1) % len(vocab)
        la = ops.convert_to_numpy(model(a))
        lb = ops.convert_to_numpy(model(b))
        np.testing.assert_allclose(la[0, :10], lb[0, :10], rtol=1e-5, atol=1e-5)
        assert np.abs(la[0, 10:] - lb[0, 10:]).max() > 1e-3
        for bad in (dict(n=-1), dict(n=2.5), dict(temperature=-0.1)):
            kw = dict(n=3, temperature=1.0); kw.update(bad)
            try:
                ex.generate(model, vocab, "Jack", **kw)
            except ValueError as e:
                assert list(bad)[0] in str(e), e
            else:
                raise AssertionError(f"no ValueError for {bad}")
        try:
            ex.generate(model, vocab, "Jack~", 3)
        except ValueError as e:
            assert "'~'" in str(e)
        else:
            raise AssertionError("no ValueError for a character outside the vocabulary")
    """)


def test_seq2seq_learns_and_decodes_answers():
    run("""
        import seq2seq as ex
        r = ex.main(["--quick"])
        loss = r["loss"]
        assert loss[-1] < 0.75 * loss[0], loss
        assert all(b <= a + 1e-3 for a, b in zip(loss, loss[1:])), loss
        decoded, answers, digits = r["decoded"], r["answers"], r["digits"]
        assert len(decoded) == len(r["questions"]) == len(answers)
        # every answer is a string of at most digits + 2 characters of the target alphabet,
        # and most are numbers of the right number of digits
        for d in decoded:
            assert isinstance(d, str) and len(d) <= digits + 2, d
            assert set(d) <= set("0123456789 "), repr(d)
        numbers = [d for d in decoded if re.fullmatch(r"[1-9][0-9]*|0", d)]
        assert len(numbers) >= 0.8 * len(decoded), decoded[:20]
        same_len = np.mean([len(d) == len(a) for d, a in zip(decoded, answers)])
        assert same_len > 0.6, (same_len, decoded[:10], answers[:10])
        # the one-hot encodings put one 1 per position
        enc, dec_in, dec_out = ex.vectorize(["1+2", "10+99"], ["3", "109"], 2)
        assert enc.shape == (2, 5, len(ex.INPUT_CHARS)) and np.all(enc.sum(-1) == 1)
        assert dec_in.shape == dec_out.shape == (2, 4, len(ex.TARGET_CHARS))
        assert ex.TARGET_CHARS[dec_in[1, 0].argmax()] == "\\t"
        assert "".join(ex.TARGET_CHARS[i] for i in dec_out[1].argmax(-1)) == "109\\n"
    """)
