"""Attention layers (Keras's): MultiHeadAttention, GroupedQueryAttention (GroupQueryAttention),
Attention (Luong dot / concat scores) and AdditiveAttention (Bahdanau scores).

MultiHeadAttention and GroupedQueryAttention project query, key and value with EinsumDense
sublayers (Keras's weight names, shapes and order), and attend with the fused
``ops.dot_product_attention`` node when the projections are 4-D (batch, length, heads, dim) and no
scores are returned (with dropout too, unless a query row is masked everywhere: Keras's masked
softmax gives that row zeros); otherwise with einsum products and Keras's masked softmax (masked
logits set to −1e9, masked probabilities to 0).
They are called as ``layer(query, value, key=None, ...)``: ``value`` and ``key`` may be symbolic
tensors of a functional graph too, and their masks (``_keras_mask``) become ``value_mask`` /
``key_mask`` as in Keras.
"""
import math
import string

import numpy as np

from .. import backend, constraints, initializers, ops, regularizers
from ..autograd.tensor import Tensor
from ..ops.attention import attention_core, causal_mask
from .base import KerasTensor, Layer, _is_symbolic
from .einsum_dense import EinsumDense

__all__ = ["MultiHeadAttention", "GroupedQueryAttention", "GroupQueryAttention", "Attention",
           "AdditiveAttention"]


def _ser(x, mod):
    return None if x is None else mod.serialize(x)


def _arr(x):
    if x is None:
        return None
    return np.asarray(x.data if isinstance(x, Tensor) else x)


def _bool(x):
    a = _arr(x)
    return a if a is None or a.dtype == bool else a != 0


def _letters(i):
    return string.ascii_lowercase[i]


def _proj_equation(free_dims, bound_dims, output_dims):
    """Keras's projection equation: free letters kept, bound letters contracted with the kernel,
    output letters made by it (the bias spans those)."""
    inp = ker = out = ""
    for i in range(free_dims):
        inp += _letters(i)
        out += _letters(i)
    for i in range(bound_dims):
        c = _letters(free_dims + i)
        inp += c
        ker += c
    bias = ""
    for i in range(output_dims):
        c = _letters(free_dims + bound_dims + i)
        ker += c
        out += c
        bias += c
    return f"{inp},{ker}->{out}", bias, len(out)


