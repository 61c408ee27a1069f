"""The backend switch, the strict CuPy stand-in, random numbers and transfers.

The strict backend exists to catch, without a GPU, what would fail on CuPy: a
host NumPy array mixed into device math, a device array silently turned into a
NumPy one. Each CuPy behaviour it models has its own test, with its source, in
test_strict_cupy_api.py; the real CuPy wheel is checked in test_cupy_wheel.py.
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
    assert "pip install 'cupy-cuda12x[ctk]'" in message
    assert backend.name() == before  # a failed switch changes nothing


def _fake_cupy(get_device_count, broken=None):
    """A module shaped like CuPy over NumPy; ``broken`` names a function that fails
    as a missing CUDA library makes it fail."""
    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=get_device_count)
    )
    cupy.ndarray, cupy.asarray, cupy.asnumpy, cupy.exp = np.ndarray, np.asarray, np.asarray, np.exp
    if broken:

        def fail(*args, **kwargs):
            raise RuntimeError(broken)

        setattr(cupy, broken.split(":")[0], fail)
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


@pytest.mark.parametrize(
    "broken",
    ["exp: libnvrtc.so.12: cannot open shared object file", "asnumpy: cudaErrorLaunchFailure"],
)
def test_cupy_smoke_computation_failure_is_one_backend_error(monkeypatch, broken):
    """A GPU is found but a kernel cannot compile or run: one BackendError at the switch,
    naming the error and the wheel with CUDA's libraries, not a failure at the first layer."""
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(lambda: 1, broken=broken))
    before = backend.name()
    with pytest.raises(minigen.BackendError) as info:
        minigen.use_backend("cupy")
    message = str(info.value)
    assert broken.split(": ", 1)[1] in message and "cupy-cuda12x[ctk]" in message
    assert backend.name() == before


def test_cupy_smoke_computation_wrong_numbers(monkeypatch):
    cupy = _fake_cupy(lambda: 1)
    cupy.exp = lambda a: a  # a broken kernel: runs, gives wrong values
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    with pytest.raises(minigen.BackendError, match="wrong numbers"):
        minigen.use_backend("cupy")


def test_cupy_switch_after_a_passing_smoke_computation(monkeypatch):
    cupy = _fake_cupy(lambda: 1)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    minigen.use_backend("cupy")
    assert backend.name() == "cupy" and backend.xp() is cupy


def test_real_cupy_without_a_gpu_here():
    """The real import path, where no GPU can be used: the install hint without CuPy,
    a CUDA error with CuPy installed (the wheel imports without a GPU)."""
    try:
        import cupy
    except ImportError:
        with pytest.raises(minigen.BackendError, match="pip install 'cupy-cuda12x"):
            minigen.use_backend("cupy")
        return
    if cupy.is_available():
        pytest.skip("a GPU is usable here; tools/gpu_check.py covers that case")
    with pytest.raises(minigen.BackendError, match="CUDA failed|no GPU"):
        minigen.use_backend("cupy")


# ------------------------------------------------------------------- strict


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
    ],
)
def test_strict_refuses_mixing_with_numpy_arrays(strict, mix):
    d = backend.randn(3)
    h = np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match="numpy|NumPy"):
        mix(d, h)


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
    p -= 1.0
    p /= 2.0
    assert p is q
    np.testing.assert_array_equal(host(p), [1.0, 1.0, 1.0])
    with pytest.raises(TypeError):
        p -= np.ones(3)


