"""Embedding (integer indices → dense vectors), ReversibleEmbedding and Masking."""
import numpy as np

from .. import constraints, initializers, ops, regularizers
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..device import array_module
from .base import Layer, _is_symbolic

__all__ = ["Embedding", "Masking", "ReversibleEmbedding"]


class EmbeddingLookup(Function):
    """y[…] = E[idx[…]];  dL/dE[v] = Σ over positions holding v of dL/dy (sorted segment sums
    on the host; on a device, a scatter-add ``xp.add.at`` into the zero table, as CuPy has no
    ``reduceat``)."""

    def forward(self, table):
        self.vocab = table.shape[0]
        return table[self.idx]

    def backward(self, g):
        d = g.shape[-1]
        flat = self.idx.reshape(-1)
        gg = g.reshape(-1, d)
        xp = array_module(g, flat)
        if xp is not np:
            if array_module(flat) is not xp:      # host indices next to a device gradient
                flat = xp.asarray(flat)
            out = xp.zeros((self.vocab, d), dtype=g.dtype)
            xp.add.at(out, flat, gg)
            return (out,)
        order = np.argsort(flat, kind="stable")
        sidx = flat[order]
        uniq, starts = np.unique(sidx, return_index=True)
        out = np.zeros((self.vocab, d), dtype=g.dtype)
        if uniq.size:
            out[uniq] = np.add.reduceat(gg[order], starts, axis=0)
        return (out,)


class Embedding(Layer):
    """Turns integer indices in [0, input_dim) into vectors of size output_dim.

    Args:
        input_dim: vocabulary size.  output_dim: embedding size.
        embeddings_initializer: default "uniform" (U(−0.05, 0.05)).
        mask_zero: treat index 0 as padding: the output carries a mask (index != 0) that
            recurrent layers and losses honour.
    Weight: embeddings (input_dim, output_dim).
    """

    _autocast = False
    _produces_mask = True

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 weights=None, lora_rank=None, input_length=None, quantization_config=None,
                 **kwargs):
        super().__init__(**kwargs)
        if quantization_config is not None:
            raise NotImplementedError(f"Embedding {self.name!r}: quantization_config is not "
                                      f"supported by axone (received {quantization_config!r})")
        for n, v in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"Embedding {self.name!r}: {n} must be a positive integer, received {v!r}")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        if lora_rank is not None:
            raise NotImplementedError(f"Embedding {self.name!r}: lora_rank is not supported by axone "
                                      f"(received {lora_rank!r}); Dense supports it")
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.input_length = input_length
        self._initial_weights = weights

    def build(self, input_shape=None):
        self.embeddings = self.add_weight((self.input_dim, self.output_dim), self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint, name="embeddings")
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
        self.built = True

    def _indices(self, inputs):
        idx = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
        if idx.dtype.kind == "f":
            if idx.size and not (idx % 1 == 0).all():       # on the indices' device
                bad = idx[idx % 1 != 0].reshape(-1)[0]
                raise ValueError(f"Embedding {self.name!r}: expected integer indices, received "
                                 f"non-integer values of dtype {idx.dtype} (e.g. {bad})")
            idx = idx.astype(np.int64)
        elif idx.dtype.kind not in "iub":
            raise TypeError(f"Embedding {self.name!r}: expected integer indices, received dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.input_dim):
            raise ValueError(f"Embedding {self.name!r}: indices must lie in [0, {self.input_dim}) "
                             f"(input_dim), received values from {idx.min()} to {idx.max()}")
        return idx.astype(np.int64, copy=False)

    def call(self, inputs):
        return EmbeddingLookup.apply(self.embeddings, idx=self._indices(inputs))

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        idx = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
        return idx != 0

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def _output_dtype(self):
        return self.dtype

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"input_dim": self.input_dim, "output_dim": self.output_dim,
                    "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                    "embeddings_regularizer": None if self.embeddings_regularizer is None else
                    regularizers.serialize(self.embeddings_regularizer),
                    "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
                    "mask_zero": self.mask_zero, "quantization_config": None})
        cfg.setdefault("activity_regularizer", None)
        return cfg


