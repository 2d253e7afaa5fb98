"""Sequence to sequence: a character-level LSTM encoder-decoder (keras.io's form) learns addition.

The questions are strings such as "12+345" and the answers their sums "357"
(``axone.datasets.text_corpus.load_addition``: generated, every pair distinct).  As in
keras.io's "character-level recurrent sequence-to-sequence model":
  - the encoder LSTM reads the one-hot question and keeps only its final states (h, c);
  - the decoder LSTM starts from those states and, in training, reads the answer shifted by
    one step ("\\t" start character first: teacher forcing), predicting at each step the next
    character of "answer\\n" ("\\n" ends the answer);
  - for inference the same layers form two models: the encoder (question -> states) and one
    decoder step (character, states -> next-character probabilities, new states); ``decode``
    feeds back the most likely character until "\\n" or a maximum length.

This is plain Keras code:
    python -m axone run examples/seq2seq.py     # keras -> axone
    python examples/seq2seq.py                  # the same (installs the alias)
    EXAMPLE_BACKEND=keras KERAS_BACKEND=torch python examples/seq2seq.py
Options: --epochs N  --samples N  --digits N  --quick (a short run, for tests)
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
from keras import layers

from axone.datasets import text_corpus   # NumPy only: the same data under either backend

START, END = "\t", "\n"
INPUT_CHARS = sorted("0123456789+ ")
TARGET_CHARS = sorted("0123456789 " + START + END)


def one_hot(texts, chars, length):
    """(n, length, len(chars)) float32; positions after a text's end are the " " character."""
    index = {c: i for i, c in enumerate(chars)}
    out = np.zeros((len(texts), length, len(chars)), dtype="float32")
    for i, t in enumerate(texts):
        t = t.ljust(length)
        for j, c in enumerate(t[:length]):
            out[i, j, index[c]] = 1.0
    return out


def vectorize(questions, answers, digits):
    """Encoder input, decoder input ("\\t" + answer) and decoder target (answer + "\\n")."""
    qlen, alen = 2 * digits + 1, digits + 2
    enc = one_hot(questions, INPUT_CHARS, qlen)
    dec_in = one_hot([START + a for a in answers], TARGET_CHARS, alen)
    dec_out = one_hot([a + END for a in answers], TARGET_CHARS, alen)
    return enc, dec_in, dec_out


def build_models(digits, latent_dim=128):
    """(training model, encoder model, decoder step model), sharing their layers."""
    encoder_inputs = keras.Input(shape=(2 * digits + 1, len(INPUT_CHARS)))
    encoder = layers.LSTM(latent_dim, return_state=True)
    _, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]

    decoder_inputs = keras.Input(shape=(digits + 2, len(TARGET_CHARS)))
    decoder_lstm = layers.LSTM(latent_dim, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = layers.Dense(len(TARGET_CHARS), activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3),
                  loss="categorical_crossentropy", metrics=["accuracy"])

    encoder_model = keras.Model(encoder_inputs, encoder_states)
    step_inputs = keras.Input(shape=(1, len(TARGET_CHARS)))       # one character a step
    state_input_h = keras.Input(shape=(latent_dim,))
    state_input_c = keras.Input(shape=(latent_dim,))
    states_inputs = [state_input_h, state_input_c]
    out, h, c = decoder_lstm(step_inputs, initial_state=states_inputs)
    decoder_model = keras.Model([step_inputs] + states_inputs, [decoder_dense(out), h, c])
    return model, encoder_model, decoder_model


def decode(encoder_model, decoder_model, questions, digits):
    """Greedy decoding of a batch of questions: the answers as strings (without "\\n")."""
    enc = one_hot(questions, INPUT_CHARS, 2 * digits + 1)
    h, c = (np.asarray(s) for s in encoder_model.predict(enc, verbose=0))
    n = len(questions)
    target = np.zeros((n, 1, len(TARGET_CHARS)), dtype="float32")
    target[:, 0, TARGET_CHARS.index(START)] = 1.0
    answers, done = [""] * n, np.zeros(n, dtype=bool)
    for _ in range(digits + 2):
        probs, h, c = decoder_model.predict([target, h, c], verbose=0)
        ids = np.argmax(np.asarray(probs)[:, -1], axis=-1)
        target = np.zeros_like(target)
        target[np.arange(n), 0, ids] = 1.0
        for i, k in enumerate(ids):
            ch = TARGET_CHARS[k]
            if done[i]:
                continue
            if ch == END:
                done[i] = True
            else:
                answers[i] += ch
        h, c = np.asarray(h), np.asarray(c)
        if done.all():
            break
    return answers


def main(argv=None):
    p = argparse.ArgumentParser(description="character-level encoder-decoder LSTM for addition")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--samples", type=int, default=20000)
    p.add_argument("--digits", type=int, default=3)
    p.add_argument("--latent", type=int, default=128)
    p.add_argument("--quick", action="store_true",
                   help="a short run (2-digit numbers, 2,000 pairs, 6 epochs, 64 units)")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.samples, args.digits, args.latent = 6, 2000, 2, 64
    keras.utils.set_random_seed(0)
    print("running on", "axone" if getattr(keras, "__axone_alias__", False)
          else f"Keras {keras.__version__} ({keras.backend.backend()} backend)")
    questions, answers = text_corpus.load_addition(args.samples, digits=args.digits)
    cut = int(0.9 * len(questions))
    enc, dec_in, dec_out = vectorize(questions, answers, args.digits)
    print(f"{cut} training pairs, {len(questions) - cut} held out, e.g. "
          f"{questions[0]!r} -> {answers[0]!r}")
    model, encoder_model, decoder_model = build_models(args.digits, args.latent)
    model.summary()
    history = model.fit([enc[:cut], dec_in[:cut]], dec_out[:cut], batch_size=64,
                        epochs=args.epochs, validation_split=0.1, verbose=2)
    held_q, held_a = questions[cut:], answers[cut:]
    decoded = decode(encoder_model, decoder_model, held_q, args.digits)
    exact = float(np.mean([d == a for d, a in zip(decoded, held_a)]))
    for q, a, d in list(zip(held_q, held_a, decoded))[:8]:
        print(f"  {q:>{2 * args.digits + 1}} = {a:<{args.digits + 1}}  model: {d}  "
              f"{'ok' if d == a else 'wrong'}")
    print(f"held-out exact answers: {100 * exact:.1f}%")
    return {"loss": history.history["loss"], "exact": exact, "decoded": decoded,
            "questions": held_q, "answers": held_a, "digits": args.digits}


if __name__ == "__main__":
    main()
