"""A strict stand-in for a device array module (CuPy), for tests on a machine without a GPU.

``StrictArray`` wraps a ``numpy.ndarray`` and behaves like a CuPy array where it matters here:

* it refuses to become a host array implicitly: ``np.asarray(x)``, ``np.array(x)``, any NumPy
  ufunc (``np.exp(x)``) or NumPy function (``np.sum(x)``, ``np.concatenate([x])``) raises
  TypeError naming the call;
* it refuses to mix with a host ``numpy.ndarray`` in one operation (``x + host``,
  ``xp.maximum(x, host)``, ``x[...] = host``), as CuPy does, a 0-d one included (CuPy's
  ufuncs take Python and NumPy scalars, never a host ndarray); Python and NumPy scalars mix
  freely;
* reductions give 0-d arrays, not NumPy scalars, as CuPy's do.

``strict_xp`` is the module-like namespace: the subset of CuPy's API that the ops use (names
CuPy lacks are refused with AttributeError), ``linalg`` and ``fft`` sub-namespaces,
``asarray`` (the explicit host-to-device copy) and ``asnumpy`` (device-to-host).  ``register()``
tells :func:`axone.device.array_module` about it.
"""
import numpy as np

from axone import device as _device

__all__ = ["StrictArray", "strict_xp", "register", "unregister", "to_strict", "from_strict"]


def _where(what):
    return (f"StrictArray: {what} on a device array; take the array module from the inputs "
            f"(xp = array_module(...)) and call xp.<name>, or copy to the host with xp.asnumpy()")


def _unwrap(x, call):
    """The NumPy value inside ``x`` (recursively through lists and tuples); TypeError for a
    host ndarray of one or more dimensions, which CuPy would refuse."""
    t = type(x)
    if t is StrictArray:
        return x._a
    if t is np.ndarray:
        raise TypeError(f"StrictArray: {call} mixes a device array with a host numpy.ndarray "
                        f"of shape {x.shape}; move it with xp.asarray first")
    if t is list or t is tuple:
        return t(_unwrap(v, call) for v in x)
    if isinstance(x, np.ndarray):  # a subclass (np.matrix, masked arrays)
        raise TypeError(f"StrictArray: {call} received a host {t.__name__}")
    if hasattr(x, "__array__") and not isinstance(x, (np.generic, np.dtype, type)) \
            and _device.array_module(x) is np and hasattr(x, "data"):
        # an axone Tensor given where an array is expected
        raise TypeError(f"StrictArray: {call} received a {t.__name__}, not an array")
    return x


def _wrap(r):
    t = type(r)
    if t is np.ndarray:
        return StrictArray(r)
    if isinstance(r, np.generic):
        return StrictArray(np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap(v) for v in r)
    if t is list:
        return [_wrap(v) for v in r]
    return r


class StrictArray:
    """A device-array stand-in around a ``numpy.ndarray`` (see the module docstring)."""

    __slots__ = ("_a",)
    __hash__ = None

    def __init__(self, a):
        if type(a) is not np.ndarray:
            raise TypeError(f"StrictArray wraps a numpy.ndarray, received {type(a).__name__}")
        self._a = a

    # ---- refused conversions
    def __array__(self, *args, **kwargs):
        raise TypeError(_where("implicit conversion to numpy.ndarray (np.asarray / np.array / "
                               "a NumPy routine)"))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__ + ("" if method == "__call__" else "." + method)
        raise TypeError(_where(f"numpy.{name}"))

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(_where(f"numpy.{func.__name__}"))

    # ---- array facts
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: StrictArray(self._a.T))
    mT = property(lambda self: StrictArray(np.swapaxes(self._a, -1, -2)))

    @property
    def real(self):
        return StrictArray(np.asarray(self._a.real))

    @property
    def imag(self):
        return StrictArray(np.asarray(self._a.imag))

    def __repr__(self):
        return f"StrictArray({self._a!r})"

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        for v in self._a:
            yield _wrap(v)

    # size-1 arrays convert to Python numbers, as CuPy's do (a synchronizing copy there)
    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __complex__(self):
        return complex(self._a)

    def __index__(self):
        return self._a.__index__()

    def item(self):
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    # ---- indexing
    def __getitem__(self, key):
        return _wrap(self._a[_index(key)])

    def __setitem__(self, key, value):
        self._a[_index(key)] = _unwrap(value, "__setitem__")