class Masking(Layer):
    """Masks time steps whose features all equal ``mask_value``: they are skipped downstream."""

    supports_masking = True
    _produces_mask = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def compute_mask(self, inputs, mask=None):
        # the array's own method: on the inputs' device (NumPy or CuPy)
        return (inputs.data != self.mask_value).any(axis=-1)

    def call(self, inputs):
        keep = (inputs.data != self.mask_value).any(axis=-1, keepdims=True)
        return inputs * keep.astype(inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg["mask_value"] = self.mask_value
        return cfg


class ReversibleEmbedding(Embedding):
    """An Embedding that can also project back to the vocabulary: ``layer(ids)`` embeds,
    ``layer(hidden, reverse=True)`` gives logits hidden·Eᵀ (``tie_weights=True``, the default) or
    hidden·R with its own weight ``reverse_embeddings`` (output_dim, input_dim).

    Args (Keras's): input_dim, output_dim, tie_weights, embeddings initializer / regularizer /
    constraint, mask_zero, reverse_dtype (the dtype of the reverse product), logit_soft_cap
    (logits ← c·tanh(logits / c)).
    """

    def __init__(self, input_dim, output_dim, tie_weights=True, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 reverse_dtype=None, logit_soft_cap=None, **kwargs):
        super().__init__(input_dim, output_dim, embeddings_initializer=embeddings_initializer,
                         embeddings_regularizer=embeddings_regularizer,
                         embeddings_constraint=embeddings_constraint, mask_zero=mask_zero, **kwargs)
        self.tie_weights = bool(tie_weights)
        if reverse_dtype is not None:
            try:
                reverse_dtype = str(np.dtype(reverse_dtype))
            except TypeError:
                raise ValueError(f"ReversibleEmbedding {self.name!r}: reverse_dtype must be a float "
                                 f"dtype NumPy knows (float16, float32, float64), received "
                                 f"{reverse_dtype!r}") from None
            if np.dtype(reverse_dtype).kind != "f":
                raise ValueError(f"ReversibleEmbedding {self.name!r}: reverse_dtype must be a float "
                                 f"dtype, received {reverse_dtype!r}")
        self.reverse_dtype = reverse_dtype
        if logit_soft_cap is not None and not float(logit_soft_cap) > 0:
            raise ValueError(f"ReversibleEmbedding {self.name!r}: logit_soft_cap must be positive, "
                             f"received {logit_soft_cap!r}")
        self.logit_soft_cap = logit_soft_cap
        self._reverse = False

    def build(self, input_shape=None):
        super().build(input_shape)
        if not self.tie_weights:
            self.reverse_embeddings = self.add_weight(
                (self.output_dim, self.input_dim), self.embeddings_initializer,
                name="reverse_embeddings")
        self.built = True

    def __call__(self, inputs, *args, reverse=False, **kwargs):
        if not reverse:
            return super().__call__(inputs, *args, **kwargs)
        if not _is_symbolic(inputs):
            # an eager reverse call: logits, no mask (and no state on the layer, so threads may
            # share it)
            kwargs.pop("training", None)
            if args or kwargs:
                raise TypeError(f"ReversibleEmbedding {self.name!r}: unexpected arguments "
                                f"{sorted(kwargs) or args} in a reverse call")
            x = self._convert_input(inputs)
            if not self.built:
                self._maybe_build(None)
            y = self.call(x, reverse=True)
            if self.activity_regularizer is not None:
                self._add_activity_penalty(y)
            return y
        # a symbolic reverse call: the flag tells compute_output_shape / _output_dtype
        prev, self._reverse = self._reverse, True
        try:
            return super().__call__(inputs, *args, reverse=True, **kwargs)
        finally:
            self._reverse = prev

    def call(self, inputs, reverse=False):
        if not reverse:
            return super().call(inputs)
        x = inputs if isinstance(inputs, Tensor) else Tensor(np.asarray(inputs))
        if x.dtype.kind != "f":
            raise TypeError(f"ReversibleEmbedding {self.name!r}: a reverse call expects float "
                            f"hidden states, received dtype {x.dtype}")
        if x.ndim < 1 or x.shape[-1] != self.output_dim:
            raise ValueError(f"ReversibleEmbedding {self.name!r}: a reverse call expects inputs "
                             f"whose last axis is output_dim={self.output_dim}, received shape "
                             f"{tuple(x.shape)}")
        kernel = ops.transpose(self.embeddings) if self.tie_weights else self.reverse_embeddings
        if self.reverse_dtype is not None:
            x, kernel = ops.cast(x, self.reverse_dtype), ops.cast(kernel, self.reverse_dtype)
        elif x.dtype != kernel.dtype:
            x = ops.cast(x, kernel.dtype)
        logits = ops.matmul(x, kernel)
        if self.logit_soft_cap is not None:
            c = float(self.logit_soft_cap)
            logits = ops.tanh(logits / c) * c
        return logits

    def compute_mask(self, inputs, mask=None):
        return None if self._reverse else super().compute_mask(inputs, mask)

    def compute_output_shape(self, input_shape, reverse=None):
        reverse = self._reverse if reverse is None else reverse
        if reverse:
            return tuple(input_shape[:-1]) + (self.input_dim,)
        return tuple(input_shape) + (self.output_dim,)

    def _output_dtype(self):
        return (self.reverse_dtype or self.dtype) if self._reverse else self.dtype

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"tie_weights": self.tie_weights, "reverse_dtype": self.reverse_dtype,
                    "logit_soft_cap": self.logit_soft_cap})
        return cfg

