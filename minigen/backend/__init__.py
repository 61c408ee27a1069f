"""The one place that decides where arrays live.

minigen never imports NumPy or CuPy for array math anywhere else. Other
modules ask this one for the array module of the moment::

    from minigen import backend
    xp = backend.xp()           # numpy, cupy, or the strict stand-in
    z = backend.randn(64, 16)   # float32 on the current device

Three backends:

- ``"numpy"``: arrays in host memory (the default).
- ``"cupy"``: arrays on an NVIDIA GPU through CuPy.
- ``"strict"``: NumPy underneath, shaped from the real CuPy wheel's API
  (``strict.py``): it offers only CuPy's names, refuses what CuPy refuses
  (implicit conversion to NumPy, host arrays mixed into device math) and
  behaves as CuPy where CuPy differs from NumPy. Running the test suite under
  it proves the library would run on CuPy, without needing a GPU.

Crossing between host and device is always explicit: ``from_numpy`` up,
``to_numpy`` down.

Pick one with ``minigen.use_backend(name)`` or the environment variable
``MINIGEN_BACKEND`` (read at import).
"""

import numbers
import os
import sys

import numpy as _np

from minigen.backend import strict as _strict
from minigen.errors import MinigenError

DEFAULT_DTYPE = _np.float32
host = _np  # NumPy, for host-side work only: files, plots, checks on the CPU
NAMES = ("numpy", "cupy", "strict")


class BackendError(MinigenError, RuntimeError):
    """A backend was asked for that cannot run here."""


_state = {"name": "numpy", "xp": _np, "rng": None}


def _load_cupy():
    try:
        import cupy
    except ImportError as e:
        raise BackendError(
            "backend 'cupy' needs CuPy, which is not installed. Install it with its CUDA "
            "libraries: `pip install 'cupy-cuda12x[ctk]'` for CUDA 12 (or minigen's `gpu` "
            "extra; see README, 'GPU'), or use backend 'numpy'."
        ) from e
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA driver missing or broken
        raise BackendError(
            f"backend 'cupy': CuPy is installed but CUDA failed ({e}). "
            "Check the NVIDIA driver, or use backend 'numpy'."
        ) from e
    if n == 0:
        raise BackendError("backend 'cupy': CuPy found no GPU. Use backend 'numpy'.")
    _smoke_test(cupy)
    return cupy


def _smoke_test(cupy):
    """An elementwise op, a matrix product and a copy back: each needs a CUDA library
    (NVRTC compiles the kernel, cuBLAS runs the product), so a missing one shows here
    and not at the first layer."""
    try:
        a = cupy.asarray(_np.arange(6, dtype=_np.float32).reshape(2, 3))
        got = cupy.asnumpy(cupy.exp(a) @ a.T)
    except Exception as e:
        raise BackendError(
            f"backend 'cupy': CuPy sees a GPU but a first computation failed "
            f"({type(e).__name__}: {e}). The plain CuPy wheel needs cuBLAS and NVRTC from "
            "a CUDA toolkit: install `pip install 'cupy-cuda12x[ctk]'` (minigen's `gpu` "
            "extra), or use backend 'numpy'."
        ) from e
    h = _np.arange(6, dtype=_np.float32).reshape(2, 3)
    if not _np.allclose(got, _np.exp(h) @ h.T, rtol=1e-4):
        raise BackendError(
            "backend 'cupy': a first computation on the GPU gave wrong numbers; "
            "check the CUDA installation, or use backend 'numpy'."
        )


def use_backend(name):
    """Switch the array backend: "numpy", "cupy" or "strict".

    Arrays made before the switch stay where they were; make models after it.
    """
    if name not in NAMES:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(NAMES)}")
    xp = {"numpy": lambda: _np, "cupy": _load_cupy, "strict": lambda: _strict}[name]()
    _state.update(name=name, xp=xp)


def name():
    """The name of the current backend."""
    return _state["name"]


def xp():
    """The array module of the current backend (numpy, cupy or the strict stand-in)."""
    return _state["xp"]


def threaded_copies():
    """True when array copies can be split over threads (``nn.conv.COPY_THREADS``):
    NumPy on the CPU releases the GIL inside a copy. CuPy queues its copies on one
    GPU stream, and the strict stand-in checks one call at a time."""
    return _state["name"] == "numpy"


def is_array(x):
    """True for an array of the current backend."""
    return isinstance(x, _state["xp"].ndarray)


# ---------------------------------------------------------------- random numbers
# Random numbers are drawn on the host by one NumPy generator and then moved to
# the device: the same seed gives the same numbers on every backend, and the
# generator's state is plain data that a checkpoint can hold.


def manual_seed(seed):
    """Seed minigen's random generator."""
    _state["rng"] = _np.random.default_rng(seed)


def rng():
    """minigen's NumPy random generator (seeded from the OS until manual_seed)."""
    if _state["rng"] is None:
        _state["rng"] = _np.random.default_rng()
    return _state["rng"]


