"""``keras.config``: the process-wide settings Keras 3 code reads and sets.

- ``image_data_format`` / ``set_image_data_format``: the default ``data_format`` of every layer
  and op that takes one (``"channels_last"`` unless changed).  :func:`standardize_data_format`
  is the one rule they all resolve ``data_format`` with (``None`` → :func:`image_data_format`),
  so ``set_image_data_format("channels_first")`` changes the default of every layer built and
  every op called afterwards, as in Keras.
- ``floatx`` / ``set_floatx`` / ``epsilon`` / ``set_epsilon``: axone.backend's own.
- ``backend()`` is ``"numpy"``: axone computes with NumPy whatever Keras backend is configured
  (``KERAS_BACKEND`` is not read); ``set_backend`` accepts only that same name.
- ``max_epochs`` / ``max_steps_per_epoch`` and their setters cap every ``fit`` (debugging runs,
  as Keras): ``KERAS_MAX_EPOCHS`` and ``KERAS_MAX_STEPS_PER_EPOCH`` set them when axone is
  imported, as Keras reads them when it is.
- ``dtype_policy`` / ``set_dtype_policy``: axone has one float type for the whole process, so a
  float policy sets :func:`floatx`; mixed and quantized policies raise NotImplementedError.
- flash attention, traceback filtering, unsafe deserialization: the switches keep Keras's
  state; what each changes in axone is in its docstring.
- interactive logging: axone.io_utils's switch.

Unlike Keras, ``$KERAS_HOME/keras.json`` (``~/.keras/keras.json``) is neither read nor written:
the defaults above hold until a setter changes them.  Keras keeps the flash attention,
traceback filtering and safe-mode switches per thread; here they are one per process, reset by
``keras.backend.clear_session()`` as Keras resets them.
"""
import numbers
import os
import threading
import warnings

from . import backend as _backend_module
from .backend import epsilon, floatx, set_epsilon, set_floatx
from .io_utils import (disable_interactive_logging, enable_interactive_logging,
                       is_interactive_logging_enabled)

__all__ = ["backend", "set_backend", "floatx", "set_floatx", "epsilon", "set_epsilon",
           "image_data_format", "set_image_data_format", "standardize_data_format",
           "max_epochs", "set_max_epochs", "max_steps_per_epoch", "set_max_steps_per_epoch",
           "dtype_policy", "set_dtype_policy", "DTypePolicy",
           "enable_flash_attention", "disable_flash_attention", "is_flash_attention_enabled",
           "enable_traceback_filtering", "disable_traceback_filtering",
           "is_traceback_filtering_enabled", "enable_unsafe_deserialization", "in_safe_mode",
           "enable_interactive_logging", "disable_interactive_logging",
           "is_interactive_logging_enabled", "is_nnx_enabled"]

_LOCK = threading.Lock()
_DATA_FORMATS = ("channels_first", "channels_last")
#: the name :func:`backend` reports
BACKEND = "numpy"


def _env_limit(name):
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"the environment variable {name} must be an integer (a cap on fit's "
                         f"{'epochs' if 'EPOCHS' in name else 'steps per epoch'}), received "
                         f"{value!r}") from None


_STATE = {
    "image_data_format": "channels_last",
    "max_epochs": _env_limit("KERAS_MAX_EPOCHS"),
    "max_steps_per_epoch": _env_limit("KERAS_MAX_STEPS_PER_EPOCH"),
    # Keras's session state (keras.backend.clear_session puts these back)
    "flash_attention": None,
    "traceback_filtering": True,
    "safe_mode": None,
}


@_backend_module.register_session_reset
def _reset_session_state():
    with _LOCK:
        _STATE["flash_attention"] = None
        _STATE["traceback_filtering"] = True
        _STATE["safe_mode"] = None


# ------------------------------------------------------------------ data format
def _format_error(data_format, who):
    prefix = f"{who}: " if who else ""
    return ValueError(f"{prefix}The `data_format` argument must be one of "
                      f"{{'channels_first', 'channels_last'}}. Received: data_format={data_format}")


def image_data_format():
    """The default image data format: ``"channels_last"`` (batch, height, width, channels)
    unless :func:`set_image_data_format` changed it; ``"channels_first"`` puts the channels
    after the batch axis.  ``keras.json`` is not read (see the module docstring)."""
    return _STATE["image_data_format"]


