"""Every op's, layer's and loss's second derivative against finite differences.

The twin of test_ops_grad.py one order up: each test draws small shapes and
float64 values in the same domains, and ``minigen.gradgradcheck`` compares
autograd's gradient of the first gradient (taken with ``create_graph=True``)
with central differences of that first gradient.

A second derivative only means something where it is not trivially zero.
An op that is linear in its inputs (add, sum, reshape, getitem...) has none
of its own, so its output is passed through a non-linear function
(``around``): then the gradient that reaches the op's backward depends on
the inputs, and the check sees whether that backward is itself
differentiable. The piecewise-linear ops (relu, leaky_relu, clip, max) are
made non-linear around their kinks (relu(x) * x, relu(x) ** 2, exp(relu(x)))
and drawn away from them, where finite differences would straddle the kink.
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
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen
from minigen import backend, nn, ops
from minigen.models.vae import reparameterize
from minigen.nn import functional as F  # noqa: N812 - the PyTorch idiom
from minigen.nn import layers


def check(f, *inputs):
    """gradgradcheck f in float64 and make sure the output stayed float64."""
    out = f(*inputs)
    assert out.dtype == np.float64, f"float64 in gave {out.dtype} out"
    minigen.gradgradcheck(f, *inputs)


# A function applied to an op's output, so that its backward gets a gradient
# that depends on the inputs. "none" leaves a linear op with a zero second
# derivative, which is checked too (it must come out zero, not fail).
AROUND = {
    "none": lambda y: y,
    "square": lambda y: y * y,
    "tanh": ops.tanh,
    "swish": lambda y: y * y.sigmoid(),  # grows like y: no huge values beside tiny ones
}


def around(data, linear=False):
    """Draw a function to compose after the op; never the identity for a linear op."""
    names = [n for n in AROUND if not (linear and n == "none")]
    return AROUND[data.draw(st.sampled_from(names), label="around")]


def either(data, method, function):
    """The method form or the function form, drawn (test_ops_grad checks they agree)."""
    return data.draw(st.sampled_from([method, function]), label="form")


# ---------------------------------------------------------------- arithmetic

BINARY = {
    "add": (lambda a, b: a + b, ops.add, (-2, 2), True),
    "sub": (lambda a, b: a - b, ops.sub, (-2, 2), True),
    "mul": (lambda a, b: a * b, ops.mul, (-2, 2), False),
    "div": (lambda a, b: a / b, ops.div, (0.5, 2), False),  # denominator away from 0
}


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data(), shapes2=broadcastable_shapes(2))
def test_binary_broadcasting(name, data, shapes2):
    method, function, (lo, hi), linear = BINARY[name]
    a = t(data.draw(arrays(shapes2[0]), label="a"))
    sign = data.draw(st.sampled_from([-1.0, 1.0]), label="sign of b")
    b = t(sign * data.draw(arrays(shapes2[1], lo, hi), label="b"))
    op, g = either(data, method, function), around(data, linear)
    check(lambda a, b: g(op(a, b)), a, b)


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data(), shape=shapes(), c=values(0.5, 2.0))
def test_binary_with_python_scalar(name, data, shape, c):
    method, _, (lo, hi), linear = BINARY[name]
    x = t(data.draw(arrays(shape, lo if name == "div" else -2, hi), label="x"))
    g = around(data, linear)
    check(lambda x: g(method(x, c)), x)
    check(lambda x: g(method(c, x)), x)


@given(data=st.data(), shape=shapes())
def test_neg(data, shape):
    x = t(data.draw(arrays(shape)))
    op, g = either(data, lambda x: -x, ops.neg), around(data, linear=True)
    check(lambda x: g(op(x)), x)


@given(data=st.data(), shape=shapes(), exponent=st.sampled_from([2, 3, -1, 0.5, -1.5, 2.5, 1]))
def test_pow_number_exponent(data, shape, exponent):
    x = t(data.draw(arrays(shape, 0.5, 2.0)))
    op = either(data, lambda x: x**exponent, lambda x: ops.pow(x, exponent))
    g = around(data, linear=exponent == 1)
    check(lambda x: g(op(x)), x)


@given(data=st.data(), shape=shapes(), exponent=st.sampled_from([2, 3, 4]))
def test_pow_integer_exponent_negative_base(data, shape, exponent):
    x = t(data.draw(arrays(shape, -2.0, 2.0)))
    check(lambda x: x**exponent, x)


def test_pow_higher_derivatives_at_a_zero_base():
    """x ** 1 has second derivative 0 and x ** 2 third derivative 0, also at x = 0;
    so has relu(x) ** 2 where relu is 0 (a common penalty)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        x = t(np.array([0.0, -1.0, 1.5]))
        (g,) = minigen.grad((x**1).sum(), x, create_graph=True)
        (h,) = minigen.grad(g.sum(), x, allow_unused=True)
        np.testing.assert_array_equal(host(h), [0.0, 0.0, 0.0])
        for y in (x**2, x.relu() ** 2):
            (g,) = minigen.grad(y.sum(), x, create_graph=True)
            (h,) = minigen.grad(g.sum(), x, create_graph=True)
            (k,) = minigen.grad(h.sum(), x, allow_unused=True)
            np.testing.assert_array_equal(host(k), [0.0, 0.0, 0.0])
        minigen.gradgradcheck(lambda x: x**1, x)


