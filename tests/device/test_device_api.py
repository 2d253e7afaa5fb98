"""axone.device: Keras-style device placement, array_module, moving arrays, the CuPy probe."""
import importlib.machinery
import sys
import threading
import types
import warnings

import numpy as np
import pytest

import axone
from axone import Tensor
from axone import device as dev
from axone.ops import core as C

import strict_xp
from strict_xp import StrictArray, from_strict, to_strict


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    """Each test starts with nothing probed, nothing warned, no default chosen, no env var."""
    monkeypatch.setattr(dev, "_gpu", None)
    monkeypatch.setattr(dev, "_default", None)
    monkeypatch.setattr(dev, "_warned", set())
    monkeypatch.delenv("AXONE_DEVICE", raising=False)
    monkeypatch.setattr(dev, "_MODULES", dev._MODULES)   # same dict; entries restored below
    before = dict(dev._MODULES)
    yield
    dev._MODULES.clear()
    dev._MODULES.update(before)


class _Cuda:
    """A stand-in ``cupy.cuda`` whose Device contexts record what was entered."""

    def __init__(self, count=1, error=None):
        self.entered = []
        cuda = self

        class Device:
            def __init__(self, index):
                self.index = index

            def __enter__(self):
                cuda.entered.append(self.index)
                return self

            def __exit__(self, *exc):
                cuda.entered.append(-1)
                return False

        def getDeviceCount():          # noqa: N802 - CuPy's name
            if error is not None:
                raise error
            return count
        self.Device = Device
        self.runtime = types.SimpleNamespace(getDeviceCount=getDeviceCount)


def _fake_cupy(monkeypatch, count=1, error=None):
    """An importable module named cupy: the strict namespace with a cuda attribute."""
    mod = types.ModuleType("cupy")
    mod.__spec__ = importlib.machinery.ModuleSpec("cupy", None)
    for name in ("asarray", "asnumpy", "zeros", "ones", "arange"):
        setattr(mod, name, getattr(strict_xp.strict_xp, name))
    mod.ndarray = StrictArray
    mod.cuda = _Cuda(count, error)
    monkeypatch.setitem(sys.modules, "cupy", mod)
    return mod


# ------------------------------------------------------------------ names and scopes
def test_default_is_the_cpu_without_cupy():
    assert importlib.util.find_spec("cupy") is None      # this machine has no CuPy
    assert dev.get_device() == "cpu:0"
    assert dev.current_module() is np
    assert not dev.gpu_available()


@pytest.mark.parametrize("name,canonical", [("cpu", "cpu:0"), ("cpu:0", "cpu:0"),
                                            ("CPU:0", "cpu:0"), (" cpu ", "cpu:0")])
def test_cpu_names(name, canonical):
    with dev.device(name) as d:
        assert d.name == canonical
        assert dev.get_device() == canonical


@pytest.mark.parametrize("bad", ["tpu", "gpu:x", "gpu:-1", "cpu:1", "", "gpu:0:1", "cuda:"])
def test_malformed_names_raise_value_error(bad):
    with pytest.raises(ValueError, match="device"):
        dev.device(bad)
    with pytest.raises(ValueError, match="set_device"):
        dev.set_device(bad)


@pytest.mark.parametrize("bad", [None, 0, ("gpu", 0)])
def test_non_string_names_raise_value_error(bad):
    with pytest.raises(ValueError, match="expected a device name string"):
        dev.device(bad)


def test_gpu_without_cupy_runs_on_the_cpu_and_warns_once():
    with pytest.warns(RuntimeWarning, match=r"CuPy is not installed.*pip install 'axone\[gpu\]'"):
        with dev.device("gpu:0") as d:
            assert d.name == "cpu:0"
            assert dev.get_device() == "cpu:0"
            assert type(axone.ops.numpy.zeros(2).data) is np.ndarray
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dev.device("gpu")                 # said once: no second warning
        assert dev.set_device("cuda:0") == "cpu:0"