# ------------------------------------------------------- transfers and dtypes


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_to_numpy_round_trip(dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    d = backend.from_numpy(a)
    assert backend.is_array(d) and d.dtype == dtype
    back = backend.to_numpy(d)
    assert isinstance(back, np.ndarray) and back.dtype == dtype
    np.testing.assert_array_equal(back, a)
    np.testing.assert_array_equal(minigen.to_numpy(minigen.Tensor(d)), a)  # Tensors too
    assert backend.from_numpy(a, dtype=np.float32).dtype == np.float32


def test_to_numpy_of_a_device_array_is_a_copy(strict):
    """Values equal, and no memory shared with the device buffer: writing the host
    copy leaves the device array as it was."""
    minigen.manual_seed(5)
    expected = np.random.default_rng(5).standard_normal(3, dtype=np.float32)
    x = backend.randn(3)
    h = backend.to_numpy(x)
    assert type(h) is np.ndarray and h.dtype == np.float32
    np.testing.assert_array_equal(h, expected)
    h[:] = 0.0
    np.testing.assert_array_equal(backend.to_numpy(x), expected)
    assert backend.to_numpy(x) is not backend.to_numpy(x)  # a fresh copy each time


def test_to_numpy_reads_values_not_the_data_pointer(strict):
    """``x.data`` of a device array is its pointer (CuPy's MemoryPointer); the old
    ``getattr(x, "data", x)`` turned that into a 0-d object array."""
    x = backend.from_numpy(np.array([1.5, 2.5], dtype=np.float32))
    assert np.asarray(x.data).dtype == object
    assert backend.to_numpy(x).dtype == np.float32


def test_to_numpy_of_host_data():
    a = np.arange(3.0)
    assert backend.to_numpy(a) is a  # a NumPy array is returned as is
    np.testing.assert_array_equal(backend.to_numpy([1, 2]), [1, 2])
    assert backend.to_numpy(2.5) == 2.5


def test_checkpoint_round_trip_on_the_strict_backend(strict, tmp_path):
    """A model's state saved from device arrays and loaded back: the file holds host
    arrays (no pickled pointers) and restores the same values."""
    from minigen import checkpoint, nn

    model = nn.Linear(3, 2)
    state = {"model": model.state_dict(), "step": 7, "options": {}}
    path = checkpoint.save(tmp_path / "c.npz", state)
    with np.load(path, allow_pickle=False) as f:
        assert f["model/weight"].dtype == np.float32
    loaded = checkpoint.load(path)
    assert loaded["step"] == 7 and loaded["options"] == {}  # conv-vae's options are empty
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded["model"][name], host(value))
    restored = nn.Linear(3, 2)
    restored.load_state_dict({k: backend.from_numpy(v) for k, v in loaded["model"].items()})
    for name, value in restored.state_dict().items():
        assert backend.is_array(value)
        np.testing.assert_array_equal(host(value), host(model.state_dict()[name]))


def test_tests_host_helper_copies_like_to_numpy(strict):
    x = backend.randn(2)
    h = host(minigen.Tensor(x))
    assert type(h) is np.ndarray
    np.testing.assert_array_equal(h, backend.to_numpy(x))


# ------------------------------------------------------------ same numbers


def test_leaf_gradients_are_never_broadcast_views(strict):
    """sum() sends back a broadcast view (zero strides); kept as a leaf's .grad, an
    in-place update on CuPy (or the stand-in, whose views are writable as CuPy's)
    would write one value to every element."""
    x = t(np.array([1.0, 2.0, 3.0]))
    x.sum().backward()
    assert 0 not in x.grad.strides
    x.grad[0] = 5.0  # an in-place update touches one element only
    np.testing.assert_array_equal(host(x.grad), [5.0, 1.0, 1.0])


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


def test_to_floats_reads_device_scalars_and_numbers_together():
    xp = backend.xp()
    values = {
        "a": xp.asarray(1.5, dtype=np.float32),
        "b": 2,
        "c": xp.ones((1,), dtype=np.float32) * 3,
        "d": xp.asarray([0.25], dtype=np.float32).sum(),
    }
    out = backend.to_floats(values)
    assert out == {"a": 1.5, "b": 2.0, "c": 3.0, "d": 0.25}
    assert list(out) == ["a", "b", "c", "d"] and all(type(v) is float for v in out.values())