@given(data=st.data(), shapes2=broadcastable_shapes(2))
def test_pow_tensor_exponent(data, shapes2):
    """Base and exponent both tensors: the mixed and the exponent's second
    derivatives go through log(a) (a > 0)."""
    a = t(data.draw(arrays(shapes2[0], 0.5, 2.0), label="base"))
    b = t(data.draw(arrays(shapes2[1], -1.5, 1.5), label="exponent"))
    op, g = either(data, lambda a, b: a**b, ops.pow), around(data)
    check(lambda a, b: g(op(a, b)), a, b)


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
    """Bilinear: the second derivative is the cross term between a and b (and,
    around a non-linear function, the terms through the product)."""
    n, k, m = nkm
    a = t(data.draw(arrays(batch[0] + (n, k)), label="a"))
    b = t(data.draw(arrays(batch[1] + (k, m)), label="b"))
    op, g = either(data, lambda a, b: a @ b, ops.matmul), around(data)
    check(lambda a, b: g(op(a, b)), a, b)


@given(
    data=st.data(),
    batch=broadcastable_shapes(2, max_dims=2),
    nm=st.tuples(*[st.integers(1, 3)] * 2),
)
def test_matmul_outer_product(data, batch, nm):
    """Inner size 1: forward takes the broadcast-multiply path (``matmul_array``)."""
    n, m = nm
    a = t(data.draw(arrays(batch[0] + (n, 1)), label="a"))
    b = t(data.draw(arrays(batch[1] + (1, m)), label="b"))
    g = around(data)
    check(lambda a, b: g(a @ b), a, b)


@given(data=st.data(), nkm=st.tuples(*[st.integers(1, 3)] * 3))
def test_matmul_with_constant_array(data, nkm):
    n, k, m = nkm
    a = t(data.draw(arrays((n, k)), label="a"))
    w = backend.from_numpy(data.draw(arrays((k, m)), label="w"))
    v = backend.from_numpy(data.draw(arrays((m, n)), label="v"))
    g = around(data, linear=True)
    check(lambda a: g(a @ w), a)
    check(lambda a: g(ops.matmul(v, a)), a)


# ---------------------------------------------------------------- reductions

