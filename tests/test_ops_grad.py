"""Every op's gradient against central finite differences, on drawn shapes and values.

Each test draws shapes (broadcasting and size-1 axes included) and float64
values in a domain where the op is smooth and its derivatives are of order
one, then asks ``minigen.gradcheck`` to compare autograd with the numerical
derivative. Each op is called as a function and as a Tensor method: the two
must agree, and the drawn one is checked.
"""

import numpy as np
import pytest
from helpers import (
    arrays,
    axes,
    broadcastable_shapes,
    distinct_arrays,
    host,
    joinable,
    shapes,
    slice_index,
    t,
    values,
)
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen
from minigen import backend, ops


def check(f, *inputs):
    """gradcheck f in float64 and make sure the output stayed float64."""
    out = f(*inputs)
    assert out.dtype == np.float64, f"float64 in gave {out.dtype} out"
    minigen.gradcheck(f, *inputs)


def same(method, function, *inputs):
    """The method form and the function form compute the same values."""
    np.testing.assert_allclose(
        host(method(*inputs)), host(function(*inputs)), rtol=1e-12, atol=1e-15
    )


def both(data, method, function, *inputs):
    """Check that both forms agree, then gradcheck the one hypothesis draws."""
    same(method, function, *inputs)
    check(data.draw(st.sampled_from([method, function]), label="form"), *inputs)


# ---------------------------------------------------------------- arithmetic

BINARY = {
    "add": (lambda a, b: a + b, ops.add, (-2, 2)),
    "sub": (lambda a, b: a - b, ops.sub, (-2, 2)),
    "mul": (lambda a, b: a * b, ops.mul, (-2, 2)),
    "div": (lambda a, b: a / b, ops.div, (0.5, 2)),  # denominator away from 0
}


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data(), shapes2=broadcastable_shapes(2))
def test_binary_broadcasting(name, data, shapes2):
    method, function, (lo, hi) = BINARY[name]
    a = t(data.draw(arrays(shapes2[0]), label="a"))
    sign = data.draw(st.sampled_from([-1.0, 1.0]), label="sign of b")
    b = t(sign * data.draw(arrays(shapes2[1], lo, hi), label="b"))
    both(data, method, function, a, b)


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data(), shape=shapes(), c=values(0.5, 2.0))
def test_binary_with_python_scalar(name, data, shape, c):
    """A Python number on either side is a constant; only the tensor gets a gradient."""
    method, _, (lo, hi) = BINARY[name]
    x = t(data.draw(arrays(shape, lo if name == "div" else -2, hi), label="x"))
    check(lambda x: method(x, c), x)
    check(lambda x: method(c, x), x)


@given(data=st.data(), shape=shapes())
def test_neg(data, shape):
    x = t(data.draw(arrays(shape)))
    both(data, lambda x: -x, ops.neg, x)


@given(data=st.data(), shape=shapes(), exponent=st.sampled_from([2, 3, -1, 0.5, -1.5, 2.5]))
def test_pow_number_exponent(data, shape, exponent):
    x = t(data.draw(arrays(shape, 0.5, 2.0)))
    both(data, lambda x: x**exponent, lambda x: ops.pow(x, exponent), x)


@given(data=st.data(), shape=shapes())
def test_pow_integer_exponent_negative_base(data, shape):
    x = t(data.draw(arrays(shape, -2.0, 2.0)))
    check(lambda x: x**3, x)


@given(data=st.data(), shapes2=broadcastable_shapes(2))
def test_pow_tensor_exponent(data, shapes2):
    """Base and exponent both tensors, broadcasting: d/db a^b = a^b log a (a > 0)."""
    a = t(data.draw(arrays(shapes2[0], 0.5, 2.0), label="base"))
    b = t(data.draw(arrays(shapes2[1], -1.5, 1.5), label="exponent"))
    both(data, lambda a, b: a**b, ops.pow, a, b)


