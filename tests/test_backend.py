"""The backend switch, the strict CuPy stand-in, random numbers and transfers.

The strict backend exists to catch one class of bug without a GPU: a host
NumPy array mixed into device math, or a device array silently turned into a
NumPy one. These tests make sure it really refuses both, as CuPy does.
"""

import os
import subprocess
import sys
import types

import numpy as np
import pytest
from helpers import host, t

import minigen
from minigen import backend
from minigen.autograd import Function
from minigen.backend import strict as _strict


@pytest.fixture
def strict():
    """Switch to the strict backend for one test (conftest restores the run's backend)."""
    minigen.use_backend("strict")
    return _strict


# ------------------------------------------------------------------- switch


@pytest.mark.parametrize("name, module", [("numpy", np), ("strict", _strict)])
def test_use_backend_switches_the_array_module(name, module):
    minigen.use_backend(name)
    assert backend.name() == name
    assert backend.xp() is module
    x = backend.randn(2, 3)
    assert isinstance(x, module.ndarray) and backend.is_array(x)
    assert isinstance(minigen.tensor([1.0, 2.0]).data, module.ndarray)


def test_unknown_backend_name():
    before = backend.name()
    with pytest.raises(minigen.BackendError, match=r"'torch'.*numpy, cupy, strict"):
        minigen.use_backend("torch")
    assert backend.name() == before


def _import_in_subprocess(env_value, code="import minigen; print(minigen.backend.name())"):
    env = {**os.environ, "MINIGEN_BACKEND": env_value}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_env_var_picks_the_backend_at_import():
    result = _import_in_subprocess(" Strict ")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "strict"
    result = _import_in_subprocess("")
    assert result.stdout.strip() == "numpy"


def test_env_var_with_unknown_name_fails_at_first_use_with_a_clear_error():
    """Import works, so use_backend (e.g. --backend) can still win; any array use fails."""
    result = _import_in_subprocess("tpu", "import minigen; minigen.tensor([1.0])")
    assert result.returncode != 0
    assert "BackendError: MINIGEN_BACKEND=tpu: unknown backend 'tpu'" in result.stderr
    code = "import minigen; minigen.use_backend('numpy'); print(minigen.tensor([1.0]).data)"
    assert _import_in_subprocess("tpu", code).stdout.strip() == "[1.]"


# --------------------------------------------------------------------- cupy


def test_cupy_not_installed(monkeypatch):
    """Asking for CuPy without it says so and says how to install it."""
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail
    before = backend.name()
    with pytest.raises(minigen.BackendError) as info:
        minigen.use_backend("cupy")
    message = str(info.value)
    assert "cupy" in message.lower() and "not installed" in message
    assert "pip install cupy-cuda12x" in message
    assert backend.name() == before  # a failed switch changes nothing


def _fake_cupy(get_device_count):
    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=get_device_count)
    )
    return cupy


def test_cupy_installed_but_no_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(lambda: 0))
    with pytest.raises(minigen.BackendError, match=r"cupy.*no GPU.*numpy"):
        minigen.use_backend("cupy")


def test_cupy_installed_but_cuda_broken(monkeypatch):
    def broken():
        raise RuntimeError("cudaErrorInsufficientDriver")

    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(broken))
    with pytest.raises(
        minigen.BackendError, match=r"cupy.*CUDA failed.*InsufficientDriver.*driver"
    ):
        minigen.use_backend("cupy")


def test_real_cupy_unavailable_here():
    """On a machine without CuPy the real import path gives the install hint."""
    try:
        import cupy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("CuPy is installed here")
    with pytest.raises(minigen.BackendError, match="pip install cupy"):
        minigen.use_backend("cupy")


# ------------------------------------------------------------------- strict


def test_strict_refuses_implicit_conversion_to_numpy(strict):
    x = backend.randn(3)
    with pytest.raises(TypeError, match="to_numpy"):
        np.asarray(x)
    with pytest.raises(TypeError):
        np.array(x)
    with pytest.raises(TypeError):
        np.exp(x)  # a NumPy ufunc on a device array
    with pytest.raises(AttributeError):
        _ = x.__array_interface__  # no back door through the array protocols
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(x)


@pytest.mark.parametrize(
    "mix",
    [
        lambda d, h: d + h,
        lambda d, h: h + d,
        lambda d, h: d * h,
        lambda d, h: h * d,
        lambda d, h: h - d,
        lambda d, h: d @ h.reshape(3, 1),
        lambda d, h: h.reshape(1, 3) @ d,
        lambda d, h: _strict.add(d, h),
        lambda d, h: _strict.concatenate([d, h]),
        lambda d, h: d.__setitem__(slice(None), h),
        lambda d, h: d[h > 0],
    ],
)
def test_strict_refuses_mixing_with_numpy_arrays(strict, mix):
    d = backend.randn(3)
    h = np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match="numpy|NumPy"):
        mix(d, h)