def test_the_warning_points_at_the_caller():
    with pytest.warns(RuntimeWarning) as rec:
        axone.device("gpu:1")
    assert rec[0].filename == __file__


def test_scopes_nest_and_restore():
    dev.set_device("cpu")
    with dev.device("cpu:0"):
        with dev.device("cpu"):
            assert dev.get_device() == "cpu:0"
        assert dev.get_device() == "cpu:0"
    assert dev.get_device() == "cpu:0"


def test_scopes_are_per_thread(monkeypatch):
    monkeypatch.setattr(dev, "_gpu", (strict_xp.strict_xp, 1, None))
    monkeypatch.setattr(strict_xp.strict_xp, "cuda", _Cuda(), raising=False)
    monkeypatch.setattr(dev, "_default", dev._CPU)
    seen = {}
    with dev.device("gpu:0"):
        t = threading.Thread(target=lambda: seen.setdefault("other", dev.get_device()))
        t.start()
        t.join()
        seen["here"] = dev.get_device()
    assert seen == {"other": "cpu:0", "here": "gpu:0"}


def test_axone_device_is_callable_and_a_module():
    assert isinstance(axone.device, types.ModuleType)
    scope = axone.device("cpu")
    assert isinstance(scope, dev.device) and repr(scope) == "device('cpu:0')"
    assert axone.device.get_device is dev.get_device


# ------------------------------------------------------------------ AXONE_DEVICE and the probe
def test_env_variable_sets_the_default(monkeypatch):
    monkeypatch.setenv("AXONE_DEVICE", "cpu:0")
    assert dev.get_device() == "cpu:0"


def test_env_variable_gpu_without_cupy_warns(monkeypatch):
    monkeypatch.setenv("AXONE_DEVICE", "gpu")
    with pytest.warns(RuntimeWarning, match="AXONE_DEVICE.*CuPy is not installed"):
        assert dev.get_device() == "cpu:0"


def test_env_variable_malformed_raises(monkeypatch):
    monkeypatch.setenv("AXONE_DEVICE", "npu:0")
    with pytest.raises(ValueError, match="AXONE_DEVICE"):
        dev.get_device()


def test_default_stays_the_cpu_while_auto_gpu_is_off(monkeypatch):
    _fake_cupy(monkeypatch, count=2)
    assert dev.gpu_available() and dev.AUTO_GPU is False
    assert dev.get_device() == "cpu:0"


def test_default_is_the_gpu_when_cupy_sees_a_device(monkeypatch):
    monkeypatch.setattr(dev, "AUTO_GPU", True)
    cupy = _fake_cupy(monkeypatch, count=2)
    assert dev.gpu_available()
    assert dev.get_device() == "gpu:0"
    assert dev.current_module() is cupy
    assert dev._MODULES[StrictArray] is cupy          # CuPy's array type registered by the probe
    with dev.device("gpu:1"):
        assert dev.get_device() == "gpu:1"
        assert cupy.cuda.entered == [1]               # the CUDA device is made current
    assert cupy.cuda.entered == [1, -1]
    with pytest.warns(RuntimeWarning, match="CUDA reports 2 device"):
        assert dev.device("gpu:5").name == "cpu:0"
    assert dev.set_device("cpu") == "cpu:0" and dev.get_device() == "cpu:0"


@pytest.mark.parametrize("count,error", [(0, None), (1, RuntimeError("cudaErrorNoDevice"))])
def test_cupy_without_a_device_runs_on_the_cpu(monkeypatch, count, error):
    _fake_cupy(monkeypatch, count=count, error=error)
    assert dev.get_device() == "cpu:0"
    with pytest.warns(RuntimeWarning, match="CUDA reports no device"):
        assert dev.device("gpu:0").name == "cpu:0"


