"""A character-level language model: a causal Transformer block trained on bundled nursery rhymes.

Every training sample is a window of SEQLEN characters of the text, the target the same window
shifted by one character: the model predicts, at each position, the next character from the
ones before it.  ``use_causal_mask=True`` in MultiHeadAttention keeps position t from seeing
positions after t, so one window trains SEQLEN predictions at once.  ``generate(prompt, n,
temperature)`` samples n characters one at a time: the prompt's last SEQLEN characters go in,
the distribution at the last real position is divided by the temperature (low: nearly greedy,
high: more random) and one character is drawn from it.  A shorter context is padded on the
right: under the causal mask the padding after a position cannot change its prediction.

This is plain Keras code:
    python -m axone run examples/char_lm.py     # keras -> axone
    python examples/char_lm.py                  # the same (installs the alias)
    EXAMPLE_BACKEND=keras KERAS_BACKEND=torch python examples/char_lm.py
Options: --epochs N  --seqlen N  --quick (a short run, for tests)
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
if os.environ.get("EXAMPLE_BACKEND") != "keras":
    from axone.compat import install_keras_alias
    install_keras_alias()

import numpy as np

import keras
from keras import layers, ops

from axone.datasets import text_corpus   # NumPy only: the same text under either backend


class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        positions = self.pos_emb(ops.arange(start=0, stop=ops.shape(x)[-1], step=1))
        return self.token_emb(x) + positions


class CausalTransformerBlock(layers.Layer):
    """Post-norm Transformer block whose attention sees only earlier positions."""

    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.0, **kwargs):
        super().__init__(**kwargs)
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim // num_heads,
                                             dropout=rate)
        self.ffn = keras.Sequential(
            [layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)

    def call(self, inputs, training=None):
        attn_output = self.att(inputs, inputs, use_causal_mask=True, training=training)
        out1 = self.layernorm1(inputs + attn_output)
        return self.layernorm2(out1 + self.ffn(out1))


class CharVocabulary:
    """The text's characters, sorted; id i is ``chars[i]``."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        try:
            return np.array([self.index[c] for c in text], dtype="int32")
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in ids)


def make_windows(ids, seqlen, step):
    """Inputs (n, seqlen) and next-character targets (n, seqlen) from windows every ``step``."""
    starts = np.arange(0, len(ids) - seqlen - 1, step)
    x = np.stack([ids[s:s + seqlen] for s in starts])
    y = np.stack([ids[s + 1:s + seqlen + 1] for s in starts])
    return x, y


def build_model(vocab_size, seqlen, embed_dim=64, num_heads=4, ff_dim=128):
    inputs = layers.Input(shape=(seqlen,), dtype="int32")
    x = TokenAndPositionEmbedding(seqlen, vocab_size, embed_dim)(inputs)
    x = CausalTransformerBlock(embed_dim, num_heads, ff_dim)(x)
    outputs = layers.Dense(vocab_size)(x)               # logits at every position
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def sample_index(logits, temperature, rng):
    """One draw from softmax(logits / temperature); temperature 0 takes the argmax."""
    if temperature == 0:
        return int(np.argmax(logits))
    z = np.asarray(logits, dtype=np.float64) / temperature
    p = np.exp(z - z.max())
    return int(rng.choice(len(p), p=p / p.sum()))


def generate(model, vocab, prompt, n, temperature=1.0, seed=0):
    """``prompt`` followed by ``n`` sampled characters (returns only the n new ones)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"generate: n must be a non-negative integer, received {n!r}")
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"generate: temperature must be a number >= 0, received {temperature!r}")
    if not prompt:
        raise ValueError("generate: prompt must be a non-empty string")
    seqlen = model.inputs[0].shape[1]
    rng = np.random.default_rng(seed)
    ids = list(vocab.encode(prompt))
    out = []
    for _ in range(n):
        context = ids[-seqlen:]
        window = np.zeros((1, seqlen), dtype="int32")
        window[0, :len(context)] = context              # right padding: masked out causally
        logits = ops.convert_to_numpy(model(window, training=False))[0, len(context) - 1]
        nxt = sample_index(logits, temperature, rng)
        ids.append(nxt)
        out.append(nxt)
    return vocab.decode(out)


def main(argv=None):
    p = argparse.ArgumentParser(description="character-level language model, causal Transformer")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seqlen", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="a short run (3 epochs, windows every 4)")
    args = p.parse_args(argv)
    step = 4 if args.quick else 1
    if args.quick:
        args.epochs = 3
    keras.utils.set_random_seed(0)
    print("running on", "axone" if getattr(keras, "__axone_alias__", False)
          else f"Keras {keras.__version__} ({keras.backend.backend()} backend)")
    text = text_corpus.load_rhymes()
    vocab = CharVocabulary(text)
    x, y = make_windows(vocab.encode(text), args.seqlen, step)
    print(f"{len(text)} characters, {len(vocab)} distinct, {len(x)} windows of {args.seqlen}")
    model = build_model(len(vocab), args.seqlen)
    model.summary()
    first = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, batch_size=32, epochs=args.epochs, verbose=2)
    last = model.evaluate(x, y, verbose=0)
    print(f"loss before training {first:.3f} (uniform: {np.log(len(vocab)):.3f}), after {last:.3f}")
    samples = {}
    for temperature in (0.2, 0.8):
        s = generate(model, vocab, "Twinkle, ", 80, temperature=temperature)
        samples[temperature] = s
        print(f"temperature {temperature}: Twinkle, {s!r}")
    return {"loss_before": float(first), "loss_after": float(last),
            "history": history.history["loss"], "model": model, "vocab": vocab,
            "samples": samples}


if __name__ == "__main__":
    main()