REDUCTIONS = {
    "sum": (lambda x, ax, kd: x.sum(ax, kd), ops.sum, True),
    "mean": (lambda x, ax, kd: x.mean(axis=ax, keepdims=kd), ops.mean, True),
    "max": (lambda x, ax, kd: x.max(ax, keepdims=kd), ops.max, True),
    "logsumexp": (lambda x, ax, kd: x.logsumexp(ax, kd), ops.logsumexp, False),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(data=st.data(), shape=shapes(), keepdims=st.booleans())
def test_reduction(name, data, shape, keepdims):
    method, function, linear = REDUCTIONS[name]
    axis = data.draw(axes(len(shape)), label="axis")
    # max needs distinct values (no ties); they spread wider, so scale them down
    if name == "max":
        x = t(data.draw(distinct_arrays(shape), label="x") / max(1, np.prod(shape) / 6))
    else:
        x = t(data.draw(arrays(shape), label="x"))
    op = either(
        data,
        lambda x: method(x, axis, keepdims),
        lambda x: function(x, axis=axis, keepdims=keepdims),
    )
    g = around(data, linear)
    check(lambda x: g(op(x)), x)


@given(data=st.data(), shape=shapes(min_dims=1, max_dims=2))
def test_max_of_a_non_linear_function(data, shape):
    """The chain through max's mask: max(x ** 3) over each row, then squared."""
    x = t(data.draw(distinct_arrays(shape, step=0.2), label="x"))
    check(lambda x: (x**3).max(axis=-1) ** 2, x)


@given(data=st.data(), shape=shapes(max_dims=2))
def test_broadcast_to(data, shape):
    lead = tuple(data.draw(st.lists(st.integers(1, 3), max_size=1), label="new axes"))
    target = lead + tuple(
        data.draw(st.sampled_from([n, 3]), label="side") if n == 1 else n for n in shape
    )
    x = t(data.draw(arrays(shape), label="x"))
    g = around(data, linear=True)
    check(lambda x: g(ops.broadcast_to(x, target)), x)


# ------------------------------------------------------------ shapes and moves


@given(data=st.data(), shape=shapes(min_dims=1))
def test_reshape(data, shape):
    x = t(data.draw(arrays(shape)))
    n = x.size
    target = data.draw(st.sampled_from([(n,), (-1,), (1, n), (n, 1, 1), (-1, 1)]), label="shape")
    op = either(data, lambda x: x.reshape(*target), lambda x: ops.reshape(x, target))
    g = around(data, linear=True)
    check(lambda x: g(op(x)), x)


@given(data=st.data(), shape=shapes(min_dims=1))
def test_transpose_and_permute(data, shape):
    x = t(data.draw(arrays(shape)))
    nd = len(shape)
    perm = data.draw(st.permutations(range(nd)), label="perm")
    perm = [data.draw(st.sampled_from([p, p - nd]), label="axis form") for p in perm]
    i, j = data.draw(st.integers(0, nd - 1), label="dim0"), data.draw(st.integers(-nd, nd - 1))
    op = data.draw(
        st.sampled_from(
            [
                lambda x: x.permute(*perm),
                lambda x: ops.permute(x, perm),
                lambda x: x.T,
                lambda x: x.transpose(i, j),
                lambda x: ops.transpose(x, i, j),
            ]
        ),
        label="op",
    )
    # weights make the output's elements distinguishable: a wrong inverse permutation shows
    w = backend.from_numpy(np.arange(1.0, x.size + 1).reshape(op(x).shape) / x.size)
    g = around(data, linear=True)
    check(lambda x: g(op(x) * w), x)


@given(data=st.data(), shape=shapes(min_dims=1))
def test_getitem_slices(data, shape):
    x = t(data.draw(arrays(shape)))
    index = data.draw(slice_index(shape), label="index")
    op, g = either(data, lambda x: x[index], lambda x: ops.getitem(x, index)), around(data, True)
    check(lambda x: g(op(x)), x)


@given(data=st.data(), shape=shapes(min_dims=1))
def test_getitem_integer_arrays_with_repeats(data, shape):
    """Repeated indices add their gradients (ScatterAdd), and ScatterAdd's own
    backward (a GetItem) must gather them back."""
    x = t(data.draw(arrays(shape)))
    n = shape[0]
    idx = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=5), label="idx")
    if data.draw(st.booleans(), label="as backend array"):
        index = backend.from_numpy(np.array(idx))
    else:
        index = idx  # a Python list
    op, g = either(data, lambda x: x[index], lambda x: ops.getitem(x, index)), around(data, True)
    check(lambda x: g(op(x)), x)
    if len(shape) >= 2:  # one index array per axis
        m = shape[1]
        cols = data.draw(st.lists(st.integers(0, m - 1), min_size=len(idx), max_size=len(idx)))
        pair = (backend.from_numpy(np.array(idx)), backend.from_numpy(np.array(cols)))
        check(lambda x: g(x[pair]), x)


@given(data=st.data(), shape=shapes(min_dims=1))
def test_getitem_boolean_mask_and_tensor_index(data, shape):
    x = t(data.draw(arrays(shape)))
    mask = data.draw(hnp.arrays(np.bool_, shape), label="mask")
    g = around(data, linear=True)
    check(lambda x: g(x[backend.from_numpy(mask)]), x)
    index = t(np.array([0, shape[0] - 1]), requires_grad=False)  # an integer Tensor
    check(lambda x: g(x[index]), x)


@given(data=st.data(), spec=joinable(stack=False, max_dims=2))
def test_concatenate(data, spec):
    shape_list, axis = spec
    xs = [t(data.draw(arrays(s), label="x")) for s in shape_list]
    g = around(data, linear=True)
    check(lambda *xs: g(minigen.concatenate(list(xs), axis=axis)), *xs)


@given(data=st.data(), spec=joinable(stack=True, max_dims=2))
def test_stack(data, spec):
    shape_list, axis = spec
    xs = [t(data.draw(arrays(s), label="x")) for s in shape_list]
    g = around(data, linear=True)
    check(lambda *xs: g(minigen.stack(xs, axis=axis)), *xs)


@given(data=st.data())
def test_concatenate_and_stack_of_one_tensor_with_itself(data):
    """The same tensor twice: both pieces' gradients add into it, at every order."""
    x = t(data.draw(arrays((2, 3)), label="x"))
    check(lambda x: (minigen.concatenate([x, x * x], axis=1) ** 2).sum(axis=0), x)
    check(lambda x: minigen.stack([x, x.tanh()], axis=-1) ** 3, x)


# ------------------------------------------------------- elementwise functions