def randn(*shape, dtype=DEFAULT_DTYPE):
    """Standard normal samples of the given shape, on the current device."""
    return from_numpy(rng().standard_normal(shape, dtype=dtype))


def rand(*shape, dtype=DEFAULT_DTYPE):
    """Uniform samples in [0, 1), on the current device."""
    return from_numpy(rng().random(shape, dtype=dtype))


def uniform(low, high, shape, dtype=DEFAULT_DTYPE):
    """Uniform samples in [low, high), made in ``dtype`` (no float64 detour)."""
    u = rng().random(shape, dtype=dtype)
    return from_numpy(u * dtype(high - low) + dtype(low))


def permutation(n):
    """A random permutation of range(n), as a host NumPy array of indices."""
    return rng().permutation(n)


def get_rng_state():
    """The generator's state (a dict of plain values), for checkpoints."""
    return rng().bit_generator.state


def set_rng_state(state):
    rng().bit_generator.state = state


# ------------------------------------------------------ making and moving arrays


def asarray(data, dtype=None):
    """Put ``data`` (Python numbers, lists, NumPy arrays) on the current device.

    Floating data without an explicit dtype becomes float32; an array that is
    already floating keeps its dtype (float64 stays float64 for gradient checks).
    """
    x = _state["xp"]
    if not hasattr(data, "dtype"):
        data, dtype = host_numbers(data), DEFAULT_DTYPE if dtype is None else dtype
    return x.asarray(data, dtype=dtype)


def host_numbers(data):
    """Python numbers or (nested) lists of them as a host NumPy array; a TypeError
    when they hold anything else. Checked on the host, so every backend refuses
    [None, 1.0] or "1" alike (NumPy would turn None into NaN, CuPy raises its own
    ValueError). A ragged list is NumPy's ValueError."""
    host = _np.asarray(data)
    if host.dtype.kind not in "biuf":
        raise TypeError(
            f"cannot make an array of numbers from {data!r}: it holds "
            f"{'text' if host.dtype.kind == 'U' else 'objects that are not numbers'}"
        )
    return host


def zeros(shape, dtype=DEFAULT_DTYPE):
    return _state["xp"].zeros(shape, dtype=dtype)


def ones(shape, dtype=DEFAULT_DTYPE):
    return _state["xp"].ones(shape, dtype=dtype)


def to_numpy(x):
    """Copy an array to host memory as a NumPy array, for plots and files.

    A NumPy array is returned as is; a device array (CuPy's or the strict
    stand-in's) is copied with ``.get()``; numbers and lists go through
    ``np.asarray``. No duck typing: ``.data`` of a CuPy array is a device
    pointer, not its values. For a Tensor use ``minigen.to_numpy`` (autograd.py),
    which hands its array here.
    """
    if isinstance(x, _np.ndarray):
        return x
    if isinstance(x, device_array_types()):
        return x.get()
    if isinstance(x, (numbers.Number, _np.generic, list, tuple)):
        return _np.asarray(x)
    raise TypeError(
        f"to_numpy: cannot copy a {type(x).__name__} to the host; pass an array, "
        "or use minigen.to_numpy(tensor) for a Tensor"
    )


def device_array_types():
    """The device array classes that exist here: the stand-in's, and CuPy's once imported."""
    cupy = sys.modules.get("cupy")
    cupy_ndarray = getattr(cupy, "ndarray", None)
    return (_strict.ndarray,) if cupy_ndarray is None else (_strict.ndarray, cupy_ndarray)


def to_floats(values):
    """{name: one-element array or number} -> {name: float}, with one
    device-to-host copy for all of them: on a GPU each separate ``.item()``
    waits for the device, so a training step reads its losses once, at its end."""
    on_device = [k for k, v in values.items() if is_array(v)]
    out = {k: float(v) for k, v in values.items() if k not in on_device}  # host numbers
    if on_device:
        stacked = _state["xp"].stack([values[k].reshape(()) for k in on_device])
        out.update(zip(on_device, to_numpy(stacked).tolist()))
    return {k: out[k] for k in values}


def from_numpy(a, dtype=None):
    """Copy a host NumPy array to the current device (the explicit transfer)."""
    return _state["xp"].asarray(a, dtype=dtype)


class _Unavailable:
    """Stands in for the array module of a backend that MINIGEN_BACKEND asked for but
    that cannot run: any use raises the BackendError, so ``use_backend`` (e.g. from
    ``--backend``) can still choose another one first."""

    def __init__(self, error):
        self.error = error

    def __getattr__(self, attr):
        raise self.error


def set_default_from_env():
    requested = os.environ.get("MINIGEN_BACKEND", "numpy").strip().lower() or "numpy"
    try:
        use_backend(requested)
    except BackendError as e:
        error = BackendError(f"MINIGEN_BACKEND={requested}: {e}")
        _state.update(name=requested, xp=_Unavailable(error))


set_default_from_env()
