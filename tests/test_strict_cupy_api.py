"""The strict stand-in behaves as CuPy: one test per behaviour, each with its source.

Sources, cited in each test as [wheel] or [doc-...]:

- [wheel]: the real ``cupy-cuda12x`` 14.2.0 wheel, introspected without a GPU
  (``python tools/cupy_api.py`` reads its names; arrays built over unowned
  memory show what CuPy refuses before it touches the device).
- [doc-difference] https://docs.cupy.dev/en/stable/user_guide/difference.html
- [doc-interop] https://docs.cupy.dev/en/stable/user_guide/interoperability.html
- [doc-ufunc] https://docs.cupy.dev/en/stable/reference/ufunc.html
- [doc-ndarray] https://docs.cupy.dev/en/stable/reference/generated/cupy.ndarray.html
- [doc-scatter] https://docs.cupy.dev/en/stable/reference/generated/cupyx.scatter_add.html
- [src-core] cupy/_core/core.pyx, ``ndarray.__array_ufunc__``/``__array_function__``
  (https://github.com/cupy/cupy/blob/main/cupy/_core/core.pyx)
"""

import json
import operator
import pickle
from pathlib import Path

import numpy as np
import pytest
from helpers import host

import minigen
from minigen import backend
from minigen.backend import strict

API = json.loads((Path(strict.__file__).with_name("cupy_api.json")).read_text())


@pytest.fixture(autouse=True)
def _strict():
    minigen.use_backend("strict")  # conftest restores the run's backend


def dev(values, dtype=np.float32):
    return backend.from_numpy(np.asarray(values, dtype=dtype))


# -------------------------------------------------------- the surface: names


def test_the_name_list_comes_from_the_cupy_wheel():
    """[wheel] the committed list was written by tools/cupy_api.py from a real CuPy."""
    assert API["cupy_version"].startswith("14.")
    assert {"ndarray", "asarray", "asnumpy", "exp", "matmul"} <= set(API["module"])
    assert "__index__" not in API["ndarray"] and "get" in API["ndarray"]
    assert API["ufuncs"]["add"] == ["accumulate", "at", "outer", "reduce", "reduceat"]


def test_names_cupy_lacks_are_refused():
    """[wheel] dir(cupy) has no errstate, nditer, insert, matrix (NumPy has them)."""
    xp = backend.xp()
    for name in ("errstate", "nditer", "insert", "matrix"):
        assert hasattr(np, name) and name not in API["module"]
        with pytest.raises(AttributeError, match=f"no attribute '{name}'.*CuPy"):
            getattr(xp, name)
    assert xp.exp is not None and xp.float32 is np.float32  # CuPy's dtypes are NumPy's


def test_ndarray_attributes_cupy_lacks_are_refused():
    """[wheel] dir(cupy.ndarray) has no resize, setflags, ctypes, to_device."""
    x = dev([1.0, 2.0])
    for name in ("resize", "setflags", "ctypes", "to_device", "__array_interface__"):
        assert name not in API["ndarray"]
        with pytest.raises(AttributeError):
            getattr(x, name)
    assert x.sum().shape == () and x.reshape(2, 1).shape == (2, 1)


def test_submodules_offer_cupy_names_only():
    """[wheel] cupy.linalg has norm but not vector_norm or multi_dot; cupy.random has
    no get_state or bit_generator (NumPy has all of them)."""
    xp = backend.xp()
    assert "norm" in API["linalg"]
    assert isinstance(xp.linalg.norm(xp.ones(4)), strict.ndarray)
    for name in ("vector_norm", "multi_dot"):
        assert name not in API["linalg"] and hasattr(np.linalg, name)
        with pytest.raises(AttributeError, match=name):
            getattr(xp.linalg, name)
    for name in ("get_state", "bit_generator"):
        assert name not in API["random"] and hasattr(np.random, name)
        with pytest.raises(AttributeError, match=name):
            getattr(xp.random, name)


def test_flags_have_no_writeable():
    """[wheel] cupy's Flags has c_contiguous, f_contiguous, owndata (no writeable:
    CuPy has no read-only arrays)."""
    f = dev([1.0, 2.0]).flags
    assert f.c_contiguous and f["C_CONTIGUOUS"] and f.owndata
    with pytest.raises(AttributeError):
        _ = f.writeable


# ------------------------------------------------------------ what it refuses


def test_implicit_conversion_to_numpy_is_refused():
    """[wheel] np.asarray / np.array / __array__ of a cupy.ndarray raise TypeError
    ("Implicit conversion to a NumPy array is not allowed")."""
    x = dev([1.0, 2.0])
    for convert in (np.asarray, np.array, lambda a: a.__array__()):
        with pytest.raises(TypeError, match="Implicit conversion"):
            convert(x)