def _index(key):
    # CuPy takes host integer and boolean index arrays as well as its own
    if type(key) is StrictArray:
        return key._a
    if type(key) is tuple:
        return tuple(k._a if type(k) is StrictArray else k for k in key)
    return key


def _binary(name):
    op = getattr(np.ndarray, name)

    def method(self, other):
        t = type(other)
        if t is not StrictArray and t is not np.ndarray and not isinstance(
                other, (int, float, complex, bool, np.generic, list)):
            return NotImplemented   # a Tensor: its reflected operator handles it
        return _wrap(op(self._a, _unwrap(other, name)))
    method.__name__ = name
    return method


def _inplace(name):
    op = getattr(np.ndarray, name)

    def method(self, other):
        t = type(other)
        if t is not StrictArray and t is not np.ndarray and not isinstance(
                other, (int, float, complex, bool, np.generic)):
            return NotImplemented
        op(self._a, _unwrap(other, name))
        return self
    method.__name__ = name
    return method


def _unary(name):
    op = getattr(np.ndarray, name)

    def method(self):
        return _wrap(op(self._a))
    method.__name__ = name
    return method


for _n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
           "lshift", "rshift"):
    setattr(StrictArray, f"__{_n}__", _binary(f"__{_n}__"))
    setattr(StrictArray, f"__r{_n}__", _binary(f"__r{_n}__"))
    setattr(StrictArray, f"__i{_n}__", _inplace(f"__i{_n}__"))
for _n in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(StrictArray, f"__{_n}__", _binary(f"__{_n}__"))
for _n in ("neg", "pos", "abs", "invert"):
    setattr(StrictArray, f"__{_n}__", _unary(f"__{_n}__"))

# the ndarray methods CuPy's arrays have too
_METHODS = ("sum", "mean", "max", "min", "prod", "any", "all", "argmax", "argmin", "reshape",
            "transpose", "swapaxes", "astype", "copy", "ravel", "flatten", "squeeze", "conj",
            "conjugate", "clip", "cumsum", "cumprod", "fill", "dot", "nonzero", "round", "sort",
            "argsort", "take", "repeat", "std", "var", "diagonal", "trace", "view", "partition",
            "argpartition")


def _method(name):
    def method(self, *args, **kwargs):
        r = getattr(self._a, name)(*_unwrap(args, f"StrictArray.{name}"),
                                   **{k: _unwrap(v, f"StrictArray.{name}")
                                      for k, v in kwargs.items()})
        if name == "sort" or name == "fill":
            return None
        return _wrap(r)
    method.__name__ = name
    return method


for _n in _METHODS:
    setattr(StrictArray, _n, _method(_n))


# ------------------------------------------------------------------ the namespace
def _function(fn, name):
    def call(*args, **kwargs):
        a = _unwrap(args, f"xp.{name}")
        k = {key: _unwrap(v, f"xp.{name}") for key, v in kwargs.items()}
        return _wrap(fn(*a, **k))
    call.__name__ = name
    return call


class _Ufunc:
    """A NumPy ufunc seen through the strict namespace (``__call__``, ``at``, ``outer``,
    ``reduce``, ``accumulate``: CuPy's ufuncs have these; ``reduceat`` it lacks)."""

    def __init__(self, uf):
        self._uf = uf
        self.__name__ = uf.__name__
        self.nin, self.nout = uf.nin, uf.nout

    def __call__(self, *args, **kwargs):
        return _function(self._uf, self.__name__)(*args, **kwargs)

    def __getattr__(self, name):
        raise AttributeError(f"xp.{self.__dict__['__name__']} has no {name!r} (CuPy's ufuncs do "
                             f"not provide it)")

    def at(self, a, indices, b=None):
        if type(a) is not StrictArray:
            raise TypeError(f"xp.{self.__name__}.at: expected a device array, "
                            f"received {type(a).__name__}")
        args = (_index(indices),) if b is None else (_index(indices), _unwrap(b, "at"))
        self._uf.at(a._a, *args)

    def outer(self, a, b, **kw):
        return _function(self._uf.outer, self.__name__ + ".outer")(a, b, **kw)

    def reduce(self, a, *args, **kw):
        return _function(self._uf.reduce, self.__name__ + ".reduce")(a, *args, **kw)

    def accumulate(self, a, *args, **kw):
        return _function(self._uf.accumulate, self.__name__ + ".accumulate")(a, *args, **kw)