def set_image_data_format(data_format):
    """Set the default image data format: ``"channels_first"`` or ``"channels_last"`` (any
    case).  Layers built and ops called afterwards with ``data_format=None`` use it; layers
    built before keep the format they resolved when they were built.  Anything else raises
    Keras's ValueError."""
    fmt = str(data_format).lower()
    if fmt not in _DATA_FORMATS:
        raise _format_error(fmt, None)
    _STATE["image_data_format"] = fmt


def standardize_data_format(data_format, who=None):
    """The data format a layer or op with ``data_format`` runs in: ``None`` →
    :func:`image_data_format`, otherwise the value lower-cased, which must be
    ``"channels_first"`` or ``"channels_last"``; anything else raises ValueError naming
    ``who`` (the layer or op) and the value received."""
    if data_format is None:
        return _STATE["image_data_format"]
    fmt = str(data_format).lower()
    if fmt not in _DATA_FORMATS:
        raise _format_error(fmt, who)
    return fmt


# ------------------------------------------------------------------ backend
def backend():
    """The name of the backend: ``"numpy"``.  axone runs its own engine on NumPy arrays
    whatever ``KERAS_BACKEND`` says, so code that branches on the backend takes its generic
    (non-TensorFlow, non-JAX, non-torch) path."""
    return BACKEND


def set_backend(backend):
    """Keras reloads itself on another backend; axone has one.  ``set_backend("numpy")``
    changes nothing; any other name raises NotImplementedError naming it."""
    if not isinstance(backend, str):
        raise TypeError(f"set_backend: expected the name of a backend (a string), received "
                        f"{type(backend).__name__}")
    if backend != BACKEND:
        raise NotImplementedError(
            f"set_backend({backend!r}): axone computes with NumPy only; its backend is "
            f"{BACKEND!r} and cannot be switched")


def is_nnx_enabled():
    """False: Flax NNX belongs to Keras's JAX backend, which axone does not use."""
    return False


# ------------------------------------------------------------------ debugging caps
def _check_limit(value, who):
    if value is None:
        return None
    if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < 0:
        raise ValueError(f"{who}: expected a non-negative integer or None (no limit), received "
                         f"{value!r}")
    return int(value)


def max_epochs():
    """The cap on the epochs of every ``fit`` call, or None (no cap): set by
    :func:`set_max_epochs` or ``KERAS_MAX_EPOCHS``."""
    return _STATE["max_epochs"]


def set_max_epochs(max_epochs):
    """Cap the epochs of every later ``fit`` call at ``max_epochs`` (an integer; None or 0: no
    cap, as Keras tests the value for truth).  ``fit`` warns ``Limiting epochs to N`` when it
    caps.  Meant for quick debugging runs of unchanged scripts."""
    _STATE["max_epochs"] = _check_limit(max_epochs, "set_max_epochs")


def max_steps_per_epoch():
    """The cap on the batches of each epoch of ``fit`` (its validation passes included), or
    None: set by :func:`set_max_steps_per_epoch` or ``KERAS_MAX_STEPS_PER_EPOCH``."""
    return _STATE["max_steps_per_epoch"]


def set_max_steps_per_epoch(max_steps_per_epoch):
    """Cap the batches of each epoch of every later ``fit`` call and of its validation passes
    (an integer; None or 0: no cap).  As in Keras the cap becomes the epoch's
    ``steps_per_epoch``: array input without ``batch_size`` is then cut into that many
    batches, and later epochs continue where the previous one stopped.  ``fit`` warns
    ``Limiting steps_per_epoch to N`` when it caps.  (Keras also caps ``evaluate`` and
    ``predict``; axone's caps ``fit``, and :func:`limit_steps` is the cap those calls would
    take.)"""
    _STATE["max_steps_per_epoch"] = _check_limit(max_steps_per_epoch, "set_max_steps_per_epoch")


def _is_count(v):
    return not isinstance(v, bool) and hasattr(v, "__index__")


def _capped_steps(steps, cap, stacklevel=4):
    if cap and (not steps or (_is_count(steps) and cap < steps)):
        warnings.warn("Limiting steps_per_epoch to %d" % cap, stacklevel=stacklevel)
        return cap
    return steps


def limit_steps(steps):
    """The batches an ``evaluate`` / ``predict`` call of ``steps`` (None: all) runs under
    :func:`max_steps_per_epoch`, with Keras's warning when it caps (Keras caps those calls
    too)."""
    return _capped_steps(steps, _STATE["max_steps_per_epoch"], 3)


