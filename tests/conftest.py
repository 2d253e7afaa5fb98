import os

# Keras 3 parity tests run Keras on its PyTorch backend.
os.environ.setdefault("KERAS_BACKEND", "torch")