# name: (method, function, lo, hi); all smooth with non-zero second derivatives
UNARY = {
    "exp": (lambda x: x.exp(), ops.exp, -2, 2),
    "log": (lambda x: x.log(), ops.log, 0.5, 3),
    "sqrt": (lambda x: x.sqrt(), ops.sqrt, 0.5, 3),
    "tanh": (lambda x: x.tanh(), ops.tanh, -2, 2),
    "sigmoid": (lambda x: x.sigmoid(), ops.sigmoid, -3, 3),
    "softplus": (lambda x: x.softplus(), ops.softplus, -3, 3),
    "log_sigmoid": (lambda x: x.log_sigmoid(), ops.log_sigmoid, -3, 3),
}


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data(), shape=shapes())
def test_unary(name, data, shape):
    method, function, lo, hi = UNARY[name]
    x = t(data.draw(arrays(shape, lo, hi)))
    op, g = either(data, method, function), around(data)
    check(lambda x: g(op(x)), x)


# Around a piecewise-linear y = p(x): products and powers whose second
# derivative is not zero (y * x: 2 p'(x); y ** 2: 2 p'(x)^2; exp(y): exp(y) p'(x)^2),
# and y itself, whose second derivative must come out as exactly that: zero.
AROUND_KINK = {
    "times x": lambda y, x: y * x,
    "squared": lambda y, x: y**2,
    "exp": lambda y, x: y.exp(),
    "tanh times x": lambda y, x: (y * x).tanh(),
    "itself": lambda y, x: y,
}
SLOPES = [0.0, 0.01, 0.2, 0.5, 2.0, -0.5]


@pytest.mark.parametrize("around_kink", list(AROUND_KINK))
@given(data=st.data(), shape=shapes())
def test_relu(around_kink, data, shape):
    x = t(data.draw(arrays(shape, avoid=(0,))))
    op, g = either(data, lambda x: x.relu(), ops.relu), AROUND_KINK[around_kink]
    check(lambda x: g(op(x), x), x)


@pytest.mark.parametrize("around_kink", list(AROUND_KINK))
@given(data=st.data(), shape=shapes(), slope=st.sampled_from(SLOPES))
def test_leaky_relu(around_kink, data, shape, slope):
    x = t(data.draw(arrays(shape, avoid=(0,))))
    op = either(data, lambda x: x.leaky_relu(slope), lambda x: ops.leaky_relu(x, slope))
    g = AROUND_KINK[around_kink]
    check(lambda x: g(op(x), x), x)


@pytest.mark.parametrize("around_kink", list(AROUND_KINK))
@given(
    data=st.data(),
    shape=shapes(),
    low=st.sampled_from([None, -1.0, -0.5]),
    high=st.sampled_from([None, 0.5, 1.0]),
)
def test_clip(around_kink, data, shape, low, high):
    if low is None and high is None:
        high = 1.0
    kinks = tuple(b for b in (low, high) if b is not None)
    x = t(data.draw(arrays(shape, avoid=kinks)))
    op = either(data, lambda x: x.clip(low, high), lambda x: ops.clip(x, low, high))
    g = AROUND_KINK[around_kink]
    check(lambda x: g(op(x), x), x)


@given(data=st.data(), shapes3=broadcastable_shapes(3))
def test_where_broadcasting(data, shapes3):
    cond_shape, a_shape, b_shape = shapes3
    cond = backend.from_numpy(data.draw(hnp.arrays(np.bool_, cond_shape), label="cond"))
    a = t(data.draw(arrays(a_shape), label="a"))
    b = t(data.draw(arrays(b_shape), label="b"))
    g = around(data, linear=True)
    check(lambda a, b: g(minigen.where(cond, a, b)), a, b)
    check(lambda a, b: minigen.where(cond, a * b, b.exp()), a, b)  # non-linear branches
    check(lambda a: g(ops.where(cond, a, 0.5)), a)  # a constant branch


@given(data=st.data(), shape=shapes(min_dims=1, max_dims=2), eps_grad=st.booleans())
def test_reparameterize_with_a_given_eps(data, shape, eps_grad):
    """z = mu + exp(logvar / 2) eps: d2z/dlogvar2 = exp(logvar / 2) eps / 4, and,
    with eps a tensor that requires grad, d2z/dlogvar deps = exp(logvar / 2) / 2."""
    mu = t(data.draw(arrays(shape), label="mu"))
    logvar = t(data.draw(arrays(shape), label="logvar"))
    eps_host = data.draw(arrays(shape), label="eps")
    if eps_grad:
        check(lambda m, lv, e: reparameterize(m, lv, eps=e), mu, logvar, t(eps_host))
    else:
        eps = backend.from_numpy(eps_host)
        g = around(data)
        check(lambda m, lv: g(reparameterize(m, lv, eps=eps)), mu, logvar)


# -------------------------------------------------------------------- linear