def limit_fit(epochs, steps_per_epoch, validation_steps=None, initial_epoch=0,
              validation_data=None, validation_split=0.0):
    """``(epochs, steps_per_epoch, validation_steps)`` of a ``fit`` call under
    :func:`max_epochs` and :func:`max_steps_per_epoch`, with Keras's warnings (the
    validation one only when the call validates); values that are not counts are returned as
    they are (``fit`` rejects them).  A cap below ``initial_epoch`` gives ``initial_epoch``
    epochs: nothing is trained, as in Keras."""
    cap = _STATE["max_epochs"]
    if cap and _is_count(epochs) and cap < epochs:
        warnings.warn("Limiting epochs to %d" % cap, stacklevel=3)
        epochs = max(cap, initial_epoch) if _is_count(initial_epoch) and 0 <= initial_epoch \
            <= epochs else cap
    cap = _STATE["max_steps_per_epoch"]
    if cap:
        steps_per_epoch = _capped_steps(steps_per_epoch, cap)
        split = isinstance(validation_split, numbers.Real) and validation_split > 0
        if validation_data is not None or split:
            validation_steps = _capped_steps(validation_steps, cap)
    return epochs, steps_per_epoch, validation_steps


# ------------------------------------------------------------------ dtype policy
_QUANTIZATION_MODES = ("int8", "float8", "int4", "gptq", "awq")
#: the dtype names Keras 3 knows (keras.backend.standardize_dtype's)
_DTYPE_NAMES = ("float16", "float32", "float64", "uint8", "uint16", "uint32", "uint64", "int8",
                "int16", "int32", "int64", "bfloat16", "bool", "string", "float8_e4m3fn",
                "float8_e5m2", "complex64", "complex128")
_MIXED = {"mixed_float16": ("float16", "float32"), "mixed_bfloat16": ("bfloat16", "float32")}