def _asarray(x, dtype=None, order=None):
    """The explicit host-to-device copy (a device array converts in place of a copy)."""
    if type(x) is StrictArray:
        a = x._a if dtype is None else x._a.astype(dtype, copy=False)
        return x if a is x._a else StrictArray(a)
    if hasattr(x, "__array__") and not isinstance(x, (np.ndarray, np.generic)):
        raise TypeError(f"xp.asarray: received a {type(x).__name__}, not an array")
    return StrictArray(np.asarray(_unwrap_nested(x), dtype=dtype, order=order))


def _unwrap_nested(x):
    if type(x) is StrictArray:
        return x._a
    if type(x) in (list, tuple):
        return type(x)(_unwrap_nested(v) for v in x)
    return x


def _array(x, dtype=None, copy=True, order="K", ndmin=0):
    a = _asarray(x, dtype)
    return StrictArray(np.array(a._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin))


def _asnumpy(x):
    """Device to host: a NumPy copy (host arrays given as they are, as CuPy's asnumpy)."""
    if type(x) is StrictArray:
        return x._a.copy()
    return np.asarray(x)


class _Namespace:
    """A module-like view of NumPy restricted to ``names``: functions and ufuncs wrapped so
    they take and give StrictArrays; dtypes and constants as they are."""

    def __init__(self, name, source, names, extra=None):
        self.__name__ = name
        self._source = source
        self._names = frozenset(names)
        self._cache = dict(extra or {})

    def __getattr__(self, name):
        cache = self.__dict__["_cache"]
        if name in cache:
            return cache[name]
        if name not in self.__dict__["_names"]:
            raise AttributeError(f"{self.__dict__['__name__']} has no {name!r} (CuPy does not "
                                 f"provide it; compute it another way or on the host)")
        obj = getattr(self.__dict__["_source"], name)
        if isinstance(obj, np.ufunc):
            obj = _Ufunc(obj)
        elif isinstance(obj, (type, np.dtype)) or not callable(obj):
            pass
        else:
            obj = _function(obj, name)
        cache[name] = obj
        return obj

    def __repr__(self):
        return f"<strict array module {self.__name__}>"


_CONSTANTS = ("pi", "e", "inf", "nan", "newaxis", "euler_gamma")
_DTYPES = ("dtype", "float16", "float32", "float64", "complex64", "complex128", "int8", "int16",
           "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool_", "intp",
           "integer", "floating", "complexfloating", "number", "generic", "finfo", "iinfo",
           "result_type", "promote_types", "can_cast", "issubdtype")
_ROUTINES = """
abs absolute add all allclose amax amin angle any append arange arccos arccosh arcsin arcsinh
arctan arctan2 arctanh argmax argmin argpartition argsort argwhere around array_equal
atleast_1d atleast_2d atleast_3d average bartlett bincount bitwise_and bitwise_not bitwise_or
bitwise_xor blackman broadcast_arrays broadcast_to cbrt ceil clip column_stack concatenate conj
conjugate copy copysign cos cosh count_nonzero cross cumprod cumsum deg2rad degrees diag
diagflat diagonal diff digitize divide dot dsplit dstack einsum empty empty_like equal exp exp2
expand_dims expm1 eye fabs fix flatnonzero flip fliplr flipud float_power floor floor_divide
fmax fmin fmod frexp full full_like gcd greater greater_equal hamming hanning heaviside
histogram hsplit hstack hypot i0 identity imag indices inner invert isclose iscomplex isfinite isin
isinf isnan isneginf isposinf isreal isscalar kaiser kron lcm ldexp left_shift less less_equal
linspace log log10 log1p log2 logaddexp logaddexp2 logical_and logical_not logical_or
logical_xor logspace matmul max maximum mean median meshgrid min minimum mod moveaxis multiply
nan_to_num nanargmax nanargmin nancumprod nancumsum nanmax nanmean nanmin nanprod nanstd
nansum nanvar ndim negative nextafter nonzero not_equal ones ones_like outer pad partition
percentile positive power prod ptp quantile rad2deg radians ravel real
reciprocal remainder repeat reshape right_shift rint roll rollaxis rot90 round searchsorted
shape sign signbit sin sinc sinh size sort split sqrt square squeeze stack std subtract sum
swapaxes take take_along_axis tan tanh tensordot tile trace transpose trapz tri tril
tril_indices triu triu_indices true_divide trunc unique unravel_index var vdot vsplit vstack
where zeros zeros_like
""".split()

