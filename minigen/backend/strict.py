"""A CPU stand-in for CuPy: NumPy underneath, CuPy's strictness on top.

CuPy refuses to turn a device array into a NumPy array behind your back
(``np.asarray(gpu_array)`` raises ``TypeError``) and refuses arithmetic that
mixes device and host arrays. This module copies that behaviour so the test
suite can prove, on a machine without a GPU, that minigen never mixes them.

``ndarray`` wraps a NumPy array. Module-level functions (``zeros``, ``exp``,
``matmul``, ...) are NumPy's, wrapped so that they unwrap ``ndarray``
arguments, reject plain NumPy arrays, and wrap their results. Only
``asarray``/``array`` accept NumPy input: that is the explicit transfer,
like ``cupy.asarray``. ``ndarray.get()`` is the way back, like CuPy's.
"""

import types

import numpy as _np


class ndarray:  # noqa: N801 - named like numpy.ndarray and cupy.ndarray
    """An array that lives on the pretend device."""

    __slots__ = ("_a",)
    __array_ufunc__ = None  # makes NumPy return NotImplemented: no silent mixing
    __array_priority__ = 1000

    def __init__(self, a):
        self._a = a

    def __array__(self, *args, **kwargs):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed (strict backend, "
            "as in CuPy). Use minigen.to_numpy(x) to copy to the host explicitly."
        )

    def get(self):
        """Copy to host memory as a NumPy array (as cupy.ndarray.get)."""
        return self._a.copy()

    # --- attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: _wrap(self._a.T))
    flags = property(lambda self: self._a.flags)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(a) for a in self._a)

    def __repr__(self):
        return "strict." + repr(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __bool__(self):
        return bool(self._a)

    def __index__(self):
        return self._a.__index__()

    def item(self):
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key)])

    def __setitem__(self, key, value):
        self._a[_unwrap(key)] = _unwrap(value)

    def __getattr__(self, name):
        # Array methods (sum, reshape, astype, ...) run on the wrapped array;
        # protocol names (__array_interface__, ...) must not leak through.
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if callable(attr):
            return _wrap_function(attr)
        return _wrap(attr)  # x.real, x.base: arrays must not leak out unwrapped

    def __getstate__(self):
        raise TypeError("strict arrays cannot be pickled; use minigen.to_numpy first")


def _unwrap(x):
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        raise TypeError(
            "Unsupported type <class 'numpy.ndarray'>: a host NumPy array was mixed "
            "with device arrays (strict backend, as in CuPy). Move it with "
            "minigen.backend.from_numpy first."
        )
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _wrap(x):
    if isinstance(x, _np.ndarray):
        return ndarray(x)
    if isinstance(x, _np.generic) and not isinstance(x, _np.dtype):
        return ndarray(_np.asarray(x))  # CuPy returns 0-d arrays, not scalars
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


def _wrap_function(f):
    def wrapped(*args, **kwargs):
        return _wrap(f(*_unwrap(args), **_unwrap(kwargs)))

    wrapped.__name__ = getattr(f, "__name__", "function")
    wrapped.__doc__ = getattr(f, "__doc__", None)
    return wrapped


def _binary(name):
    def op(self, other):
        return _wrap(getattr(self._a, name)(_unwrap(other)))

    return op


for _name in (
    "add sub mul truediv floordiv mod pow matmul and or xor lt le gt ge eq ne "
    "radd rsub rmul rtruediv rfloordiv rmod rpow rmatmul rand ror rxor "
    "iadd isub imul itruediv ipow"
).split():
    _dunder = f"__{_name}__"
    setattr(ndarray, _dunder, _binary(_dunder))
for _name in ("neg", "pos", "abs", "invert"):
    _dunder = f"__{_name}__"
    setattr(ndarray, _dunder, lambda self, _d=_dunder: _wrap(getattr(self._a, _d)()))


def _in_place(name):
    # a += b must keep the same wrapper object (optimizers update in place).
    def op(self, other):
        getattr(self._a, name)(_unwrap(other))
        return self

    return op


for _name in ("iadd", "isub", "imul", "itruediv", "ipow"):
    setattr(ndarray, f"__{_name}__", _in_place(f"__{_name}__"))


def asarray(a, dtype=None):
    """The explicit host-to-device transfer (NumPy input is allowed here only)."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else ndarray(a._a.astype(dtype))
    return ndarray(_np.array(a, dtype=dtype))


array = asarray


def asnumpy(a):
    return a.get() if isinstance(a, ndarray) else _np.asarray(a)


class _WrappedNamespace(types.ModuleType):
    """numpy.random, numpy.linalg, ... with every function wrapped."""

    def __init__(self, inner):
        super().__init__(inner.__name__)
        self._inner = inner

    def __getattr__(self, name):
        return _lookup(self._inner, name)


class _Ufunc:
    """A NumPy ufunc whose call and methods (at, reduce) take strict arrays."""

    def __init__(self, ufunc):
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__

    def __call__(self, *args, **kwargs):
        return _wrap(self._ufunc(*_unwrap(args), **_unwrap(kwargs)))

    def __getattr__(self, name):
        return _wrap_function(getattr(self._ufunc, name))


_cache = {}


def _lookup(namespace, name):
    key = (namespace.__name__, name)
    if key in _cache:
        return _cache[key]
    attr = getattr(namespace, name)
    if isinstance(attr, types.ModuleType):
        result = _WrappedNamespace(attr)
    elif isinstance(attr, _np.ufunc):
        result = _Ufunc(attr)
    elif isinstance(attr, type) or isinstance(attr, _np.dtype):
        result = attr  # dtypes and scalar types pass through (xp.float32, ...)
    elif callable(attr):
        result = _wrap_function(attr)
    else:
        result = attr  # constants: pi, newaxis, inf
    _cache[key] = result
    return result


def __getattr__(name):
    return _lookup(_np, name)