@given(data=st.data(), shape=shapes(max_dims=2), base=values(0.5, 3.0))
def test_pow_number_base(data, shape, base):
    x = t(data.draw(arrays(shape, -1.5, 1.5)))
    check(lambda x: base**x, x)


@given(
    data=st.data(),
    batch=broadcastable_shapes(2, max_dims=2),
    nkm=st.tuples(*[st.integers(1, 3)] * 3),
)
def test_matmul_batched_broadcasting(data, batch, nkm):
    n, k, m = nkm
    a = t(data.draw(arrays(batch[0] + (n, k)), label="a"))
    b = t(data.draw(arrays(batch[1] + (k, m)), label="b"))
    both(data, lambda a, b: a @ b, ops.matmul, a, b)


@given(data=st.data(), nkm=st.tuples(*[st.integers(1, 3)] * 3))
def test_matmul_with_constant_array(data, nkm):
    """A backend array on either side of @ is a constant."""
    n, k, m = nkm
    a = t(data.draw(arrays((n, k)), label="a"))
    w = backend.from_numpy(data.draw(arrays((k, m)), label="w"))
    check(lambda a: a @ w, a)
    v = backend.from_numpy(data.draw(arrays((m, n)), label="v"))
    check(lambda a: ops.matmul(v, a), a)


# ---------------------------------------------------------------- reductions

REDUCTIONS = {
    "sum": (lambda x, ax, kd: x.sum(ax, kd), ops.sum),
    "mean": (lambda x, ax, kd: x.mean(axis=ax, keepdims=kd), ops.mean),
    "max": (lambda x, ax, kd: x.max(ax, keepdims=kd), ops.max),
    "logsumexp": (lambda x, ax, kd: x.logsumexp(ax, kd), ops.logsumexp),
}
REFERENCE = {
    "sum": np.sum,
    "mean": np.mean,
    "max": np.max,
    "logsumexp": lambda a, axis, keepdims: np.log(np.exp(a).sum(axis=axis, keepdims=keepdims)),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(data=st.data(), shape=shapes(), keepdims=st.booleans())
def test_reduction(name, data, shape, keepdims):
    method, function = REDUCTIONS[name]
    axis = data.draw(axes(len(shape)), label="axis")
    # max needs distinct values: a tie splits the gradient, finite differences do not
    x = t(data.draw(distinct_arrays(shape) if name == "max" else arrays(shape), label="x"))
    want = REFERENCE[name](host(x), axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(host(method(x, axis, keepdims)), want, rtol=1e-12, atol=1e-12)
    both(
        data,
        lambda x: method(x, axis, keepdims),
        lambda x: function(x, axis=axis, keepdims=keepdims),
        x,
    )


def test_max_ties_share_the_gradient():
    x = t(np.array([1.0, 3.0, 3.0, 0.0]))
    x.max().backward()
    np.testing.assert_allclose(host(x.grad), [0.0, 0.5, 0.5, 0.0])


def test_logsumexp_is_stable_and_exact():
    x = t(np.array([[1000.0, 1000.0], [-1000.0, -1000.0], [0.0, -np.inf]]))
    out = ops.logsumexp(x, axis=1)
    np.testing.assert_allclose(host(out), [1000.0 + np.log(2), -1000.0 + np.log(2), 0.0])
    out.sum().backward()
    np.testing.assert_allclose(host(x.grad), [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])


# ------------------------------------------------------------ shapes and moves


@given(data=st.data(), shape=shapes(min_dims=1))
def test_reshape(data, shape):
    x = t(data.draw(arrays(shape)))
    n = x.size
    target = data.draw(st.sampled_from([(n,), (-1,), (1, n), (n, 1, 1), (-1, 1)]), label="shape")
    both(data, lambda x: x.reshape(*target), lambda x: ops.reshape(x, target), x)
    check(lambda x: x.reshape(target), x)  # a tuple works as in PyTorch


@given(data=st.data(), shape=shapes(min_dims=1))
def test_transpose_and_permute(data, shape):
    x = t(data.draw(arrays(shape)))
    nd = len(shape)
    perm = data.draw(st.permutations(range(nd)), label="perm")
    # negative axes name the same permutation
    perm = [data.draw(st.sampled_from([p, p - nd]), label="axis form") for p in perm]
    want = np.transpose(host(x), perm)
    np.testing.assert_array_equal(host(x.permute(*perm)), want)
    both(data, lambda x: x.permute(*perm), lambda x: ops.permute(x, perm), x)
    both(data, lambda x: x.T, ops.permute, x)  # no axes: all reversed
    i, j = data.draw(st.integers(0, nd - 1), label="dim0"), data.draw(st.integers(-nd, nd - 1))
    np.testing.assert_array_equal(host(x.transpose(i, j)), np.swapaxes(host(x), i, j))
    both(data, lambda x: x.transpose(i, j), lambda x: ops.transpose(x, i, j), x)


@given(data=st.data(), shape=shapes(min_dims=1))
def test_getitem_slices(data, shape):
    x = t(data.draw(arrays(shape)))
    index = data.draw(slice_index(shape), label="index")
    np.testing.assert_array_equal(host(x[index]), host(x)[index])
    both(data, lambda x: x[index], lambda x: ops.getitem(x, index), x)


@given(data=st.data(), shape=shapes(min_dims=1))
def test_getitem_integer_arrays_with_repeats(data, shape):
    """Repeated indices must add their gradients, not overwrite them."""
    x = t(data.draw(arrays(shape)))
    n = shape[0]
    idx = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=5), label="idx")
    if data.draw(st.booleans(), label="as backend array"):
        index = backend.from_numpy(np.array(idx))
    else:
        index = idx  # a Python list
    both(data, lambda x: x[index], lambda x: ops.getitem(x, index), x)
    if len(shape) >= 2:  # one index array per axis, plus a trailing slice
        m = shape[1]
        cols = data.draw(st.lists(st.integers(0, m - 1), min_size=len(idx), max_size=len(idx)))
        pair = (backend.from_numpy(np.array(idx)), backend.from_numpy(np.array(cols)))
        check(lambda x: x[pair], x)


