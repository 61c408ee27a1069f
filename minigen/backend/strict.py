"""A CPU stand-in for CuPy: NumPy underneath, CuPy's API and refusals on top.

Running the suite on this module proves, without a GPU, that minigen would run
on CuPy. A stand-in proves only what it is faithful to, so its surface is not
written by hand: ``cupy_api.json`` (next to this file, written from the real
CuPy wheel by ``python tools/cupy_api.py``) lists the names it offers: the
module's names, ``cupy.ndarray``'s attributes, ``cupy.linalg``,
``cupy.random``, and the ufunc methods CuPy implements for each ufunc.
Anything else raises, as on CuPy.

What it refuses, as CuPy does:

- implicit conversion to NumPy (``np.asarray(x)``, ``np.array(x)``,
  ``x.__array__()``); the way back is ``x.get()`` or ``asnumpy``;
- host NumPy arrays, and lists, as operands of ufuncs and operators, and host
  arrays as arguments of any other function (``asarray``/``array`` are the
  explicit transfer and take host data); ``stack``/``concatenate`` take
  device arrays only;
- host memory behind ``x.data`` (it is an opaque device pointer) and
  ``__index__`` (a 1-element array is not an integer index);
- a non-scalar host value in ``x[...] = value``;
- ufunc methods CuPy does not implement (``multiply.at``, ``maximum.reduce``).

Where CuPy differs from NumPy it behaves as CuPy: NumPy functions applied to
its arrays dispatch back to it (``np.exp(x)``, ``np.concatenate([x, y])``);
reductions return 0-d arrays, not scalars; ``broadcast_to`` returns a writable
view (CuPy has no read-only arrays); NumPy arrays and lists are accepted as
indices; ``add.at`` adds repeated indices in an unspecified order (CuPy uses
atomic adds, so float sums vary from run to run).

One deliberate extra refusal: arrays cannot be pickled (CuPy pickles them, but
a file holding a device array loads only where CuPy runs; minigen writes
host copies made with ``minigen.to_numpy``).
"""

import json as _json
import sys as _sys
import types as _types
from pathlib import Path as _Path

import numpy as _np

_API = _json.loads(_Path(__file__).with_name("cupy_api.json").read_text())
_VERSION = _API["cupy_version"]
_MODULE = frozenset(_API["module"])
_NDARRAY = frozenset(_API["ndarray"])
_FLAGS = frozenset(_API["flags"])
_SUBMODULES = {"linalg": frozenset(_API["linalg"]), "random": frozenset(_API["random"])}
_UFUNCS = {name: frozenset(methods) for name, methods in _API["ufuncs"].items()}
_UFUNC_METHODS = ("accumulate", "at", "outer", "reduce", "reduceat")
_SCALARS = (bool, int, float, complex, _np.generic)
_order = _np.random.default_rng()  # the unspecified order of add.at (unseeded on purpose)


# ------------------------------------------------------------------ refusals


def _host_array_error():
    return TypeError(
        "Unsupported type <class 'numpy.ndarray'>: a host NumPy array was mixed with "
        "device arrays (strict backend, as in CuPy). Move it with "
        "minigen.backend.from_numpy first."
    )


def _operand(x):
    """A ufunc operand: a device array or a scalar, as CuPy's ufuncs accept."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        raise _host_array_error()
    if isinstance(x, _SCALARS):
        return x
    raise TypeError(
        f"Unsupported type {type(x)}: CuPy ufuncs and operators take device arrays and "
        "scalars only (strict backend). Make an array with xp.asarray first."
    )


def _unwrap(x):
    """Arguments of functions and methods: device arrays unwrapped, host arrays refused."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        raise _host_array_error()
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _index(key):
    """An index: device arrays unwrapped; NumPy arrays and lists accepted, as in CuPy."""
    if isinstance(key, ndarray):
        return key._a
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    return key


def _wrap(x):
    if isinstance(x, _np.ndarray):
        return ndarray(x)
    if isinstance(x, _np.generic):
        return ndarray(_np.asarray(x))  # CuPy returns 0-d arrays, not scalars
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


# Functions taking a sequence of arrays; CuPy types each element as cupy.ndarray.
_ARRAY_SEQUENCES = frozenset("concatenate stack hstack vstack dstack column_stack".split())


def _device_arrays(name, arrays):
    for a in arrays:
        if isinstance(a, _np.ndarray):
            raise _host_array_error()
        if not isinstance(a, ndarray):
            raise TypeError(
                f"{name}: expected device arrays (cupy.ndarray), got {type(a)} (strict "
                "backend, as in CuPy). Make arrays with xp.asarray first."
            )