@given(
    data=st.data(),
    lead=st.lists(st.integers(1, 3), min_size=1, max_size=2),
    n_in=st.integers(1, 3),
    n_out=st.integers(1, 3),
    bias=st.booleans(),
)
def test_linear(data, lead, n_in, n_out, bias):
    x = t(data.draw(arrays(tuple(lead) + (n_in,)), label="x"))
    w = t(data.draw(arrays((n_out, n_in)), label="w"))
    args = (x, w) + ((t(data.draw(arrays((n_out,)), label="b")),) if bias else ())
    g = around(data)
    check(lambda *a: g(F.linear(*a)), *args)


def float64_module(module):
    """The module with its parameters in float64 (same Parameter objects, new data)."""
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    for m in module.modules():
        for name in m.__dict__.get("_buffer_names", ()):
            buffer = getattr(m, name)
            if buffer is not None and buffer.dtype.kind == "f":
                setattr(m, name, buffer.astype(np.float64))
    return module


@given(data=st.data(), n_in=st.integers(1, 3), n_out=st.integers(1, 3), bias=st.booleans())
def test_linear_layer(data, n_in, n_out, bias):
    """nn.Linear: the layer's own Parameters are the checked inputs."""
    layer = float64_module(nn.Linear(n_in, n_out, bias=bias))
    x = t(data.draw(arrays((2, n_in)), label="x"))
    g = around(data)
    check(lambda x, *params: g(layer(x)), x, *layer.parameters())


# ---------------------------------------------------------------- convolution


@st.composite
def conv_setups(draw, transpose=False):
    """(N, Cin, Cout, H, W, kh, kw, stride, padding, output_padding): small, with
    non-square kernels, and sizes that leave rows or columns no window reaches
    (H + 2p - kh not a multiple of the stride)."""
    n, cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3))
    padding = draw(st.integers(0, min(kh, kw) - 1))
    out_pad = draw(st.integers(0, stride - 1)) if transpose else 0
    if transpose:
        h, w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        if (min(h, w) - 1) * stride - 2 * padding + min(kh, kw) + out_pad < 1:
            padding = 0
    else:
        h = draw(st.integers(max(1, kh - 2 * padding), 4))
        w = draw(st.integers(max(1, kw - 2 * padding), 4))
    return n, cin, cout, h, w, kh, kw, stride, padding, out_pad


@settings(max_examples=20)
@given(data=st.data(), setup=conv_setups(), bias=st.booleans())
def test_conv2d(data, setup, bias):
    n, cin, cout, h, w, kh, kw, s, p, _ = setup
    x = t(data.draw(arrays((n, cin, h, w)), label="x"))
    weight = t(data.draw(arrays((cout, cin, kh, kw)), label="weight"))
    inputs = (x, weight) + ((t(data.draw(arrays((cout,)), label="bias")),) if bias else ())
    g = around(data)
    check(lambda *a: g(F.conv2d(*a, stride=s, padding=p)), *inputs)


@settings(max_examples=20)
@given(data=st.data(), setup=conv_setups(transpose=True), bias=st.booleans())
def test_conv_transpose2d(data, setup, bias):
    n, cin, cout, h, w, kh, kw, s, p, op = setup
    x = t(data.draw(arrays((n, cin, h, w)), label="x"))
    weight = t(data.draw(arrays((cin, cout, kh, kw)), label="weight"))
    inputs = (x, weight) + ((t(data.draw(arrays((cout,)), label="bias")),) if bias else ())
    g = around(data)
    check(lambda *a: g(F.conv_transpose2d(*a, stride=s, padding=p, output_padding=op)), *inputs)


@pytest.mark.parametrize(
    "layer, shape",
    [
        (lambda: nn.Conv2d(2, 2, (2, 3), stride=2, padding=1), (1, 2, 4, 3)),
        (lambda: nn.Conv2d(1, 2, 3, stride=2), (2, 1, 4, 4)),  # the last row and column: no window
        (
            lambda: nn.ConvTranspose2d(2, 1, (3, 2), stride=2, padding=1, output_padding=1),
            (1, 2, 2, 2),
        ),
        (lambda: nn.ConvTranspose2d(1, 2, 2, stride=1, bias=False), (2, 1, 2, 3)),
    ],
)
def test_conv_layers(layer, shape):
    """nn.Conv2d and nn.ConvTranspose2d: the layer's own Parameters are checked
    with the input, around a square (so the cross terms meet the second ones)."""
    layer = float64_module(layer())
    x = t(np.random.default_rng(0).uniform(-2, 2, shape))
    check(lambda x, *params: layer(x) ** 2, x, *layer.parameters())


# ---------------------------------------------------------------- batch norm