def test_getitem_repeated_index_gradient_value():
    x = t(np.array([1.0, 2.0, 3.0]))
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(host(x.grad), [3.0, 0.0, 1.0])


@given(data=st.data(), shape=shapes(min_dims=1))
def test_getitem_boolean_mask_and_tensor_index(data, shape):
    x = t(data.draw(arrays(shape)))
    mask = data.draw(hnp.arrays(np.bool_, shape), label="mask")
    check(lambda x: x[backend.from_numpy(mask)], x)
    index = t(np.array([0, shape[0] - 1]), requires_grad=False)  # an integer Tensor
    check(lambda x: x[index], x)


@given(data=st.data(), spec=joinable(stack=False))
def test_concatenate(data, spec):
    shape_list, axis = spec
    xs = [t(data.draw(arrays(s), label="x")) for s in shape_list]
    np.testing.assert_array_equal(
        host(ops.concatenate(xs, axis=axis)), np.concatenate([host(x) for x in xs], axis=axis)
    )
    check(lambda *xs: minigen.concatenate(list(xs), axis=axis), *xs)


@given(data=st.data(), spec=joinable(stack=True))
def test_stack(data, spec):
    shape_list, axis = spec
    xs = [t(data.draw(arrays(s), label="x")) for s in shape_list]
    np.testing.assert_array_equal(
        host(ops.stack(xs, axis=axis)), np.stack([host(x) for x in xs], axis=axis)
    )
    check(lambda *xs: minigen.stack(xs, axis=axis), *xs)


# ------------------------------------------------------- elementwise functions