class DTypePolicy:
    """A dtype policy as Keras names it: ``name``, ``compute_dtype``, ``variable_dtype``
    (both the same float type in axone, which has no mixed precision)."""

    def __init__(self, name=None):
        if name is None:
            name = floatx()
        if not isinstance(name, str):
            raise TypeError(f"'name' must be a string, such as 'mixed_float16'. Received: "
                            f"name={name} (of type {type(name)})")
        if name in _MIXED:
            self._compute_dtype, self._variable_dtype = _MIXED[name]
        else:
            dtype = "int32" if name == "int" else name
            if dtype not in _DTYPE_NAMES:
                raise ValueError(f"Cannot convert '{name}' to a mixed precision DTypePolicy. "
                                 f"Valid policies include 'mixed_float16', 'mixed_bfloat16', "
                                 f"and the name of any float dtype such as 'float32'.")
            self._compute_dtype = self._variable_dtype = dtype
        self._name = name

    name = property(lambda self: self._name, doc="The policy's name.")
    compute_dtype = property(lambda self: self._compute_dtype,
                             doc="The dtype layers compute in.")
    variable_dtype = property(lambda self: self._variable_dtype,
                              doc="The dtype layers create their weights in.")
    quantization_mode = property(lambda self: None, doc="None: axone does not quantize.")

    def get_config(self):
        return {"name": self._name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(other) is type(self) and other._name == self._name

    def __hash__(self):
        return hash(self._name)

    def __repr__(self):
        return f'<DTypePolicy "{self._name}">'


def dtype_policy():
    """The global dtype policy: ``DTypePolicy(floatx())`` (set_dtype_policy sets floatx)."""
    return DTypePolicy(floatx())


def set_dtype_policy(policy):
    """Set the global dtype policy: a name or a :class:`DTypePolicy`.  ``"float32"``,
    ``"float64"`` and ``"float16"`` set :func:`floatx` (the dtype every layer then creates its
    weights and computes in).  ``"mixed_float16"`` / ``"mixed_bfloat16"`` (float32 weights,
    half-precision compute), quantized policies (``"int8_from_…"``, …), ``"bfloat16"``
    (NumPy has no bfloat16) and non-float types raise NotImplementedError naming the policy;
    a name Keras does not know raises Keras's ValueError.

    Unlike Keras, where the policy and ``floatx`` are separate settings, the policy here *is*
    ``floatx``: ``set_dtype_policy("float64")`` makes ``floatx()`` ``"float64"``, and
    ``keras.backend.clear_session()`` does not put it back."""
    if isinstance(policy, DTypePolicy):
        name = policy.name
    elif isinstance(policy, str):
        name = policy
    else:
        raise ValueError(f"Invalid `policy` argument. Expected the string name of a policy "
                         f"(such as 'mixed_float16') or a `DTypePolicy` instance. Received: "
                         f"policy={policy} (of type {type(policy)})")
    if name.startswith(_QUANTIZATION_MODES):
        raise NotImplementedError(f"set_dtype_policy({name!r}): quantized dtype policies are "
                                  f"not supported by axone")
    if name in _MIXED:
        raise NotImplementedError(f"set_dtype_policy({name!r}): mixed precision is not "
                                  f"supported by axone (one float type computes and stores "
                                  f"everything: use 'float32', 'float64' or 'float16')")
    dtype = DTypePolicy(name).compute_dtype
    if dtype not in ("float16", "float32", "float64"):
        reason = "NumPy has no bfloat16" if dtype == "bfloat16" else \
            "axone's dtype policy is floatx, which must be a float type"
        raise NotImplementedError(f"set_dtype_policy({name!r}): {reason}; use 'float32', "
                                  f"'float64' or 'float16'")
    set_floatx(dtype)


# ------------------------------------------------------------------ flash attention
def enable_flash_attention():
    """Keras's default: attention layers *attempt* flash attention where the inputs allow it
    (``is_flash_attention_enabled()`` is None again).  axone has no flash attention kernel,
    so its attention layers and ``ops.dot_product_attention`` keep computing attention in the
    standard form — as Keras does wherever flash attention cannot run — and this call warns
    so.  ``flash_attention=True`` passed to a layer or op raises NotImplementedError."""
    with _LOCK:
        _STATE["flash_attention"] = None
    warnings.warn("enable_flash_attention: axone has no flash attention kernel; attention "
                  "layers and ops.dot_product_attention compute attention in the standard form "
                  "(flash_attention=True raises NotImplementedError)", stacklevel=2)


def disable_flash_attention():
    """Attention layers do not use flash attention (``is_flash_attention_enabled()`` is
    False); axone's never do."""
    with _LOCK:
        _STATE["flash_attention"] = False


def is_flash_attention_enabled():
    """False after :func:`disable_flash_attention`, otherwise None (Keras's "attempt it",
    which in axone always takes the standard form)."""
    return _STATE["flash_attention"]


# ------------------------------------------------------------------ traceback filtering
def enable_traceback_filtering():
    """Record that traceback filtering is on (Keras's default).  axone does not filter
    tracebacks: its errors name the layer or argument at fault and keep every frame, with the
    switch on or off; the state is kept for code that reads it."""
    with _LOCK:
        _STATE["traceback_filtering"] = True


def disable_traceback_filtering():
    """Record that traceback filtering is off.  axone's tracebacks are never filtered, so
    this changes no traceback (see :func:`enable_traceback_filtering`)."""
    with _LOCK:
        _STATE["traceback_filtering"] = False


def is_traceback_filtering_enabled():
    """The recorded switch: True unless :func:`disable_traceback_filtering` was called."""
    return _STATE["traceback_filtering"]


# ------------------------------------------------------------------ safe mode
def enable_unsafe_deserialization():
    """Turn safe mode off for every later load, as Keras: ``load_model`` and
    ``deserialize_keras_object`` then run with ``safe_mode=False`` whatever they are passed
    (until ``keras.backend.clear_session()``).

    In Keras this lets a Python lambda stored in a file as bytecode be loaded.  axone never
    executes code from a file, so such a lambda is refused in both modes; what changes is the
    safe_mode the loading functions see, and so the words of that refusal (which say that
    safe_mode=False does not allow it)."""
    with _LOCK:
        _STATE["safe_mode"] = False


def in_safe_mode():
    """False after :func:`enable_unsafe_deserialization`, otherwise None (no global
    setting: each loading function's own ``safe_mode`` argument applies)."""
    return _STATE["safe_mode"]


def effective_safe_mode(safe_mode):
    """The safe_mode a loading function runs with: the global setting when there is one (it
    overrides the argument, as in Keras), otherwise ``safe_mode``."""
    state = _STATE["safe_mode"]
    return safe_mode if state is None else state