bn_shapes = st.one_of(
    st.tuples(st.integers(2, 4), st.integers(1, 2)),
    st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 3)),
    st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 2), st.integers(1, 2)),
).filter(lambda s: np.prod(s) // s[1] > 1)


@given(data=st.data(), shape=bn_shapes, training=st.booleans(), affine=st.booleans())
def test_batch_norm(data, shape, training, affine):
    """Train mode: the batch mean and variance are functions of x, and their
    second derivatives are part of the answer; eval mode: constants."""
    c = shape[1]
    # Spread-out values: the batch variance stays of order one.
    x = t(data.draw(arrays(shape, -1, 1), label="x") + np.arange(np.prod(shape)).reshape(shape))
    gamma = t(data.draw(arrays((c,), 0.5, 2), label="gamma")) if affine else None
    beta = t(data.draw(arrays((c,)), label="beta")) if affine else None
    rm = backend.from_numpy(data.draw(arrays((c,)), label="running mean"))
    rv = backend.from_numpy(data.draw(arrays((c,), 0.5, 2), label="running var"))
    keep_running = data.draw(st.booleans(), label="running statistics in train mode")
    inputs = [x] + ([gamma, beta] if affine else [])
    g = around(data, linear=not training and not affine)

    def f(x, gamma=None, beta=None):
        # fresh copies: gradgradcheck calls f many times and training updates them
        run = (rm.copy(), rv.copy()) if keep_running or not training else (None, None)
        return g(F.batch_norm(x, *run, gamma, beta, training, 0.1, 1e-5))

    check(f, *inputs)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: nn.BatchNorm1d(2), (3, 2)),
        (lambda: nn.BatchNorm1d(2, affine=False), (2, 2, 2)),
        (lambda: nn.BatchNorm2d(2), (2, 2, 2, 1)),
        (lambda: nn.BatchNorm2d(1, affine=False), (1, 1, 2, 2)),
    ],
)
def test_batch_norm_layers(make, shape, training):
    layer = float64_module(make()).train(training)
    if not training:
        layer.running_mean[...] = backend.from_numpy(np.linspace(-0.5, 0.5, shape[1]))
        layer.running_var[...] = backend.from_numpy(np.linspace(0.5, 2.0, shape[1]))
    params = list(layer.parameters())
    if params:  # not the defaults (ones and zeros), which hide mistakes
        params[0].data[...] = backend.from_numpy(np.linspace(0.7, 1.6, shape[1]))
        params[1].data[...] = backend.from_numpy(np.linspace(-0.4, 0.3, shape[1]))
    x = t(np.random.default_rng(1).uniform(-2, 2, shape))
    check(lambda x, *params: layer(x).tanh(), x, *params)


# ---------------------------------------------------------------- activations

ACTIVATIONS = {
    "ReLU": (nn.ReLU(), F.relu),
    "LeakyReLU(0.2)": (nn.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)),
    "LeakyReLU()": (nn.LeakyReLU(), F.leaky_relu),
    "Tanh": (nn.Tanh(), F.tanh),
    "Sigmoid": (nn.Sigmoid(), F.sigmoid),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@given(data=st.data(), around_kink=st.sampled_from(list(AROUND_KINK)))
def test_activation(name, data, around_kink):
    x = t(data.draw(arrays((2, 3), avoid=(0.0,)), label="x"))
    act, g = either(data, *ACTIVATIONS[name]), AROUND_KINK[around_kink]
    check(lambda x: g(act(x), x), x)


# ---------------------------------------------------------------------- losses

LOSS_REDUCTIONS = ["mean", "sum", "none"]


@given(data=st.data(), shape=shapes(1, 3), reduction=st.sampled_from(LOSS_REDUCTIONS))
def test_bce_with_logits(data, shape, reduction):
    z = t(data.draw(arrays(shape, -4, 4), label="logits"))
    target = t(data.draw(arrays(shape, 0, 1), label="target"))
    g = around(data)
    check(lambda a, b: g(F.binary_cross_entropy_with_logits(a, b, reduction)), z, target)
    const = backend.from_numpy(host(target))
    check(lambda a: F.binary_cross_entropy_with_logits(a, const, reduction), z)


@given(data=st.data(), shape=shapes(1, 3), reduction=st.sampled_from(LOSS_REDUCTIONS))
def test_mse_loss(data, shape, reduction):
    x = t(data.draw(arrays(shape), label="input"))
    target = t(data.draw(arrays(shape), label="target"))
    g = around(data)
    check(lambda a, b: g(F.mse_loss(a, b, reduction)), x, target)


@given(
    data=st.data(),
    n=st.integers(1, 3),
    k=st.integers(1, 4),
    reduction=st.sampled_from(LOSS_REDUCTIONS),
    label_form=st.sampled_from(["host", "backend", "tensor"]),
)
def test_cross_entropy(data, n, k, reduction, label_form):
    z = t(data.draw(arrays((n, k), -4, 4), label="logits"))
    labels_host = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    labels = {
        "host": labels_host,
        "backend": backend.from_numpy(labels_host),
        "tensor": minigen.tensor(labels_host),
    }[label_form]
    g = around(data)
    check(lambda a: g(F.cross_entropy(a, labels, reduction)), z)


