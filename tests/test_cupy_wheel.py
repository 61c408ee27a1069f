"""The real CuPy wheel against minigen and the strict stand-in; skipped without CuPy.

``pip install cupy-cuda12x`` installs and imports without a GPU. Without one,
a ``cupy.ndarray`` can still be built over memory CuPy does not own
(``UnownedMemory`` wrapped in a ``MemoryPointer``): it needs no driver until
something reads the values, and CuPy raises its refusals before that. With a
GPU the arrays are ordinary device arrays.
"""

import importlib.util
import json
import operator
from pathlib import Path

import numpy as np
import pytest

import minigen
from minigen import backend
from minigen.backend import strict

cupy = pytest.importorskip("cupy")
ROOT = Path(__file__).resolve().parent.parent
GPU = cupy.is_available()
_keep = []  # host buffers behind the unowned arrays must stay alive


def cupy_array(host):
    """A cupy.ndarray holding ``host``'s values: a real copy on a GPU, else a device
    array over the host buffer that CuPy will refuse to read without a driver."""
    host = np.ascontiguousarray(host)
    if GPU:
        return cupy.asarray(host)
    from cupy.cuda import memory

    _keep.append(host)
    mem = memory.UnownedMemory(host.ctypes.data, host.nbytes, host, device_id=0)
    return cupy.ndarray(host.shape, dtype=host.dtype, memptr=memory.MemoryPointer(mem, 0))


def test_to_numpy_of_a_real_cupy_array_goes_through_get():
    """The bug of issue 9: ``getattr(x, "data", x)`` took the MemoryPointer and gave
    a 0-d object array. to_numpy now copies with ``.get()``: the values on a GPU,
    and without one the CUDA error that only ``.get()`` can raise."""
    h = np.arange(4, dtype=np.float32)
    x = cupy_array(h)
    assert type(x.data).__name__ == "MemoryPointer"
    assert np.asarray(x.data).dtype == object  # what the old to_numpy returned
    if GPU:
        got = minigen.to_numpy(x)
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, h)
    else:
        with pytest.raises(cupy.cuda.runtime.CUDARuntimeError):
            minigen.to_numpy(x)
    assert cupy.ndarray in backend.device_array_types()


def test_committed_api_list_matches_this_wheel():
    """``python tools/cupy_api.py`` regenerates the list; it must be what is committed."""
    committed = json.loads((ROOT / "minigen" / "backend" / "cupy_api.json").read_text())
    if committed["cupy_version"] != cupy.__version__:
        pytest.skip(f"list is from CuPy {committed['cupy_version']}, {cupy.__version__} here")
    spec = importlib.util.spec_from_file_location("cupy_api", ROOT / "tools" / "cupy_api.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.read_api() == committed


def _strict_array(h):
    minigen.use_backend("strict")  # conftest restores the run's backend
    return backend.from_numpy(h)


REFUSALS = {
    "np.asarray": (TypeError, lambda xp, x: np.asarray(x)),
    "np.array": (TypeError, lambda xp, x: np.array(x)),
    "__array__": (TypeError, lambda xp, x: x.__array__()),
    "operator.index": (TypeError, lambda xp, x: operator.index(x[:1].reshape(()))),
    "memoryview": (TypeError, lambda xp, x: memoryview(x)),
    "matmul with a host array": (TypeError, lambda xp, x: xp.matmul(x, np.ones(3, np.float32))),
    "@ with a host array": (TypeError, lambda xp, x: x @ np.ones(3, np.float32)),
    "stack of lists": (TypeError, lambda xp, x: xp.stack([[1.0], [2.0]])),
    "fill from a host array": (ValueError, lambda xp, x: x.__setitem__(slice(None), np.ones(3))),
    "fill from a list": (ValueError, lambda xp, x: x.__setitem__(slice(None), [1.0, 2.0, 3.0])),
    "multiply.at": (NotImplementedError, lambda xp, x: xp.multiply.at(x, x, x)),
    "maximum.reduce": (NotImplementedError, lambda xp, x: xp.maximum.reduce(x)),
    "exp.accumulate": (NotImplementedError, lambda xp, x: xp.exp.accumulate(x)),
    "attribute resize": (AttributeError, lambda xp, x: x.resize),
    "attribute __array_interface__": (AttributeError, lambda xp, x: x.__array_interface__),
    "flags.writeable": (AttributeError, lambda xp, x: x.flags.writeable),
    "name errstate": (AttributeError, lambda xp, x: xp.errstate),
}


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # CuPy's
@pytest.mark.parametrize("name", list(REFUSALS))
def test_the_stand_in_refuses_what_the_wheel_refuses(name):
    """Each refusal, run on the real wheel and on the stand-in: same exception class."""
    error, call = REFUSALS[name]
    h = np.arange(3, dtype=np.float32)
    with pytest.raises(error):
        call(cupy, cupy_array(h))
    with pytest.raises(error):
        call(strict, _strict_array(h))