def _wrap_function(f):
    name = getattr(f, "__name__", "")

    def wrapped(*args, **kwargs):
        if name in _ARRAY_SEQUENCES and args:
            _device_arrays(name, args[0])
        return _wrap(f(*_unwrap(args), **_unwrap(kwargs)))

    wrapped.__name__ = getattr(f, "__name__", "function")
    wrapped.__doc__ = getattr(f, "__doc__", None)
    return wrapped


def _not_modelled(what):
    return AttributeError(
        f"{what} exists in CuPy {_VERSION} but the strict backend does not model it"
    )


# ------------------------------------------------------------------- arrays


class _MemoryPointer:
    """What ``x.data`` is on CuPy: an address in device memory, not a host buffer."""

    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = ptr

    def __repr__(self):
        return f"<strict MemoryPointer 0x{self.ptr:x} (device memory, opaque)>"


class _Flags:
    """``x.flags`` as on CuPy: contiguity and ownership, no ``writeable``."""

    __slots__ = ("_f",)

    def __init__(self, flags):
        self._f = flags

    def __getattr__(self, name):
        if name not in _FLAGS:
            raise AttributeError(f"'Flags' object has no attribute {name!r} (as in CuPy)")
        return getattr(self._f, name)

    def __getitem__(self, name):
        return getattr(self, name.lower())