@given(data=st.data(), shape=shapes(1, 3), reduction=st.sampled_from(LOSS_REDUCTIONS))
def test_gaussian_kl(data, shape, reduction):
    mu = t(data.draw(arrays(shape), label="mu"))
    logvar = t(data.draw(arrays(shape), label="logvar"))
    g = around(data)
    check(lambda a, b: g(F.gaussian_kl(a, b, reduction)), mu, logvar)


# ------------------------------------------------------------------ together


@settings(max_examples=10)
@given(data=st.data())
def test_small_network_end_to_end(data):
    """Linear -> BatchNorm (train) -> leaky ReLU -> Linear -> loss, with respect to
    the input and every parameter: the terms of a gradient penalty."""
    l1, l2 = float64_module(nn.Linear(2, 3)), float64_module(nn.Linear(3, 1))
    bn = float64_module(nn.BatchNorm1d(3))
    # rows apart, so that no row sits at the batch mean (0 after BatchNorm: the kink)
    offsets = np.array([[0.0, 1.3], [0.9, -0.4], [2.1, 0.6], [-1.2, 2.4]])
    x = t(data.draw(arrays((4, 2), -0.3, 0.3), label="x") + offsets)

    def f(x, *params):
        h = F.leaky_relu(bn(l1(x)), 0.2)
        return F.mse_loss(
            l2(h) * h.sum(axis=1, keepdims=True), backend.from_numpy(np.zeros((4, 1)))
        )

    check(f, x, *l1.parameters(), *bn.parameters(), *l2.parameters())


# ------------------------------------------------------------ third derivatives


def gradient_of(f):
    """x -> tanh of the first gradient of sum(f(x) * v) (v fixed), built with
    create_graph: gradgradcheck of it checks third derivatives. They reach the
    backwards of the Functions that only backward passes make (Scale,
    ScatterAdd, Conv2dWeightFunction...), and the tanh makes the gradient
    those backwards receive depend on x, so a graph they fail to record shows."""

    def first(*xs):
        out = f(*xs)
        v = backend.from_numpy(np.random.default_rng(7).standard_normal(out.shape))
        grads = minigen.grad(out, list(xs), minigen.Tensor(v), create_graph=True)
        return minigen.concatenate([g.reshape(-1) for g in grads]).tanh()

    return first


# name: (function, shapes of its inputs, values kept away from 0); cubes, not
# squares, around the piecewise-linear ops (see test_pow_higher_derivatives_at_a_zero_base)
THIRD = {
    "relu": (lambda x: x.relu() ** 3, [(2, 3)], True),
    "leaky_relu": (lambda x: x.leaky_relu(-0.5) ** 3, [(2, 3)], True),
    "clip": (lambda x: x.clip(-1.0, 0.5) ** 3 * x, [(2, 3)], True),
    "max": (lambda x: (x * x.exp()).max(axis=1) ** 3, [(2, 3)], False),
    "getitem": (lambda x: x[[0, 1, 0, 0]] ** 3, [(2, 2)], False),
    "tanh and logsumexp": (lambda x: x.tanh().logsumexp(axis=0), [(3, 2)], False),
    "linear": (lambda x, w: F.linear(x, w).tanh(), [(2, 3), (2, 3)], False),
    "conv2d": (
        lambda x, w: F.conv2d(x, w, stride=2, padding=1) ** 3,
        [(1, 1, 3, 2), (2, 1, 2, 2)],
        False,
    ),
    "conv_transpose2d": (
        lambda x, w: F.conv_transpose2d(x, w, stride=2, output_padding=1) ** 3,
        [(1, 2, 2, 1), (2, 1, 2, 2)],
        False,
    ),
    "batch_norm": (lambda x: F.batch_norm(x, None, None, training=True).tanh(), [(3, 2)], False),
}


@pytest.mark.parametrize("name", list(THIRD))
@settings(max_examples=5)
@given(data=st.data())
def test_third_derivatives(name, data):
    f, input_shapes, away_from_zero = THIRD[name]
    avoid = (0.0, -1.0, 0.5) if away_from_zero else ()
    xs = [t(data.draw(arrays(s, avoid=avoid), label=f"x{i}")) for i, s in enumerate(input_shapes)]
    if name == "max":  # no ties: distinct values
        xs = [t(host(xs[0]) + np.arange(6.0).reshape(2, 3) * 0.05)]
    if name == "batch_norm":  # a spread-out batch
        xs = [t(host(xs[0]) + np.arange(6.0).reshape(3, 2))]
    check(gradient_of(f), *xs)


# ------------------------------------------- batch norm: the statistics are not constants