def test_broken_cupy_import_is_a_warning_not_a_traceback(monkeypatch):
    class Broken(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "cupy":
                return importlib.machinery.ModuleSpec("cupy", self)

        def create_module(self, spec):
            raise ImportError("libcudart.so.12: cannot open shared object file")

        def exec_module(self, module):
            pass

    monkeypatch.setattr(sys, "meta_path", [Broken()] + sys.meta_path)
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    with pytest.warns(RuntimeWarning, match="CuPy could not be imported.*libcudart"):
        assert dev.device("gpu").name == "cpu:0"


# ------------------------------------------------------------------ array_module and registration
def test_array_module_of_host_values_is_numpy():
    assert dev.array_module() is np
    assert dev.array_module(np.ones(2), 1.0, None, [1, 2], np.float32(2)) is np


def test_registered_types_give_their_module():
    strict_xp.register()
    x = to_strict(np.ones(3))
    assert dev.array_module(x) is strict_xp.strict_xp
    assert dev.array_module(np.ones(2), 3, x) is strict_xp.strict_xp
    assert dev.is_device_array(x) and not dev.is_device_array(np.ones(2))
    strict_xp.unregister()
    assert dev.array_module(x) is np


def test_cupy_arrays_are_recognized_by_type_without_registration(monkeypatch):
    fake_ndarray = type("ndarray", (), {"__module__": "cupy._core.core"})
    arr = fake_ndarray()
    assert dev.array_module(arr) is np               # no cupy module loaded: not a device array
    mod = types.ModuleType("cupy")
    mod.ndarray, mod.asnumpy = fake_ndarray, lambda a: np.zeros(1)
    monkeypatch.setitem(sys.modules, "cupy", mod)
    assert dev.array_module(arr) is mod
    assert dev._MODULES[fake_ndarray] is mod         # registered on first sight


def test_register_array_module_checks_its_arguments():
    with pytest.raises(TypeError, match="must be a type"):
        dev.register_array_module("StrictArray", strict_xp.strict_xp)
    with pytest.raises(ValueError, match="host arrays"):
        dev.register_array_module(np.ndarray, strict_xp.strict_xp)
    with pytest.raises(TypeError, match="no asnumpy"):
        dev.register_array_module(StrictArray, types.SimpleNamespace())


# ------------------------------------------------------------------ moving arrays, Tensors
def test_to_numpy_and_to_device(monkeypatch):
    strict_xp.register()
    h = np.arange(6.0).reshape(2, 3)
    s = to_strict(h)
    back = dev.to_numpy(s)
    assert type(back) is np.ndarray and np.array_equal(back, h)
    assert dev.to_numpy(h) is h
    assert type(dev.to_device(s, "cpu")) is np.ndarray
    assert dev.to_device(h, "cpu") is h
    monkeypatch.setattr(dev, "_gpu", (strict_xp.strict_xp, 1, None))
    monkeypatch.setattr(strict_xp.strict_xp, "cuda", _Cuda(), raising=False)
    moved = dev.to_device(h, "gpu:0")
    assert type(moved) is StrictArray and np.array_equal(from_strict(moved), h)
    with dev.device("gpu:0"):
        assert type(dev.to_device([1.0, 2.0])) is StrictArray      # default: the current device


def test_tensor_keeps_device_arrays_and_host_arrays():
    strict_xp.register()
    s = to_strict(np.ones((2, 2)))
    t = Tensor(s)
    assert t.data is s
    t32 = Tensor(s, dtype="float32")
    assert type(t32.data) is StrictArray and t32.dtype == np.float32
    h = np.ones(3, np.float64)
    assert Tensor(h).data is h                          # the host path is unchanged
    assert Tensor([1, 2]).dtype == np.float32
    strict_xp.unregister()
    with pytest.raises(TypeError):                      # unregistered: refused, as NumPy would
        Tensor(s)


def test_keras_dtype_of_a_device_array():
    strict_xp.register()
    assert C.dtype(to_strict(np.ones(2, np.float32))) == "float32"
    assert C.dtype(Tensor(to_strict(np.ones(2, np.int32)))) == "int32"