class ndarray:  # noqa: N801 - named like numpy.ndarray and cupy.ndarray
    """An array that lives on the pretend device."""

    __slots__ = ("_a",)
    __array_priority__ = 100  # as cupy.ndarray

    def __init__(self, a):
        self._a = a

    # --- crossing between host and device
    def __array__(self, *args, **kwargs):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed (strict backend, as in "
            "CuPy). Use minigen.to_numpy(x) to copy to the host explicitly."
        )

    def get(self, stream=None, order="C", out=None, blocking=True):
        """Copy to host memory as a NumPy array (as cupy.ndarray.get)."""
        if out is None:
            return _np.array(self._a, order=order, copy=True)
        if not isinstance(out, _np.ndarray) or out.dtype != self.dtype or out.shape != self.shape:
            raise TypeError("get(out=...) needs a NumPy array of the same dtype and shape")
        out[...] = self._a
        return out

    def set(self, arr, stream=None):
        """Copy a host NumPy array of the same dtype and shape in (as cupy.ndarray.set)."""
        if not isinstance(arr, _np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if arr.dtype != self.dtype or arr.shape != self.shape:
            raise ValueError(
                f"set(): expected {self.dtype} {self.shape}, got {arr.dtype} {arr.shape}"
            )
        self._a[...] = arr

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # NumPy ufuncs on device arrays run CuPy's ufunc of the same name
        # (cupy.ndarray.__array_ufunc__); host arrays among the operands then
        # raise TypeError there, other objects make NumPy raise.
        if ufunc.__name__ not in _MODULE:
            return NotImplemented
        out = kwargs.get("out", ())
        for x in inputs + (out if isinstance(out, tuple) else (out,)):
            if not isinstance(x, (ndarray, _np.ndarray) + _SCALARS):
                return NotImplemented
        if isinstance(out, tuple) and len(out) == 1:
            kwargs["out"] = out[0]
        func = _lookup(ufunc.__name__)
        if method != "__call__":
            func = getattr(func, method)
        return func(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        # NumPy functions on device arrays run CuPy's function of the same
        # name and module (cupy.ndarray.__array_function__).
        module = _sys.modules[__name__]
        for part in func.__module__.split(".")[1:]:
            module = getattr(module, part, None)
        own = getattr(module, func.__name__, None)
        if own is None or not all(issubclass(t, (ndarray, _np.ndarray)) for t in types):
            return NotImplemented
        return own(*args, **kwargs)

    def __reduce__(self):
        raise TypeError("strict arrays cannot be pickled; use minigen.to_numpy first")

    def __copy__(self):
        return ndarray(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray(self._a.copy())

    # --- attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: ndarray(self._a.T))
    mT = property(lambda self: ndarray(self._a.mT))  # noqa: N815 - CuPy's name
    real = property(lambda self: ndarray(self._a.real))
    imag = property(lambda self: ndarray(self._a.imag))
    base = property(lambda self: None if self._a.base is None else ndarray(self._a.base))
    flags = property(lambda self: _Flags(self._a.flags))
    data = property(lambda self: _MemoryPointer(self._a.__array_interface__["data"][0]))

    def __getattr__(self, name):
        # Methods CuPy's ndarray has (sum, reshape, astype, ...) run on the
        # NumPy array; any other name is refused as CuPy refuses it.
        if name not in _NDARRAY or name.startswith("__"):
            raise AttributeError(
                f"'cupy.ndarray' object has no attribute {name!r} (strict backend)"
            )
        attr = getattr(self._a, name, None)
        if not callable(attr):
            raise _not_modelled(f"cupy.ndarray.{name}")
        return _wrap_function(attr)

    # --- Python protocols (each a device-to-host copy on CuPy)
    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(a) for a in self._a)

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        return format(self._a, spec)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __complex__(self):
        return complex(self._a)

    def __bool__(self):
        return bool(self._a)

    # --- indexing
    def __getitem__(self, key):
        return _wrap(self._a[_index(key)])

    def __setitem__(self, key, value):
        if isinstance(value, ndarray):
            value = value._a
        elif isinstance(value, (_np.ndarray, list, tuple)) and _np.ndim(value) > 0:
            raise ValueError(
                "non-scalar numpy.ndarray cannot be used for fill (strict backend, as in "
                "CuPy): move the value to the device with minigen.backend.from_numpy first."
            )
        self._a[_index(key)] = value

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __imatmul__(self, other):
        self._a[...] = matmul(self, other)._a
        return self


def _binary(ufunc_name, reflected=False):
    def op(self, other):
        u = _lookup(ufunc_name)
        return u(other, self) if reflected else u(self, other)

    return op


def _in_place(ufunc_name):
    def op(self, other):  # a += b keeps the same array (optimizers update in place)
        _lookup(ufunc_name)(self, other, out=self)
        return self

    return op


for _op, _ufunc in {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "truediv": "true_divide",
    "floordiv": "floor_divide",
    "mod": "remainder",
    "pow": "power",
    "and": "bitwise_and",
    "or": "bitwise_or",
    "xor": "bitwise_xor",
    "lshift": "left_shift",
    "rshift": "right_shift",
}.items():
    setattr(ndarray, f"__{_op}__", _binary(_ufunc))
    setattr(ndarray, f"__r{_op}__", _binary(_ufunc, reflected=True))
    setattr(ndarray, f"__i{_op}__", _in_place(_ufunc))
for _op, _ufunc in {
    "lt": "less",
    "le": "less_equal",
    "gt": "greater",
    "ge": "greater_equal",
    "eq": "equal",
    "ne": "not_equal",
}.items():
    setattr(ndarray, f"__{_op}__", _binary(_ufunc))
_UNARY = {"neg": "negative", "pos": "positive", "abs": "absolute", "invert": "invert"}
for _op, _ufunc in _UNARY.items():
    setattr(ndarray, f"__{_op}__", lambda self, _u=_ufunc: _lookup(_u)(self))
ndarray.__hash__ = None


# ------------------------------------------------------------------- ufuncs


class ufunc:  # noqa: N801 - named like cupy.ufunc
    """A NumPy ufunc with CuPy's operand rules and only CuPy's methods."""

    def __init__(self, u, methods):
        self._u, self._methods = u, methods
        self.__name__ = u.__name__
        self.nin, self.nout, self.nargs, self.types = u.nin, u.nout, u.nargs, u.types

    def __repr__(self):
        return f"<strict ufunc '{self.__name__}'>"

    def __call__(self, *args, **kwargs):
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"])
        return _wrap(self._u(*(_operand(a) for a in args), **kwargs))

    def __getattr__(self, name):
        if name not in _UFUNC_METHODS:
            raise AttributeError(f"'cupy.ufunc' object has no attribute {name!r}")
        if name not in self._methods:
            raise NotImplementedError(f"`cupy_{self.__name__}.{name}` is not supported yet")
        if name == "at":
            return self._at

        def method(*args, **kwargs):
            if "out" in kwargs:
                kwargs["out"] = _unwrap(kwargs["out"])
            args = [_operand(args[0])] + [_index(a) for a in args[1:]]  # reduceat: indices
            return _wrap(getattr(self._u, name)(*args, **kwargs))

        return method

    def _at(self, a, indices, b=None):
        """In-place ``a[indices] op= b``; repeated indices in an unspecified order."""
        if not isinstance(a, ndarray):
            raise TypeError(f"{self.__name__}.at needs a device array, got {type(a)}")
        indices = _index(indices)
        operands = () if b is None else (_operand(b),)
        parts = indices if isinstance(indices, tuple) else (indices,)
        if all(isinstance(p, _np.ndarray) and p.dtype.kind in "iu" for p in parts):
            # Shuffle the updates: CuPy applies them with atomics, in no set order.
            parts = _np.broadcast_arrays(*parts)
            rest = a.shape[len(parts) :]
            order = _order.permutation(parts[0].size)
            indices = tuple(p.reshape(-1)[order] for p in parts)
            if operands:
                v = _np.broadcast_to(operands[0], parts[0].shape + rest)
                operands = (v.reshape((-1,) + rest)[order],)
        self._u.at(a._a, indices, *operands)


# ------------------------------------------------- module-level functions


def asarray(a, dtype=None, order=None, **kwargs):
    """The explicit host-to-device transfer: host data (NumPy arrays, lists) allowed here."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else ndarray(a._a.astype(dtype))
    return ndarray(_numeric(_np.array(a, dtype=dtype, order=order or "K")))


def array(obj, dtype=None, copy=True, order="K", **kwargs):
    """Like asarray, but a device array is copied (as cupy.array)."""
    if isinstance(obj, ndarray):
        return ndarray(_np.array(obj._a, dtype=dtype, copy=copy, order=order))
    return ndarray(_numeric(_np.array(obj, dtype=dtype, order=order)))


def _numeric(a):
    """Refuse what a GPU cannot hold, as CuPy does: [None, 1.0] is an object array."""
    if a.dtype == object:
        raise ValueError("Unsupported dtype object")
    return a


asanyarray = asarray


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """The device-to-host copy (as cupy.asnumpy)."""
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    """This module if any argument is a device array, else NumPy (as cupy.get_array_module)."""
    return _sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else _np


def _writable(view, base):
    return _np.lib.stride_tricks.as_strided(base, view.shape, view.strides)


def broadcast_to(array, shape):
    """A writable view with zero strides on the broadcast axes (NumPy's is read-only)."""
    a = _unwrap(array)
    return ndarray(_writable(_np.broadcast_to(a, shape), a))


def broadcast_arrays(*args):
    """Writable broadcast views, as cupy.broadcast_arrays."""
    arrays = [_unwrap(a) for a in args]
    return [ndarray(_writable(v, a)) for v, a in zip(_np.broadcast_arrays(*arrays), arrays)]


class _Namespace(_types.ModuleType):
    """numpy.linalg, numpy.random, ... offering CuPy's names (all of them if ``names`` is None)."""

    def __init__(self, inner, names, cupy_name):
        super().__init__(cupy_name)
        self._inner, self._names = inner, names

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if self._names is not None and name not in self._names:
            raise AttributeError(
                f"module {self.__name__!r} has no attribute {name!r} (CuPy {_VERSION})"
            )
        if not hasattr(self._inner, name):
            raise _not_modelled(f"{self.__name__}.{name}")
        return _convert(getattr(self._inner, name), name)


_OWN = {
    "asarray": asarray,
    "array": array,
    "asanyarray": asanyarray,
    "asnumpy": asnumpy,
    "get_array_module": get_array_module,
    "broadcast_to": broadcast_to,
    "broadcast_arrays": broadcast_arrays,
    "ndarray": ndarray,
    "ufunc": ufunc,
}


def _convert(attr, name):
    if isinstance(attr, _types.ModuleType):
        return _Namespace(attr, _SUBMODULES.get(name), f"cupy.{name}")
    if isinstance(attr, _np.ufunc) and name in _UFUNCS:
        return ufunc(attr, _UFUNCS[name])
    if isinstance(attr, (type, _np.dtype)) or not callable(attr):
        return attr  # dtypes and scalar types (xp.float32 is np.float32, as in CuPy), constants
    return _wrap_function(attr)


_cache = {}


def _lookup(name):
    if name not in _cache:
        if name in _OWN:
            _cache[name] = _OWN[name]
        elif not hasattr(_np, name):
            raise _not_modelled(f"cupy.{name}")
        else:
            _cache[name] = _convert(getattr(_np, name), name)
    return _cache[name]


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    if name not in _MODULE:
        raise AttributeError(
            f"module 'cupy' has no attribute {name!r} (strict backend: CuPy {_VERSION}'s "
            "names only, from minigen/backend/cupy_api.json)"
        )
    return _lookup(name)


matmul = _lookup("matmul")