def composed_batch_norm(x, gamma, beta, eps=1e-5):
    """Training-mode batch norm written with basic ops (mean, sub, mul, pow), whose
    second derivatives come from those ops' own backwards."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    centred = x - x.mean(axis=axes, keepdims=True)
    var = (centred * centred).mean(axis=axes, keepdims=True)
    return centred * (var + eps) ** -0.5 * gamma.reshape(shape) + beta.reshape(shape)


def fused_batch_norm(x, gamma, beta, eps=1e-5):
    return F.batch_norm(x, None, None, gamma, beta, True, 0.1, eps)


def penalty_and_its_gradients(bn, x, gamma, beta, r, s):
    """The first gradients of sum(bn * r) (made with create_graph), and the
    gradients of the penalty sum(first gradient of x * s) + |first gradient of gamma|^2."""
    y = bn(x, gamma, beta)
    gx, ggamma, gbeta = minigen.grad(y, [x, gamma, beta], r, create_graph=True)
    penalty = (gx * s).sum() + (ggamma * ggamma).sum()
    second = minigen.grad(penalty, [x, gamma, beta], allow_unused=True)
    return [host(v) for v in (y, gx, ggamma, gbeta, *second)]


class ConstantStatisticsBatchNorm(layers.BatchNormFunction):
    """The classic bug: a backward that reads the batch mean and invstd that
    forward computed, as constants, also when it builds a graph. Its first
    derivative is right; its second loses every term through the statistics."""

    def backward(self, grad):
        x, weight = self.saved_tensors
        shape, axes, m = self.shape, self.axes, self.m
        invstd = minigen.Tensor(self.invstd).reshape(shape)
        xhat = (x - minigen.Tensor(self.mean).reshape(shape)) * invstd
        gbeta, ggamma = grad.sum(axis=axes), (grad * xhat).sum(axis=axes)
        gx = grad - (gbeta / m).reshape(shape) - xhat * (ggamma / m).reshape(shape)
        return gx * invstd * weight.reshape(shape), ggamma, gbeta


bn_train_shapes = st.sampled_from([(4, 2), (3, 1), (2, 2, 3), (2, 2, 2, 2), (3, 1, 1, 2)])


@settings(max_examples=10)
@given(data=st.data(), shape=bn_train_shapes)
def test_batch_norm_train_double_backward_matches_the_composed_ops(data, shape):
    c = shape[1]
    x = t(data.draw(arrays(shape, -1, 1), label="x") + np.arange(np.prod(shape)).reshape(shape))
    gamma = t(data.draw(arrays((c,), 0.5, 2), label="gamma"))
    beta = t(data.draw(arrays((c,)), label="beta"))
    r = t(data.draw(arrays(shape), label="r"), requires_grad=False)
    s = t(data.draw(arrays(shape), label="s"), requires_grad=False)
    fused = penalty_and_its_gradients(fused_batch_norm, x, gamma, beta, r, s)
    composed = penalty_and_its_gradients(composed_batch_norm, x, gamma, beta, r, s)
    names = ["y", "dx", "dgamma", "dbeta", "d2x", "d2gamma", "d2beta"]
    for name, a, b in zip(names, fused, composed):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, err_msg=name)
    minigen.gradgradcheck(fused_batch_norm, x, gamma, beta)


@pytest.mark.parametrize("bug", ["a Function with constant statistics", "library backward"])
def test_batch_norm_with_constant_statistics_is_caught(bug, monkeypatch):
    """Treating the batch mean and invstd as constants in backward keeps the
    first derivative right and the second wrong: the comparison with the
    composed ops and gradgradcheck must both see it. Made two ways: a wrong
    Function put in the library's place, and the library's own backward told
    that no graph is being built (so it takes forward's statistics)."""
    rng = np.random.default_rng(0)
    shape = (4, 2)
    x = t(rng.uniform(-1, 1, shape) + np.arange(8.0).reshape(shape))
    gamma, beta = t(rng.uniform(0.5, 2, 2)), t(rng.uniform(-1, 1, 2))
    r = t(rng.standard_normal(shape), requires_grad=False)
    s = t(rng.standard_normal(shape), requires_grad=False)
    composed = penalty_and_its_gradients(composed_batch_norm, x, gamma, beta, r, s)
    if bug == "library backward":
        monkeypatch.setattr(layers, "is_grad_enabled", lambda: False)
    else:
        monkeypatch.setattr(layers, "BatchNormFunction", ConstantStatisticsBatchNorm)
    wrong = penalty_and_its_gradients(fused_batch_norm, x, gamma, beta, r, s)
    for a, b in zip(wrong[:4], composed[:4]):  # values and first derivatives: right
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    assert not np.allclose(wrong[4], composed[4], rtol=1e-6, atol=1e-6)  # d2x: wrong
    minigen.gradcheck(fused_batch_norm, x, gamma, beta)
    with pytest.raises(minigen.GradcheckError, match="input 0"):
        minigen.gradgradcheck(fused_batch_norm, x, gamma, beta)
