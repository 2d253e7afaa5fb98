"""Text classification with a Transformer block (the keras.io example's form) on bundled reviews.

The reviews are short generated sentences ("the plot was not very good", "the acting was great
but the ending was awful"; see ``axone.datasets.text_corpus.load_sentiment``), labelled 1 when
positive.  "not" and "never" flip a clause and after "but" the second clause decides, so a
model must look at word order and context: self-attention lets every word see the others.
The model is keras.io's: a TokenAndPositionEmbedding layer (word embedding + position
embedding), a TransformerBlock layer (MultiHeadAttention, Add & LayerNormalization, a
two-layer feed-forward network, Add & LayerNormalization, with dropout), GlobalAveragePooling1D
and a small Dense head, trained with sparse categorical cross-entropy.

This is plain Keras code:
    python -m axone run examples/transformer_classifier.py     # keras -> axone
    python examples/transformer_classifier.py                  # the same (installs the alias)
    EXAMPLE_BACKEND=keras KERAS_BACKEND=torch python examples/transformer_classifier.py
Options: --epochs N  --samples N  --quick (a short run, for tests)
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

from axone.datasets import text_corpus   # NumPy only: the same data under either backend

MAXLEN = 16


class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential(
            [layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)

    def call(self, inputs, training=None):
        attn_output = self.att(inputs, inputs)
        attn_output = self.dropout1(attn_output, training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output, training=training)
        return self.layernorm2(out1 + ffn_output)


class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        maxlen = ops.shape(x)[-1]
        positions = ops.arange(start=0, stop=maxlen, step=1)
        positions = self.pos_emb(positions)
        x = self.token_emb(x)
        return x + positions


def load_data(samples, seed=0):
    (x_train, y_train), (x_val, y_val) = text_corpus.load_sentiment(samples, seed=seed,
                                                                    test_split=0.25)
    x_train = text_corpus.texts_to_sequences(x_train, maxlen=MAXLEN)
    x_val = text_corpus.texts_to_sequences(x_val, maxlen=MAXLEN)
    return (x_train, y_train), (x_val, y_val)


def build_model(vocab_size, embed_dim=32, num_heads=2, ff_dim=32):
    inputs = layers.Input(shape=(MAXLEN,))
    embedding_layer = TokenAndPositionEmbedding(MAXLEN, vocab_size, embed_dim)
    x = embedding_layer(inputs)
    transformer_block = TransformerBlock(embed_dim, num_heads, ff_dim)
    x = transformer_block(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(20, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description="review sentiment with a Transformer block")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--samples", type=int, default=8000)
    p.add_argument("--quick", action="store_true", help="a short run (4,000 reviews, 3 epochs)")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.samples = 3, 4000
    keras.utils.set_random_seed(0)
    print("running on", "axone" if getattr(keras, "__axone_alias__", False)
          else f"Keras {keras.__version__} ({keras.backend.backend()} backend)")
    (x_train, y_train), (x_val, y_val) = load_data(args.samples)
    vocab_size = len(text_corpus.sentiment_vocabulary()) + 2
    print(f"{len(x_train)} training sequences, {len(x_val)} validation sequences, vocabulary "
          f"{vocab_size}, {100 * y_train.mean():.0f}% positive")
    model = build_model(vocab_size)
    model.summary()
    history = model.fit(x_train, y_train, batch_size=32, epochs=args.epochs,
                        validation_data=(x_val, y_val), verbose=2)
    loss, acc = model.evaluate(x_val, y_val, verbose=0)
    majority = max(y_val.mean(), 1 - y_val.mean())
    print(f"validation accuracy {acc:.3f} (majority class {majority:.3f}), loss {loss:.4f}")
    for text in ["the plot was not very good", "i never hated this film",
                 "the acting was awful but the ending was brilliant"]:
        prob = model.predict(text_corpus.texts_to_sequences([text], maxlen=MAXLEN), verbose=0)
        print(f"  {text!r}: P(positive) = {float(prob[0, 1]):.3f}")
    return {"accuracy": float(acc), "majority": float(majority),
            "loss": history.history["loss"]}


if __name__ == "__main__":
    main()