_LINALG = ("cholesky", "det", "eigh", "eigvalsh", "inv", "lstsq", "matrix_power", "matrix_rank",
           "norm", "pinv", "qr", "slogdet", "solve", "svd", "tensorinv", "tensorsolve")
_FFT = ("fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
        "rfftn", "irfftn", "hfft", "ihfft", "fftfreq", "rfftfreq", "fftshift", "ifftshift")

linalg = _Namespace("strict_xp.linalg", np.linalg, _LINALG,
                    {"LinAlgError": np.linalg.LinAlgError})
fft = _Namespace("strict_xp.fft", np.fft, _FFT)

strict_xp = _Namespace(
    "strict_xp", np, _ROUTINES + list(_CONSTANTS) + list(_DTYPES),
    {"ndarray": StrictArray, "asarray": _asarray, "asanyarray": _asarray,
     "ascontiguousarray": _asarray, "array": _array, "asnumpy": _asnumpy, "linalg": linalg,
     "fft": fft})


def to_strict(x):
    """A host array (or anything ``np.asarray`` takes) as a StrictArray copy."""
    return StrictArray(np.array(x))


def from_strict(x):
    """StrictArrays back to host arrays, through tuples and lists."""
    if type(x) is StrictArray:
        return x._a
    if isinstance(x, (tuple, list)):
        return type(x)(from_strict(v) for v in x)
    return x


def register():
    """Make :func:`axone.device.array_module` return ``strict_xp`` for StrictArrays."""
    _device.register_array_module(StrictArray, strict_xp)


def unregister():
    _device.unregister_array_module(StrictArray)


# ------------------------------------------------------------------ the real device, when asked
#: True: the names above are the strict stand-in.  With AXONE_TEST_DEVICE=cupy (on a machine
#: with an NVIDIA GPU and CuPy: benchmarks/gpu_check.py sets it) the same names are CuPy's, so
#: the device suites compare every op, graph and model on the GPU against the host; the tests of
#: the stand-in's own strictness are skipped then (``stand_in_only``).
IS_STAND_IN = True
_DEVICE = __import__("os").environ.get("AXONE_TEST_DEVICE", "").strip().lower()
if _DEVICE == "cupy":
    import cupy as _cupy

    IS_STAND_IN = False
    StrictArray = _cupy.ndarray
    strict_xp = _cupy

    def to_strict(x):                                    # noqa: F811 -- the CuPy forms
        """A host array (or anything ``np.asarray`` takes) as a CuPy copy on the GPU."""
        return _cupy.asarray(np.array(x))

    def from_strict(x):                                  # noqa: F811
        """CuPy arrays back to host arrays, through tuples and lists."""
        if type(x) is _cupy.ndarray:
            return _cupy.asnumpy(x)
        if isinstance(x, (tuple, list)):
            return type(x)(from_strict(v) for v in x)
        return x

    def register():                                      # noqa: F811 -- CuPy registers itself
        pass

    def unregister():                                    # noqa: F811
        pass
elif _DEVICE:
    raise ValueError(f"AXONE_TEST_DEVICE: expected 'cupy' or nothing, received {_DEVICE!r}")


def stand_in_only(test):
    """Skip ``test`` when the suites run on a real device: it tests the stand-in itself."""
    import pytest
    return pytest.mark.skipif(not IS_STAND_IN, reason="tests the strict stand-in itself")(test)
