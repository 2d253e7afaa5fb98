"""The work of a model's step, estimated from its layers: multiply-adds of the matrix products.

The thread policy (``backend.blas_threads_for_work``) judges a step by this number, not by the
parameter count: a convolution's parameters are used once per output position, a recurrent
layer's once per time step.  Multiply-adds of one sample's forward pass, by layer family:

  Dense                      rows × in × units              (rows: the positions before the last axis)
  Conv (1/2/3-D, depthwise,  output positions × kernel size (kernel size: k…k × C_in/groups × C_out;
  separable)                                                 each kernel, depthwise and pointwise)
  ConvTranspose              input positions × kernel size
  RNN (SimpleRNN/LSTM/GRU,   T × (kernel + recurrent kernel sizes)
  RNN(cell), Bidirectional)
  MultiHeadAttention /       projections T_q × (query + output kernels) + T_v × (key + value
  GroupedQueryAttention      kernels) + scores and weighted sum T_q × T_v × heads × (key + value dim)
  TimeDistributed            T × the wrapped layer's work
  a nested model             the sum over its layers
  a layer with a             what that method returns (a layer family may provide its own estimate)
  ``_step_flops(input_shape)`` method
  anything else              rows × its weights' sizes (0 without weights: element-wise work is
                             not a matrix product)

A training step counts three times its forward pass (forward, and the two products of each
backward one); prediction and evaluation count the forward pass.  Unknown sizes (``None`` axes
other than the batch) count as 1.  The estimate of a model is kept until its layers change.
"""
from .. import backend
from ..layers.base import _TRACKING

__all__ = ["forward_work", "step_work", "call_scope"]


def _prod(dims):
    p = 1
    for d in dims:
        p *= int(d) if d is not None else 1
    return p


def _is_shape(s):
    return isinstance(s, (tuple, list)) and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool)) or
        (hasattr(d, "__index__") and not isinstance(d, (tuple, list))) for d in s)


def _shapes(shape):
    """Every shape of a (possibly nested) structure of shapes, in order."""
    if shape is None:
        return []
    if _is_shape(shape):
        return [tuple(shape)]
    items = list(shape.values()) if isinstance(shape, dict) else \
        list(shape) if isinstance(shape, (list, tuple)) else []
    out = []
    for s in items:
        out.extend(_shapes(s))
    return out


def _first_shape(shape):
    """The first shape of a structure of shapes, or None."""
    found = _shapes(shape)
    return found[0] if found else None


def _weight_size(layer, names):
    total = 0
    for n in names:
        w = getattr(layer, n, None)
        if w is not None and hasattr(w, "shape"):
            total += _prod(w.shape)
    return total


def _kernel_size(layer):
    """Sizes of the layer's kernels (weights named ``…kernel``: kernel, recurrent_kernel,
    depthwise_kernel, pointwise_kernel), the ones its products use; biases left out."""
    try:
        return sum(_prod(w.shape) for w in layer.weights
                   if str(getattr(w, "name", "")).split("/")[-1].endswith("kernel"))
    except Exception:        # noqa: BLE001 -- an unbuilt or unusual layer: no estimate
        return 0


def _all_weight_size(layer):
    try:
        return sum(_prod(w.shape) for w in layer.weights)
    except Exception:        # noqa: BLE001 -- an unbuilt or unusual layer: no estimate
        return 0


def _input_shape(layer, given):
    s = getattr(layer, "_build_input_shape", None)
    if s is None and getattr(layer, "_inbound_nodes", None):
        try:
            s = layer.input_shape
        except Exception:    # noqa: BLE001
            s = None
    return s if s is not None else given


def _out_shape(layer, s):
    try:
        return _first_shape(layer.compute_output_shape(s))
    except Exception:        # noqa: BLE001 -- no cheap output shape: the input's positions
        return s


def _positions(shape, channels_first):
    """Spatial positions of a (batch, …, channels) or (batch, channels, …) shape."""
    return _prod(shape[2:] if channels_first else shape[1:-1])