# name: (method, function, lo, hi, kinks to stay away from, reference on the host)
UNARY = {
    "exp": (lambda x: x.exp(), ops.exp, -2, 2, (), np.exp),
    "log": (lambda x: x.log(), ops.log, 0.5, 3, (), np.log),
    "sqrt": (lambda x: x.sqrt(), ops.sqrt, 0.5, 3, (), np.sqrt),
    "tanh": (lambda x: x.tanh(), ops.tanh, -2, 2, (), np.tanh),
    "sigmoid": (lambda x: x.sigmoid(), ops.sigmoid, -3, 3, (), lambda a: 1 / (1 + np.exp(-a))),
    "relu": (lambda x: x.relu(), ops.relu, -2, 2, (0,), lambda a: np.maximum(a, 0)),
    "softplus": (lambda x: x.softplus(), ops.softplus, -3, 3, (), lambda a: np.log1p(np.exp(a))),
    "log_sigmoid": (
        lambda x: x.log_sigmoid(),
        ops.log_sigmoid,
        -3,
        3,
        (),
        lambda a: -np.log1p(np.exp(-a)),
    ),
}


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data(), shape=shapes())
def test_unary(name, data, shape):
    method, function, lo, hi, kinks, reference = UNARY[name]
    x = t(data.draw(arrays(shape, lo, hi, avoid=kinks)))
    np.testing.assert_allclose(host(function(x)), reference(host(x)), rtol=1e-10, atol=1e-12)
    both(data, method, function, x)


@given(data=st.data(), shape=shapes(), slope=st.sampled_from([0.0, 0.01, 0.2, 0.5, 2.0, -0.5]))
def test_leaky_relu(data, shape, slope):
    x = t(data.draw(arrays(shape, avoid=(0,))))
    want = np.where(host(x) > 0, host(x), slope * host(x))
    np.testing.assert_allclose(host(x.leaky_relu(slope)), want)
    both(data, lambda x: x.leaky_relu(slope), lambda x: ops.leaky_relu(x, slope), x)


@given(
    data=st.data(),
    shape=shapes(),
    low=st.sampled_from([None, -1.0, -0.5]),
    high=st.sampled_from([None, 0.5, 1.0]),
)
def test_clip(data, shape, low, high):
    if low is None and high is None:
        high = 1.0
    kinks = tuple(b for b in (low, high) if b is not None)
    x = t(data.draw(arrays(shape, avoid=kinks)))
    np.testing.assert_array_equal(host(x.clip(low, high)), np.clip(host(x), low, high))
    both(data, lambda x: x.clip(low, high), lambda x: ops.clip(x, low, high), x)


@given(data=st.data(), shapes3=broadcastable_shapes(3))
def test_where_broadcasting(data, shapes3):
    cond_shape, a_shape, b_shape = shapes3
    cond = backend.from_numpy(data.draw(hnp.arrays(np.bool_, cond_shape), label="cond"))
    a = t(data.draw(arrays(a_shape), label="a"))
    b = t(data.draw(arrays(b_shape), label="b"))
    want = np.where(host(cond), host(a), host(b))
    np.testing.assert_array_equal(host(minigen.where(cond, a, b)), want)
    check(lambda a, b: minigen.where(cond, a, b), a, b)
    check(lambda a: ops.where(cond, a, 0.5), a)  # a constant branch


def test_stable_functions_at_extremes():
    """Large inputs give finite, exact values and gradients (no overflow warnings:
    pytest turns RuntimeWarning into errors)."""
    x = t(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0]))
    np.testing.assert_allclose(
        host(x.log_sigmoid()), [-1000.0, -30.0, -np.log(2), 0.0, 0.0], atol=1e-12
    )
    np.testing.assert_allclose(host(x.softplus()), [0.0, 0.0, np.log(2), 30.0, 1000.0], atol=1e-12)
    np.testing.assert_allclose(host(x.sigmoid()), [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-12)
    (x.log_sigmoid() + x.softplus()).sum().backward()
    # d/dx [log sigmoid(x) + softplus(x)] = sigmoid(-x) + sigmoid(x) = 1
    np.testing.assert_allclose(host(x.grad), np.ones(5), atol=1e-12)