def test_data_is_an_opaque_device_pointer():
    """[wheel] cupy.ndarray.data is a cupy.cuda.MemoryPointer; memoryview(x) raises
    TypeError. Reading ``.data`` as the values (the old to_numpy) gives an object."""
    x = dev([1.0, 2.0])
    assert isinstance(x.data.ptr, int)
    for read in (memoryview, bytes, lambda a: memoryview(a.data)):
        with pytest.raises(TypeError):
            read(x)
    assert np.asarray(x.data).dtype == object  # what getattr(x, "data", x) used to return
    np.testing.assert_array_equal(backend.to_numpy(x), [1.0, 2.0])


def test_no_index_protocol():
    """[wheel] cupy.ndarray has no __index__: operator.index(x) raises TypeError."""
    i = dev(1, dtype=np.int64)
    for use in (operator.index, range, lambda k: [10, 20][k]):
        with pytest.raises(TypeError):
            use(i)
    assert int(i) == 1  # the explicit conversion works (a device-to-host copy on CuPy)


@pytest.mark.parametrize(
    "mix",
    [
        lambda d, h: d + h,
        lambda d, h: h + d,
        lambda d, h: d * h,
        lambda d, h: h - d,
        lambda d, h: d > h,
        lambda d, h: d @ h,
        lambda d, h: h @ d,
        lambda d, h: backend.xp().add(d, h),
        lambda d, h: backend.xp().concatenate([d, h]),
        lambda d, h: backend.xp().where(d > 0, d, h),
        lambda d, h: d.clip(h, 3.0),
        lambda d, h: d.__iadd__(h),
    ],
)
def test_host_arrays_in_device_math_are_refused(mix):
    """[wheel] cupy.matmul(x, numpy_array) raises TypeError; [src-core] __array_ufunc__:
    "numpy.ndarray is handled and then TypeError is raised"; [doc-difference]."""
    with pytest.raises(TypeError, match="numpy|NumPy"):
        mix(dev([1.0, 2.0, 3.0]), np.ones(3, dtype=np.float32))


@pytest.mark.parametrize(
    "call",
    [
        lambda xp, d: xp.exp([1.0, 2.0]),
        lambda xp, d: xp.add(d, [1.0, 2.0]),
        lambda xp, d: d + [1.0, 2.0],
        lambda xp, d: np.add(d, [1.0, 2.0]),
    ],
)
def test_lists_as_ufunc_operands_are_refused(call):
    """[doc-difference] "Universal Functions in CuPy only work with CuPy array or
    scalar. They do not accept other objects (e.g., lists or numpy.ndarray)"."""
    with pytest.raises(TypeError):
        call(backend.xp(), dev([1.0, 2.0]))


def test_scalars_are_accepted_as_ufunc_operands():
    """[doc-ufunc] each argument "can be a cupy.ndarray object or a scalar"."""
    d = dev([1.0, 2.0])
    y = d * 2.0 + np.float32(1.0) - 3 + True
    assert isinstance(y, strict.ndarray) and y.dtype == np.float32
    np.testing.assert_array_equal(host(y), [1.0, 3.0])


def test_setting_a_host_array_into_a_device_array_is_refused():
    """[wheel] x[:] = numpy_array (or a list) raises ValueError "non-scalar
    numpy.ndarray cannot be used for fill"; scalars and device arrays are fine."""
    d = dev([1.0, 2.0])
    for value in (np.ones(2, dtype=np.float32), [5.0, 6.0]):
        with pytest.raises(ValueError, match="non-scalar numpy.ndarray"):
            d[:] = value
    d[0] = np.float32(7.0)
    d[1:] = dev([8.0])
    np.testing.assert_array_equal(host(d), [7.0, 8.0])


def test_ufunc_methods_cupy_does_not_implement_are_refused():
    """[wheel] multiply.at, maximum.reduce and exp.at raise NotImplementedError
    ("`cupy_multiply.at` is not supported yet"); [doc-ufunc] "These methods are only
    available for selected ufuncs"."""
    xp = backend.xp()
    x, i = dev([1.0, 2.0, 3.0]), dev([0, 0], dtype=np.int64)
    with pytest.raises(NotImplementedError, match="cupy_multiply.at"):
        xp.multiply.at(x, i, 2.0)
    with pytest.raises(NotImplementedError, match="cupy_maximum.reduce"):
        xp.maximum.reduce(x)
    with pytest.raises(NotImplementedError, match="cupy_maximum.reduce"):
        np.maximum.reduce(x)  # through __array_ufunc__ as well
    with pytest.raises(NotImplementedError, match="cupy_exp.at"):
        xp.exp.at(x, i)
    assert float(xp.add.reduce(x)) == 6.0 and float(xp.multiply.reduce(x)) == 6.0


def test_arrays_cannot_be_pickled():
    """Deliberately stricter than CuPy (which pickles device arrays): a checkpoint
    holding one would load only where CuPy runs. minigen saves to_numpy copies."""
    with pytest.raises(TypeError, match="to_numpy"):
        pickle.dumps(dev([1.0]))


# -------------------------------------------- where CuPy differs from NumPy