def layer_work(layer, input_shape=None):
    """Multiply-adds of one sample through ``layer`` (see the module's table)."""
    from .. import layers as L
    from ..layers import recurrent as R
    from ..layers import convolutional as C
    from ..layers import attention as A

    shape = _input_shape(layer, input_shape)
    hook = getattr(type(layer), "_step_flops", None)
    if hook is not None:
        return float(hook(layer, shape))
    if hasattr(layer, "_nodes_key"):        # a model nested as a layer
        return _model_work(layer, shape)
    s = _first_shape(shape)
    if s is None or len(s) < 1:
        return 0.0
    if isinstance(layer, L.Dense):
        return float(_prod(s[1:-1]) * _weight_size(layer, ["kernel"]))
    if isinstance(layer, (C._Conv, C._DepthwiseConv, C._SeparableConv, C._ConvTranspose)):
        cf = getattr(layer, "data_format", "channels_last") == "channels_first"
        kernels = _kernel_size(layer)
        ref = s if isinstance(layer, C._ConvTranspose) else _out_shape(layer, s)
        return float(_positions(ref, cf) * kernels)
    if isinstance(layer, R.Bidirectional):
        return float(sum(layer_work(sub, s) for sub in layer._sublayers))
    if isinstance(layer, R.RNN):
        t = s[1] if len(s) > 2 and s[1] is not None else 1
        return float(t * _kernel_size(layer))
    if isinstance(layer, R.TimeDistributed):
        inner = getattr(layer, "layer", None)
        t = s[1] if len(s) > 1 and s[1] is not None else 1
        return float(t * layer_work(inner, (s[0],) + tuple(s[2:]))) if inner is not None else 0.0
    if isinstance(layer, A._QueryValueAttention) and hasattr(layer, "_query_dense"):
        shapes = _shapes(shape)
        tq = _prod(shapes[0][1:-1]) if shapes else 1
        tv = _prod(shapes[1][1:-1]) if len(shapes) > 1 else tq
        q = _kernel_size(layer._query_dense) + _kernel_size(layer._output_dense)
        kv = _kernel_size(layer._key_dense) + _kernel_size(layer._value_dense)
        heads = getattr(layer, "_num_heads", 1)
        dims = getattr(layer, "_key_dim", 0) + getattr(layer, "_value_dim", 0)
        return float(tq * q + tv * kv + tq * tv * heads * dims)
    subs = getattr(layer, "_sublayers", ())
    if subs:
        return float(sum(layer_work(sub, s) for sub in subs))
    return float(_prod(s[1:-1]) * _all_weight_size(layer))


def _model_work(model, shape=None):
    layers = model.layers
    total = 0.0
    for lay in layers:
        total += layer_work(lay, shape)
    return total


def forward_work(model):
    """Multiply-adds of one sample's forward pass through ``model`` (None while it is unbuilt).

    Kept on the model until its layers change (a layer tracked, its graph, built or not)."""
    d = model.__dict__
    # any layer tracked anywhere bumps the counter; a graph or a subclass's outputs replaced
    # are new objects: compared by identity first, the check is a few attribute reads
    key = (d.get("built"), _TRACKING[0], d.get("_nodes"), d.get("_call_outputs"))
    cached = d.get("_work_cache")
    if cached is not None and cached[0] == key:
        return cached[1]
    work = None
    if model.built:
        try:
            work = _model_work(model)
        except Exception:    # noqa: BLE001 -- an estimate never breaks a call: none, then
            work = None      # the caller judges by parameters (training) or leaves BLAS alone
    d["_work_cache"] = (key, work)
    return work


def step_work(model, batch_size, training=False):
    """Multiply-adds of one step of ``batch_size`` rows: the forward pass (× 3 when training:
    forward and the two backward products of each), or None while the model is unbuilt."""
    w = forward_work(model)
    if w is None:
        return None
    return w * max(1, int(batch_size or 1)) * (3 if training else 1)


def call_scope(model, flat_inputs):
    """The BLAS scope of an eager ``model(x)`` on ``flat_inputs`` (arrays or tensors, the batch
    first): ``backend.step_scope`` of its forward work; nothing to do inside an open scope of the
    same count (``fit``, ``predict``, an enclosing model), for a call too small to pay for the
    scope (``backend.EAGER_MIN_WORK``) or while the model is unbuilt."""
    scopes = backend._blas_scopes
    if scopes and scopes[-1]._n == 1 and scopes[-1]._tid == backend._get_ident():
        return backend._NO_SCOPE        # inside fit / predict / an outer model on this thread
    w = forward_work(model)
    if w is None:
        return backend._NO_SCOPE
    rows = 1
    if flat_inputs:
        shape = getattr(flat_inputs[0], "shape", None)
        if shape:
            rows = int(shape[0] or 1)
    return backend.step_scope(w * rows, w * rows)