def _attention_equations(rank, attn_axes):
    """Scores and combine equations over projected tensors of ``rank`` (…, heads, dim) attending
    over ``attn_axes``: scores = einsum(dot, key, query), output = einsum(combine, p, value)."""
    target = "".join(_letters(i) for i in range(rank))
    batch = [i for i in range(rank) if i not in attn_axes and i != rank - 1]
    off = rank
    source = ""
    for i in range(rank):
        if i in batch or i == rank - 1:
            source += target[i]
        else:
            source += _letters(off)
            off += 1
    product = "".join([target[i] for i in batch] + [target[i] for i in attn_axes] +
                      [source[i] for i in attn_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


def _no_dead_rows(mask):
    """No query row of the (…, T, S) mask is masked everywhere."""
    return mask is None or bool(np.all(np.any(mask, axis=-1)))


def _masked_softmax(scores, keep, axis=-1):
    """Keras's ``Softmax`` layer with a mask: p = softmax(where(keep, s, −1e9)), then
    p ← where(keep, p, 0), so a row masked everywhere gives zeros (not a uniform row)."""
    if keep is None:
        return ops.softmax(scores, axis=axis)
    neg = scores.dtype.type(-3e4 if scores.dtype == np.float16 else -1e9)
    keep = np.broadcast_to(keep, scores.shape)
    p = ops.softmax(ops.where(keep, scores, neg), axis=axis)
    return p * keep.astype(p.dtype)


class _QueryValueAttention(Layer):
    """Shared by MultiHeadAttention and GroupedQueryAttention: the call convention
    ``layer(query, value, key=None, **call_args)`` on arrays, Tensors or symbolic tensors, the
    automatic masks, the mask and dropout helpers."""

    supports_masking = True

    def __call__(self, query, value=None, key=None, **kwargs):
        if value is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: call(query, value, key=None, "
                             f"...) needs a value tensor")
        training = kwargs.pop("training", None)
        if kwargs.get("query_mask") is None and getattr(query, "_keras_mask", None) is not None:
            kwargs["query_mask"] = query._keras_mask
        if kwargs.get("value_mask") is None and getattr(value, "_keras_mask", None) is not None:
            kwargs["value_mask"] = value._keras_mask
        if key is not None and kwargs.get("key_mask") is None and \
                getattr(key, "_keras_mask", None) is not None:
            kwargs["key_mask"] = key._keras_mask
        symbolic = _is_symbolic([query, value, key])
        if not symbolic:
            value = self._convert_input(value)
            key = None if key is None else self._convert_input(key)
        qs = tuple(query.shape) if hasattr(query, "shape") else np.shape(query)
        vs = tuple(value.shape)
        ks = None if key is None else tuple(key.shape)
        self._check_inputs(qs, vs, ks)
        if not self.built:
            self.build(qs, vs, ks)
            self.built = True
            self._build_shapes = {"query_shape": qs, "value_shape": vs}
            if ks is not None:
                self._build_shapes["key_shape"] = ks
        self._pending = (vs, ks, bool(kwargs.get("return_attention_scores", False)))
        kwargs["value"] = value
        if key is not None:
            kwargs["key"] = key
        if symbolic and not isinstance(query, KerasTensor):
            raise TypeError(f"{type(self).__name__} {self.name!r}: with symbolic value/key the "
                            f"query must be symbolic too, received {type(query).__name__}")
        return super().__call__(query, training=training, **kwargs)

    def compute_output_spec(self, query, value, key=None, return_attention_scores=False,
                            **kwargs):
        """KerasTensors of the output (and of the scores when ``return_attention_scores``)."""
        qs, vs = tuple(query.shape), tuple(value.shape)
        ks = None if key is None else tuple(key.shape)
        self._check_inputs(qs, vs, ks)
        if not self.built:
            self.build(qs, vs, ks)
            self.built = True
        out = KerasTensor(self._output_shape_for(qs, vs, ks), dtype=self.dtype)
        if return_attention_scores:
            return out, KerasTensor(self._scores_shape(qs, vs if ks is None else ks),
                                    dtype=self.dtype)
        return out

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        pending = self.__dict__.get("_pending")
        if value_shape is None:
            if pending is None:
                raise ValueError(f"{type(self).__name__} {self.name!r}: compute_output_shape needs "
                                 f"query_shape and value_shape")
            value_shape, key_shape, scores = pending
        else:
            scores = False
        out = self._output_shape_for(tuple(query_shape), tuple(value_shape),
                                     None if key_shape is None else tuple(key_shape))
        if scores:
            ks = tuple(value_shape if key_shape is None else key_shape)
            return out, self._scores_shape(tuple(query_shape), ks)
        return out

    def compute_mask(self, inputs, mask=None):
        return mask

    def _check_inputs(self, qs, vs, ks):
        """query, value and key: the same rank (3 or more) and batch size."""
        named = (("query", qs), ("value", vs)) + ((("key", ks),) if ks is not None else ())
        if len(qs) < 3 or any(len(s) != len(qs) for _, s in named):
            raise ValueError(f"{type(self).__name__} {self.name!r}: query, value and key must have "
                             f"one rank, rank 3 or more (batch, …, features); received "
                             + ", ".join(f"{n} shape {s}" for n, s in named))
        batches = {s[0] for _, s in named if s[0] is not None}
        if len(batches) > 1:
            raise ValueError(f"{type(self).__name__} {self.name!r}: query, value and key must have "
                             f"the same batch size; received "
                             + ", ".join(f"{n} shape {s}" for n, s in named))

    def get_build_config(self):
        """Keras's ``{"shapes_dict": {"query_shape", "value_shape"(, "key_shape")}}``."""
        shapes = self.__dict__.get("_build_shapes")
        return None if shapes is None else {"shapes_dict": {k: tuple(v) for k, v in shapes.items()}}

    # --------------------------------------------------------------- helpers
    def _prefix_paths(self):
        """Sublayer weights named under this layer, as Keras: ``mha/query/kernel``."""
        for layer in self._sublayers:
            for w in layer.weights:
                w.path = f"{self.name}/{layer.name}/{w.name}"

    def _seed_rng(self):
        rng = self.__dict__.get("_rng")
        if rng is None:
            rng = np.random.default_rng(self.seed) if self.seed is not None else None
            self._rng = rng
        return rng if rng is not None else backend.rng()

    def _drop_mask(self, shape, dtype, rate):
        keep = self._seed_rng().random(shape, dtype=np.float64 if dtype == np.float64 else np.float32) >= rate
        return keep.astype(dtype) * dtype.type(1.0 / (1.0 - rate))

    def _attention_mask(self, q_len, v_len, query_mask, value_mask, key_mask, attention_mask,
                        use_causal_mask, sliding_window):
        """Keras's combined boolean mask (…, T, S), or None."""
        try:
            return self._combine_masks(q_len, v_len, query_mask, value_mask, key_mask,
                                       attention_mask, use_causal_mask, sliding_window)
        except ValueError:
            shapes = {n: None if m is None else np.shape(_arr(m)) for n, m in (
                ("query_mask", query_mask), ("value_mask", value_mask), ("key_mask", key_mask),
                ("attention_mask", attention_mask))}
            raise ValueError(f"{type(self).__name__} {self.name!r}: the masks do not broadcast "
                             f"together (query_mask (B, T), value_mask / key_mask (B, S), "
                             f"attention_mask (B, T, S) with T = {q_len}, S = {v_len}); received "
                             f"{ {n: s for n, s in shapes.items() if s is not None} }") from None

    def _combine_masks(self, q_len, v_len, query_mask, value_mask, key_mask, attention_mask,
                       use_causal_mask, sliding_window):
        auto = None
        if query_mask is not None:
            auto = _bool(query_mask)[..., :, None]
        for m in (value_mask, key_mask):
            if m is not None:
                m = _bool(m)[..., None, :]
                auto = m if auto is None else auto & m
        if use_causal_mask:
            c = causal_mask(q_len, v_len)[None]
            auto = c if auto is None else auto & c
        if sliding_window is not None:
            r = np.arange(q_len)[:, None]
            c = np.arange(v_len)[None, :]
            w = (np.abs(r - c) < sliding_window)[None]
            auto = w if auto is None else auto & w
        if attention_mask is not None:
            attention_mask = _bool(attention_mask)
        if auto is not None:
            attention_mask = auto if attention_mask is None else attention_mask & auto
        return attention_mask

    def _check_mask(self, mask, shape):
        """The combined mask must broadcast to the scores (as Keras's Softmax requires)."""
        ok = mask.ndim <= len(shape) and all(
            m in (1, s) for m, s in zip(mask.shape[::-1], shape[::-1]))
        if not ok:
            raise ValueError(f"{type(self).__name__} {self.name!r}: the attention mask must "
                             f"broadcast to the attention scores {tuple(shape)}, received mask "
                             f"shape {tuple(mask.shape)}")


class MultiHeadAttention(_QueryValueAttention):
    """Multi-head attention (Vaswani et al., 2017) with Keras's arguments and weights.

    Args: num_heads, key_dim (size of each query/key head), value_dim (default key_dim),
    dropout (on the attention probabilities), use_bias, output_shape (default: the query's
    last dim), attention_axes (default: every axis between the batch and the features),
    sliding_window, flash_attention (None/False), kernel/bias initializers, regularizers and
    constraints, activity_regularizer (on the projections), use_gate (a sigmoid gate on the
    attended values), seed (of the dropout masks).
    Call: ``layer(query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
    attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False)``.
    Weights: query, key, (gate,) value, attention_output EinsumDense kernels and biases.
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, attention_axes=None, sliding_window=None, flash_attention=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, use_gate=False, seed=None, **kwargs):
        for n, v in (("num_heads", num_heads), ("key_dim", key_dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"MultiHeadAttention: {n} must be a positive integer, received "
                                 f"{n}={v!r}")
        if value_dim is not None and (isinstance(value_dim, bool) or not isinstance(value_dim, int)
                                      or value_dim <= 0):
            raise ValueError(f"MultiHeadAttention: value_dim must be a positive integer or None, "
                             f"received value_dim={value_dim!r}")
        super().__init__(**kwargs)
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"MultiHeadAttention {self.name!r}: dropout must be a float in [0, 1), "
                             f"received {dropout!r}")
        self._num_heads, self._key_dim = num_heads, key_dim
        self._value_dim = value_dim if value_dim else key_dim
        self._dropout, self._use_bias, self._use_gate = float(dropout), bool(use_bias), bool(use_gate)
        if output_shape:
            if isinstance(output_shape, int):
                output_shape = (output_shape,)
            try:
                output_shape = tuple(int(d) for d in output_shape)
            except (TypeError, ValueError):
                raise ValueError(f"MultiHeadAttention {self.name!r}: output_shape must be an int, "
                                 f"tuple or list, received {output_shape!r}") from None
        self._output_shape = output_shape or None
        if flash_attention:
            raise NotImplementedError(f"MultiHeadAttention {self.name!r}: flash_attention=True is "
                                      f"not supported by axone")
        self._flash_attention = flash_attention
        self._kernel_initializer = initializers.get(kernel_initializer)
        self._bias_initializer = initializers.get(bias_initializer)
        self._kernel_regularizer = regularizers.get(kernel_regularizer)
        self._bias_regularizer = regularizers.get(bias_regularizer)
        self._activity_regularizer = regularizers.get(activity_regularizer)
        self._kernel_constraint = constraints.get(kernel_constraint)
        self._bias_constraint = constraints.get(bias_constraint)
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        elif attention_axes is not None and not isinstance(attention_axes, (list, tuple)):
            raise ValueError(f"MultiHeadAttention {self.name!r}: attention_axes must be an int, "
                             f"list or tuple, received {attention_axes!r}")
        self._attention_axes = None if attention_axes is None else tuple(attention_axes)
        if sliding_window is not None and (isinstance(sliding_window, bool) or
                                           not isinstance(sliding_window, int) or sliding_window <= 0):
            raise ValueError(f"MultiHeadAttention {self.name!r}: sliding_window must be None or a "
                             f"positive integer, received {sliding_window!r}")
        self._sliding_window = sliding_window
        self.seed = seed
        self._inverse_sqrt_key_dim = 1.0 / math.sqrt(float(key_dim))

    num_heads = property(lambda self: self._num_heads)
    key_dim = property(lambda self: self._key_dim)
    value_dim = property(lambda self: self._value_dim)
    dropout = property(lambda self: self._dropout)
    use_bias = property(lambda self: self._use_bias)
    attention_axes = property(lambda self: self._attention_axes)

    def _common(self):
        return dict(kernel_initializer=initializers.get(initializers.serialize(self._kernel_initializer)),
                    bias_initializer=initializers.get(initializers.serialize(self._bias_initializer)),
                    kernel_regularizer=self._kernel_regularizer, bias_regularizer=self._bias_regularizer,
                    activity_regularizer=self._activity_regularizer,
                    kernel_constraint=self._kernel_constraint, bias_constraint=self._bias_constraint,
                    dtype=self.dtype)

    def _proj(self, rank, dims, name, activation=None):
        eq, bias, out_rank = _proj_equation(rank - 1, 1, 2)
        return EinsumDense(eq, output_shape=[None] * (out_rank - 1 - 2) + list(dims),
                           bias_axes=bias if self._use_bias else None, name=name,
                           activation=activation, **self._common())

    def build(self, query_shape, value_shape, key_shape=None):
        query_shape, value_shape = tuple(query_shape), tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(f"MultiHeadAttention {self.name!r}: all dimensions of value and key, "
                             f"except the last one, must be equal; received value_shape="
                             f"{value_shape} and key_shape={key_shape}")
        if len(query_shape) < 3:
            raise ValueError(f"MultiHeadAttention {self.name!r}: query must have rank 3 or more "
                             f"(batch, …, features), received shape {query_shape}")
        self._query_dense = self._proj(len(query_shape), (self._num_heads, self._key_dim), "query")
        self._query_dense.build(query_shape)
        self._key_dense = self._proj(len(key_shape), (self._num_heads, self._key_dim), "key")
        self._key_dense.build(key_shape)
        if self._use_gate:
            self._gate_dense = self._proj(len(query_shape), (self._num_heads, self._value_dim), "gate",
                                          activation="sigmoid")
            self._gate_dense.build(query_shape)
        self._value_dense = self._proj(len(value_shape), (self._num_heads, self._value_dim), "value")
        self._value_dense.build(value_shape)
        rank = len(query_shape) + 1
        if self._attention_axes is None:
            axes = tuple(range(1, rank - 2))
        else:
            axes = tuple(a if a >= 0 else rank - 1 + a for a in self._attention_axes)
            if any(not 1 <= a < rank - 2 for a in axes):
                raise ValueError(f"MultiHeadAttention {self.name!r}: attention_axes "
                                 f"{self._attention_axes} must lie between the batch and the feature "
                                 f"axes of the query shape {query_shape}")
        self._attention_axes = axes
        self._dot_eq, self._combine_eq, srank = _attention_equations(rank, axes)
        self._norm_axes = tuple(range(srank - len(axes), srank))
        out = self._output_shape or (query_shape[-1],)
        eq, bias, out_rank = _proj_equation(len(query_shape) - 1, 2, len(out))
        self._output_dense = EinsumDense(eq, output_shape=[None] * (out_rank - 1 - len(out)) + list(out),
                                         bias_axes=bias if self._use_bias else None,
                                         name="attention_output", **self._common())
        oin = list(self._query_dense.compute_output_shape(query_shape))
        oin[-1] = self._value_dim
        self._output_dense.build(tuple(oin))
        self._prefix_paths()
        self.built = True

    query_dense = property(lambda self: self._query_dense)
    key_dense = property(lambda self: self._key_dense)
    value_dense = property(lambda self: self._value_dense)
    output_dense = property(lambda self: self._output_dense)

    def _output_shape_for(self, query_shape, value_shape, key_shape):
        ks = value_shape if key_shape is None else key_shape
        if value_shape[1:-1] != ks[1:-1]:
            raise ValueError(f"MultiHeadAttention {self.name!r}: all dimensions of value and key, "
                             f"except the last one, must be equal; received value_shape="
                             f"{value_shape} and key_shape={ks}")
        if self._output_shape:
            return query_shape[:-1] + tuple(self._output_shape)
        return query_shape

    def _scores_shape(self, query_shape, key_shape):
        axes = self._attention_axes
        rank = len(query_shape) + 1
        q = query_shape[:-1] + (self._num_heads,)
        k = key_shape[:-1] + (self._num_heads,)
        batch = [i for i in range(rank - 1) if i not in axes]
        return tuple([q[i] for i in batch] + [q[i] for i in axes] + [k[i] for i in axes])

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False):
        if key is None:
            key = value
        mask = self._attention_mask(query.shape[1], value.shape[1], query_mask, value_mask,
                                    key_mask, attention_mask, use_causal_mask, self._sliding_window)
        gate = self._gate_dense(query) if self._use_gate else None
        q = self._query_dense(query)
        k = self._key_dense(key)
        v = self._value_dense(value)
        out, scores = self._compute_attention(q, k, v, mask, training, return_attention_scores)
        if gate is not None:
            out = out * gate
        out = self._output_dense(out)
        if return_attention_scores:
            return out, scores
        return out

    def _compute_attention(self, query, key, value, mask=None, training=None,
                           return_attention_scores=False):
        drop = self._dropout if training else 0.0
        # Keras computes with the fused node unless the layer has dropout (even at inference),
        # scores are returned, or the projections are not 4-D (batch, length, heads, dim), and
        # otherwise with a masked softmax; the two differ only on a query row masked everywhere
        # (uniform weights in the fused node, zeros from the masked softmax).  The fused node
        # (with its dropout of the probabilities) is taken wherever it gives Keras's result.
        if query.ndim == 4 and not return_attention_scores:
            m4 = mask
            if m4 is not None:
                while m4.ndim < 4:
                    m4 = np.expand_dims(m4, -3)
            if self._dropout == 0 or _no_dead_rows(m4):
                dm = None
                if drop > 0:
                    B, T, N, _ = query.shape
                    dm = self._drop_mask((B, N, T, key.shape[1]), query.dtype, drop)
                return attention_core(query, key, value, mask=m4,
                                      scale=self._inverse_sqrt_key_dim, dropout_mask=dm,
                                      op=f"MultiHeadAttention {self.name!r}"), None
        query = query * query.dtype.type(self._inverse_sqrt_key_dim)
        scores = ops.einsum(self._dot_eq, key, query)
        if mask is not None:
            axis = -len(self._attention_axes) * 2 - 1
            while mask.ndim < scores.ndim:
                mask = np.expand_dims(mask, axis)
            self._check_mask(mask, scores.shape)
        probs = _masked_softmax(scores, mask, axis=self._norm_axes)
        p = probs
        if drop > 0:
            p = probs * self._drop_mask(probs.shape, probs.dtype, drop)
        return ops.einsum(self._combine_eq, p, value), probs

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"num_heads": self._num_heads, "key_dim": self._key_dim,
                    "value_dim": self._value_dim, "dropout": self._dropout,
                    "use_bias": self._use_bias, "use_gate": self._use_gate,
                    "output_shape": self._output_shape, "attention_axes": self._attention_axes,
                    "sliding_window": self._sliding_window,
                    "kernel_initializer": initializers.serialize(self._kernel_initializer),
                    "bias_initializer": initializers.serialize(self._bias_initializer),
                    "kernel_regularizer": _ser(self._kernel_regularizer, regularizers),
                    "bias_regularizer": _ser(self._bias_regularizer, regularizers),
                    "activity_regularizer": _ser(self._activity_regularizer, regularizers),
                    "kernel_constraint": _ser(self._kernel_constraint, constraints),
                    "bias_constraint": _ser(self._bias_constraint, constraints),
                    "seed": self.seed})
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("attention_axes") is not None:
            config["attention_axes"] = tuple(config["attention_axes"])
        return cls(**config)


class GroupedQueryAttention(_QueryValueAttention):
    """Grouped-query attention (Ainslie et al., 2023): ``num_query_heads`` query heads share
    ``num_key_value_heads`` key/value heads (multi-query attention when that is 1).

    Args (Keras's): head_dim, num_query_heads, num_key_value_heads, dropout, use_bias,
    sliding_window, flash_attention (None/False), kernel/bias initializers, regularizers and
    constraints, activity_regularizer, use_gate, seed.  Call as MultiHeadAttention.
    Weights: query (m, Nq, h), key and value (m, Nkv, h), attention_output (Nq, h, m), with biases.
    """

    def __init__(self, head_dim, num_query_heads, num_key_value_heads, dropout=0.0, use_bias=True,
                 sliding_window=None, flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 use_gate=False, seed=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        for n, v in (("head_dim", head_dim), ("num_query_heads", num_query_heads),
                     ("num_key_value_heads", num_key_value_heads)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"GroupedQueryAttention {self.name!r}: {n} must be a positive "
                                 f"integer, received {v!r}")
        if num_query_heads % num_key_value_heads:
            raise ValueError(f"GroupedQueryAttention {self.name!r}: num_query_heads "
                             f"({num_query_heads}) must be divisible by num_key_value_heads "
                             f"({num_key_value_heads})")
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"GroupedQueryAttention {self.name!r}: dropout must be a float in "
                             f"[0, 1), received {dropout!r}")
        if sliding_window is not None and (isinstance(sliding_window, bool) or
                                           not isinstance(sliding_window, int) or sliding_window <= 0):
            raise ValueError(f"GroupedQueryAttention {self.name!r}: sliding_window must be None or "
                             f"a positive integer, received {sliding_window!r}")
        if flash_attention:
            raise NotImplementedError(f"GroupedQueryAttention {self.name!r}: flash_attention=True "
                                      f"is not supported by axone")
        self.head_dim, self.num_query_heads = head_dim, num_query_heads
        self.num_key_value_heads = num_key_value_heads
        self.num_repeats = num_query_heads // num_key_value_heads
        self.dropout, self.use_bias, self.use_gate = float(dropout), bool(use_bias), bool(use_gate)
        self.sliding_window = sliding_window
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed = seed
        self._inverse_sqrt_head_dim = 1.0 / math.sqrt(float(head_dim))

    def _dense(self, eq, shape, bias, name, activation=None):
        return EinsumDense(eq, output_shape=shape, bias_axes=bias if self.use_bias else None,
                           name=name, activation=activation,
                           kernel_initializer=initializers.get(initializers.serialize(self.kernel_initializer)),
                           bias_initializer=initializers.get(initializers.serialize(self.bias_initializer)),
                           kernel_regularizer=self.kernel_regularizer,
                           bias_regularizer=self.bias_regularizer,
                           activity_regularizer=self.activity_regularizer,
                           kernel_constraint=self.kernel_constraint,
                           bias_constraint=self.bias_constraint, dtype=self.dtype)

    def build(self, query_shape, value_shape, key_shape=None):
        query_shape, value_shape = tuple(query_shape), tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        for n, s in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(s) != 3:
                raise ValueError(f"GroupedQueryAttention {self.name!r}: {n} must have rank 3 "
                                 f"(batch, length, features), received shape {s}")
        self.feature_dim = query_shape[-1]
        nq, nk, h = self.num_query_heads, self.num_key_value_heads, self.head_dim
        self._query_dense = self._dense("bqm,muh->bquh", (None, nq, h), "uh", "query")
        self._query_dense.build(query_shape)
        self._key_dense = self._dense("bkm,mvh->bkvh", (None, nk, h), "vh", "key")
        self._key_dense.build(key_shape)
        if self.use_gate:
            self._gate_dense = self._dense("bqm,muh->bquh", (None, nq, h), "uh", "gate", "sigmoid")
            self._gate_dense.build(query_shape)
        self._value_dense = self._dense("bkm,mvh->bkvh", (None, nk, h), "vh", "value")
        self._value_dense.build(value_shape)
        self._output_dense = self._dense("bquh,uhm->bqm", (None, self.feature_dim), "m",
                                         "attention_output")
        self._output_dense.build((None, None, nq, h))
        self._prefix_paths()
        self.built = True

    def _output_shape_for(self, query_shape, value_shape, key_shape):
        ks = value_shape if key_shape is None else key_shape
        if query_shape[-1] != value_shape[-1]:
            raise ValueError(f"GroupedQueryAttention {self.name!r}: the last dimension of "
                             f"query_shape and value_shape must be equal, received query_shape="
                             f"{query_shape}, value_shape={value_shape}")
        if value_shape[1:-1] != ks[1:-1]:
            raise ValueError(f"GroupedQueryAttention {self.name!r}: all dimensions of value and "
                             f"key, except the last one, must be equal; received value_shape="
                             f"{value_shape} and key_shape={ks}")
        return query_shape

    def _scores_shape(self, query_shape, key_shape):
        return (query_shape[0], self.num_query_heads, query_shape[1], key_shape[1])

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False):
        if key is None:
            key = value
        mask = self._attention_mask(query.shape[1], value.shape[1], query_mask, value_mask,
                                    key_mask, attention_mask, use_causal_mask, self.sliding_window)
        gate = self._gate_dense(query) if self.use_gate else None
        q = self._query_dense(query)
        k = self._key_dense(key)
        v = self._value_dense(value)
        drop = self.dropout if training else 0.0
        if mask is not None:
            while mask.ndim < 4:
                mask = np.expand_dims(mask, -3)
        if not return_attention_scores and (self.dropout == 0 or _no_dead_rows(mask)):
            # the fused node wherever it gives Keras's result (see MultiHeadAttention)
            dm = None
            if drop > 0:
                B, T = q.shape[:2]
                dm = self._drop_mask((B, self.num_query_heads, T, k.shape[1]), q.dtype, drop)
            out = attention_core(q, k, v, mask=mask, scale=self._inverse_sqrt_head_dim,
                                 dropout_mask=dm, op=f"GroupedQueryAttention {self.name!r}")
            scores = None
        else:
            k = ops.repeat(k, self.num_repeats, axis=2)
            v = ops.repeat(v, self.num_repeats, axis=2)
            s = ops.einsum("bquh,bkuh->buqk", q * q.dtype.type(self._inverse_sqrt_head_dim), k)
            if mask is not None:
                self._check_mask(mask, s.shape)
            scores = _masked_softmax(s, mask, axis=-1)
            p = scores if drop == 0 else scores * self._drop_mask(scores.shape, scores.dtype, drop)
            out = ops.einsum("buqk,bkuh->bquh", p, v)
        if gate is not None:
            out = out * gate
        out = self._output_dense(out)
        if return_attention_scores:
            return out, scores
        return out

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"head_dim": self.head_dim, "num_query_heads": self.num_query_heads,
                    "num_key_value_heads": self.num_key_value_heads, "use_bias": self.use_bias,
                    "use_gate": self.use_gate, "sliding_window": self.sliding_window,
                    "dropout": self.dropout,
                    "kernel_initializer": initializers.serialize(self.kernel_initializer),
                    "bias_initializer": initializers.serialize(self.bias_initializer),
                    "kernel_regularizer": _ser(self.kernel_regularizer, regularizers),
                    "bias_regularizer": _ser(self.bias_regularizer, regularizers),
                    "activity_regularizer": _ser(self.activity_regularizer, regularizers),
                    "kernel_constraint": _ser(self.kernel_constraint, constraints),
                    "bias_constraint": _ser(self.bias_constraint, constraints),
                    "seed": self.seed})
        return cfg


GroupQueryAttention = GroupedQueryAttention


class Attention(Layer):
    """Dot-product (Luong) attention over ``[query, value]`` or ``[query, value, key]``:
    scores = q·kᵀ (× scale when ``use_scale``), or with ``score_mode="concat"``
    c·Σ tanh(scale·(q + k)); weights = softmax(scores) (masked keys −1e9, optional causal mask
    and dropout), output = weights·v; the query mask zeroes masked query steps.

    Args: use_scale (a trainable scalar ``scale``), score_mode ("dot" or "concat", which adds
    the scalar ``concat_score_weight``), dropout, seed.
    Call: ``layer([query, value(, key)], mask=[query_mask, value_mask], training=None,
    return_attention_scores=False, use_causal_mask=False)``.
    """

    supports_masking = True

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"{type(self).__name__} {self.name!r}: invalid value for score_mode; "
                             f"expected one of {{'dot', 'concat'}}, received score_mode={score_mode!r}")
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"{type(self).__name__} {self.name!r}: dropout must be a float in "
                             f"[0, 1), received {dropout!r}")
        self.use_scale, self.score_mode = bool(use_scale), score_mode
        self.dropout, self.seed = float(dropout), seed
        self._rng = None

    def _validate(self, inputs, mask=None):
        name = type(self).__name__
        if not isinstance(inputs, list):
            raise ValueError(f"{name} layer {self.name!r} must be called on a list of inputs, "
                             f"namely [query, value] or [query, value, key]; received "
                             f"{type(inputs).__name__}")
        if not 2 <= len(inputs) <= 3:
            raise ValueError(f"{name} layer {self.name!r} accepts an inputs list of length 2 or 3 "
                             f"([query, value] or [query, value, key]); received length "
                             f"{len(inputs)}")
        if mask is not None:
            if not isinstance(mask, list):
                raise ValueError(f"{name} layer {self.name!r}: mask must be a list, namely "
                                 f"[query_mask, value_mask]; received {type(mask).__name__}")
            if not 2 <= len(mask) <= 3:
                raise ValueError(f"{name} layer {self.name!r} accepts a mask list of length 2 or 3, "
                                 f"received length {len(mask)}")

    def build(self, input_shape):
        self._validate(list(input_shape) if isinstance(input_shape, tuple) and input_shape and
                       isinstance(input_shape[0], tuple) else input_shape)
        self.scale = self.add_weight((), "ones", name="scale") if self.use_scale else None
        self.concat_score_weight = self.add_weight((), "ones", name="concat_score_weight") \
            if self.score_mode == "concat" else None
        self.built = True

    def _calculate_scores(self, query, key):
        if self.score_mode == "dot":
            s = ops.matmul(query, ops.swapaxes(key, -2, -1))
            return s * self.scale if self.scale is not None else s
        q = ops.expand_dims(query, -2)
        k = ops.expand_dims(key, -3)
        z = q + k if self.scale is None else self.scale * (q + k)
        return self.concat_score_weight * ops.sum(ops.tanh(z), axis=-1)

    def _check_shapes(self, q, v, k, q_mask, v_mask):
        name = f"{type(self).__name__} layer {self.name!r}"
        if q.ndim < 2 or v.ndim != q.ndim or k.ndim != q.ndim:
            raise ValueError(f"{name}: query, value and key must have the same rank, at least 2 "
                             f"(batch, …, Tq/Tv, dim); received query {tuple(q.shape)}, value "
                             f"{tuple(v.shape)}, key {tuple(k.shape)}")
        if q.shape[:-2] != v.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
            raise ValueError(f"{name}: query, value and key must agree on the batch axes, received "
                             f"query {tuple(q.shape)}, value {tuple(v.shape)}, key {tuple(k.shape)}")
        if q.shape[-1] != k.shape[-1]:
            raise ValueError(f"{name}: query and key must have the same last dimension, received "
                             f"query {tuple(q.shape)} and key {tuple(k.shape)}")
        if v.shape[-2] != k.shape[-2]:
            raise ValueError(f"{name}: value and key must have the same length Tv, received value "
                             f"{tuple(v.shape)} and key {tuple(k.shape)}")
        if q_mask is not None and q_mask.shape != tuple(q.shape[:-1]):
            raise ValueError(f"{name}: the query mask must have shape {tuple(q.shape[:-1])} (the "
                             f"query without its last axis), received {q_mask.shape}")
        scores = tuple(q.shape[:-1]) + (v.shape[-2],)
        if v_mask is not None and v_mask.shape not in (tuple(v.shape[:-1]), scores):
            raise ValueError(f"{name}: the value mask must have shape {tuple(v.shape[:-1])} (the "
                             f"value without its last axis) or {scores}, received {v_mask.shape}")

    def call(self, inputs, mask=None, training=None, return_attention_scores=False,
             use_causal_mask=False):
        self._validate(inputs, mask)
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        q_mask = _bool(mask[0]) if mask else None
        v_mask = _bool(mask[1]) if mask else None
        self._check_shapes(q, v, k, q_mask, v_mask)
        scores = self._calculate_scores(q, k)
        keep = None
        if v_mask is not None:      # (…, Tv) → (…, 1, Tv), unless it is (…, Tq, Tv) already
            keep = v_mask if v_mask.ndim == scores.ndim else v_mask[..., None, :]
        if use_causal_mask:
            c = causal_mask(scores.shape[-2], scores.shape[-1])
            keep = c if keep is None else np.logical_and(keep, c)
        if keep is not None:
            big = 65504.0 if scores.dtype == np.float16 else 1e9
            scores = scores - (~keep).astype(scores.dtype) * scores.dtype.type(big)
        weights = ops.softmax(scores, axis=-1)
        if training and self.dropout > 0:
            if self._rng is None:
                self._rng = np.random.default_rng(self.seed) if self.seed is not None else backend.rng()
            dt = weights.dtype
            keepd = self._rng.random(weights.shape, dtype=np.float64 if dt == np.float64 else np.float32) >= self.dropout
            weights = weights * (keepd.astype(dt) * dt.type(1.0 / (1.0 - self.dropout)))
        out = ops.matmul(weights, v)
        if q_mask is not None:
            out = out * q_mask[..., None].astype(out.dtype)
        if return_attention_scores:
            return out, weights
        return out

    def __call__(self, inputs, *args, **kwargs):
        if kwargs.get("return_attention_scores") and _is_symbolic(inputs):
            self._scores_pending = True
            try:
                return super().__call__(inputs, *args, **kwargs)
            finally:
                self._scores_pending = False
        return super().__call__(inputs, *args, **kwargs)

    def compute_mask(self, inputs, mask=None):
        if mask is None or mask[0] is None:
            return None
        return _bool(mask[0])

    def compute_output_shape(self, input_shape):
        q, v = tuple(input_shape[0]), tuple(input_shape[1])
        k = tuple(input_shape[2]) if len(input_shape) > 2 else v
        out = q[:-1] + (v[-1],)
        if self.__dict__.get("_scores_pending"):
            return out, q[:-1] + (k[-2],)
        return out

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"use_scale": self.use_scale, "score_mode": self.score_mode,
                    "dropout": self.dropout, "seed": self.seed})
        return cfg


class AdditiveAttention(Attention):
    """Additive (Bahdanau) attention: scores = Σ scale·tanh(q + k) over the features, ``scale``
    a trainable vector (features,) when ``use_scale`` (default True); the rest as Attention."""

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape):
        self._validate(list(input_shape) if isinstance(input_shape, tuple) and input_shape and
                       isinstance(input_shape[0], tuple) else input_shape)
        dim = input_shape[0][-1]
        self.scale = self.add_weight((dim,), "glorot_uniform", name="scale") if self.use_scale else None
        self.concat_score_weight = None
        self.built = True

    def _calculate_scores(self, query, key):
        t = ops.tanh(ops.expand_dims(query, -2) + ops.expand_dims(key, -3))
        return ops.sum(t * self.scale if self.scale is not None else t, axis=-1)

    def get_config(self):
        cfg = super().get_config()
        del cfg["score_mode"]
        return cfg