def test_numpy_ufuncs_dispatch_to_device_arrays():
    """[doc-interop] "cupy.ndarray implements __array_ufunc__ ... NumPy ufuncs to be
    directly operated on CuPy arrays"; [wheel] np.exp(x) reaches CuPy's kernel."""
    x = dev([0.0, 1.0])
    y = np.exp(x)
    assert isinstance(y, strict.ndarray)
    np.testing.assert_allclose(host(y), np.exp([0.0, 1.0]), rtol=1e-6)
    assert isinstance(np.float32(2.0) * x, strict.ndarray)  # a NumPy scalar on the left


def test_numpy_functions_dispatch_to_device_arrays():
    """[doc-interop] __array_function__ (NEP 18): numpy.sum(arr) returns a cupy.ndarray;
    [src-core] a name CuPy lacks returns NotImplemented, so NumPy raises TypeError."""
    x = dev([1.0, 2.0])
    for result in (np.concatenate([x, x]), np.sum(x), np.linalg.norm(x), np.where(x > 1, x, 0)):
        assert isinstance(result, strict.ndarray)
    assert float(np.sum(x)) == 3.0
    with pytest.raises(TypeError):
        np.insert(x, 0, 5.0)  # cupy.insert does not exist


def test_reductions_return_zero_dim_arrays():
    """[doc-difference] "Reduction methods return zero-dimensional array" (NumPy: scalars)."""
    s = dev([1.0, 2.0]).sum()
    assert isinstance(s, strict.ndarray) and s.shape == ()
    assert s.item() == 3.0 and float(s) == 3.0


def test_broadcast_to_returns_a_writable_view():
    """[wheel] Flags has no writeable field (no read-only arrays in CuPy): broadcast_to's
    view has zero strides and can be written, one write reaching every alias (NumPy's
    view is read-only)."""
    xp = backend.xp()
    base = dev([1.0, 2.0])
    view = xp.broadcast_to(base, (3, 2))
    assert view.strides[0] == 0
    view[0, 0] = 9.0  # NumPy would raise "assignment destination is read-only"
    np.testing.assert_array_equal(host(view)[:, 0], [9.0, 9.0, 9.0])
    np.testing.assert_array_equal(host(base), [9.0, 2.0])
    with pytest.raises(ValueError, match="read-only"):
        np.broadcast_to(np.ones(2), (3, 2))[0, 0] = 9.0


def test_numpy_and_list_indices_are_accepted():
    """[doc-ndarray] __getitem__ "Supports both basic and advanced indexing", example
    ``a[[1, 3]]``; CuPy moves NumPy index arrays and lists to the device."""
    x = dev([10.0, 20.0, 30.0])
    np.testing.assert_array_equal(host(x[[0, 2]]), [10.0, 30.0])
    np.testing.assert_array_equal(host(x[np.array([2, 1])]), [30.0, 20.0])
    np.testing.assert_array_equal(host(x[np.array([True, False, True])]), [10.0, 30.0])
    x[np.array([0])] = 0.0
    np.testing.assert_array_equal(host(x), [0.0, 20.0, 30.0])


def test_add_at_adds_repeated_indices_in_no_set_order():
    """[doc-scatter] scatter_add (add.at) uses CUDA's atomicAdd for integer-array
    indices: repeated indices are summed in whatever order the threads run, so float
    sums vary between runs. The stand-in shuffles the order on every call."""
    xp = backend.xp()
    values = np.random.default_rng(0).standard_normal(2000).astype(np.float32)
    values *= np.float32(10.0) ** np.random.default_rng(1).integers(-4, 5, 2000)
    index = dev(np.zeros(2000), dtype=np.int64)
    sums = set()
    for _ in range(10):
        out = xp.zeros(1)
        xp.add.at(out, index, dev(values))
        sums.add(float(out[0]))
    assert len(sums) > 1  # the order changed the rounding
    assert all(abs(s - values.astype(np.float64).sum()) < 1e-2 for s in sums)
    out = xp.zeros(3)
    xp.add.at(out, dev([0, 0, 2], dtype=np.int64), xp.ones(3))
    np.testing.assert_array_equal(host(out), [2.0, 0.0, 1.0])  # still a correct sum


def test_explicit_transfers_are_the_way_across():
    """[doc-ndarray] cupy.asarray takes host data, ndarray.get() / cupy.asnumpy copy back."""
    xp = backend.xp()
    h = np.arange(3, dtype=np.float32)
    d = xp.asarray(h)
    h[0] = 99.0  # a copy was made: the device array does not follow
    assert float(d[0]) == 0.0
    assert isinstance(d.get(), np.ndarray) and isinstance(xp.asnumpy(d), np.ndarray)
    d.set(np.full(3, 5.0, dtype=np.float32))
    np.testing.assert_array_equal(xp.asnumpy(d), [5.0, 5.0, 5.0])
    assert xp.get_array_module(d) is xp and xp.get_array_module(h) is np