def test_strict_allows_scalars_and_explicit_transfers(strict):
    d = backend.from_numpy(np.array([1.0, 2.0], dtype=np.float32))
    y = d * 2.0 + np.float32(1.0) - 3
    assert isinstance(y, _strict.ndarray) and y.dtype == np.float32
    assert float(y.sum()) == 2.0 and y.sum().item() == 2.0
    assert isinstance(y.sum(), _strict.ndarray)  # reductions give 0-d arrays, as CuPy does
    assert isinstance(d.real, _strict.ndarray)  # attributes do not leak host arrays
    np.testing.assert_array_equal(y.get(), [0.0, 2.0])
    assert isinstance(backend.to_numpy(y), np.ndarray)


def test_strict_catches_a_function_that_mixes_in_a_host_array(strict):
    """The bug the strict backend is for: library code using a host NumPy constant."""

    class LeakyScale(Function):
        def forward(self, a):
            return a * np.full(a.shape, 2.0, dtype=a.dtype)  # host array: wrong on CuPy

        def backward(self, grad):
            return grad * 2.0

    x = t(np.array([1.0, 2.0]))
    with pytest.raises(TypeError):
        LeakyScale.apply(x)
    minigen.use_backend("numpy")  # NumPy alone lets the same bug through
    assert LeakyScale.apply(t(np.array([1.0, 2.0]))).shape == (2,)


def test_strict_in_place_updates_keep_the_array(strict):
    p = backend.zeros(3)
    q = p
    p += backend.ones(3)
    p *= 3.0
    assert p is q
    np.testing.assert_array_equal(host(p), [3.0, 3.0, 3.0])
    with pytest.raises(TypeError):
        p -= np.ones(3)


def test_strict_add_at_and_namespaces(strict):
    xp = backend.xp()
    out = xp.zeros(3)
    xp.add.at(out, backend.from_numpy(np.array([0, 0, 2])), xp.ones(3))
    np.testing.assert_array_equal(host(out), [2.0, 0.0, 1.0])
    assert isinstance(xp.linalg.norm(xp.ones(4)), _strict.ndarray)
    assert xp.float32 is np.float32


# ------------------------------------------------------- transfers and dtypes


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_to_numpy_round_trip(dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    d = backend.from_numpy(a)
    assert backend.is_array(d) and d.dtype == dtype
    back = backend.to_numpy(d)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, a)
    np.testing.assert_array_equal(minigen.to_numpy(minigen.Tensor(d)), a)  # Tensors too
    back[0, 0] = 99  # a copy on device backends; either way the data came back
    assert backend.from_numpy(a, dtype=np.float32).dtype == np.float32


def test_asarray_defaults():
    assert backend.asarray([1.0, 2.0]).dtype == np.float32
    assert backend.asarray(1.5).dtype == np.float32
    assert backend.asarray(np.zeros(2)).dtype == np.float64  # an array keeps its dtype
    assert backend.asarray([1, 2], dtype=np.float64).dtype == np.float64
    assert backend.zeros((2,)).dtype == np.float32 and backend.ones((2,)).dtype == np.float32


# ----------------------------------------------------------- random numbers


def test_random_arrays_are_float32_on_the_device():
    for x in (backend.randn(4, 5), backend.rand(4, 5), backend.uniform(-1, 1, (4, 5))):
        assert backend.is_array(x) and x.dtype == np.float32 and x.shape == (4, 5)
    u = host(backend.uniform(-3.0, -2.0, (1000,)))
    assert u.min() >= -3.0 and u.max() < -2.0
    r = host(backend.rand(1000))
    assert r.min() >= 0.0 and r.max() < 1.0
    assert backend.randn(3, dtype=np.float64).dtype == np.float64


def test_manual_seed_reproducibility():
    minigen.manual_seed(123)
    a = host(backend.randn(5)), host(backend.rand(3)), backend.permutation(6)
    minigen.manual_seed(123)
    b = host(backend.randn(5)), host(backend.rand(3)), backend.permutation(6)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    minigen.manual_seed(124)
    assert not np.array_equal(host(backend.randn(5)), a[0])
    assert isinstance(a[2], np.ndarray) and sorted(a[2]) == list(range(6))


def test_same_seed_same_numbers_on_every_backend():
    minigen.use_backend("numpy")
    minigen.manual_seed(7)
    on_numpy = host(backend.randn(4))
    minigen.use_backend("strict")
    minigen.manual_seed(7)
    np.testing.assert_array_equal(host(backend.randn(4)), on_numpy)


def test_rng_state_round_trip():
    state = backend.get_rng_state()
    first = host(backend.randn(3))
    backend.set_rng_state(state)
    np.testing.assert_array_equal(host(backend.randn(3)), first)
