"""Linear, BatchNorm, activations, Flatten/Unflatten and Dropout.

Gradients are checked against finite differences in float64 over drawn
shapes; values against NumPy formulas written out here; dtypes stay float32;
bad shapes raise errors that name the layer and the shapes.
"""

import numpy as np
import pytest
from helpers import arrays, host, t
from hypothesis import given, settings
from hypothesis import strategies as st

import minigen
from minigen import ShapeError, backend, nn
from minigen.nn import functional as F  # noqa: N812 - the PyTorch idiom

# ---------------------------------------------------------------------- linear


@settings(max_examples=20, deadline=None)
@given(
    data=st.data(),
    lead=st.lists(st.integers(1, 3), min_size=1, max_size=2),
    n_in=st.integers(1, 4),
    n_out=st.integers(1, 4),
    bias=st.booleans(),
)
def test_linear_gradcheck(data, lead, n_in, n_out, bias):
    x = t(data.draw(arrays(tuple(lead) + (n_in,)), label="x"))
    w = t(data.draw(arrays((n_out, n_in)), label="w"))
    args = (x, w) + ((t(data.draw(arrays((n_out,)), label="b")),) if bias else ())
    out = F.linear(*args)
    expected = host(x) @ host(w).T + (host(args[2]) if bias else 0)
    np.testing.assert_allclose(host(out), expected, rtol=1e-12, atol=1e-12)
    minigen.gradcheck(F.linear, *args)


def test_linear_of_a_transposed_view_returns_dx_in_its_layout():
    """A flattened channels-last conv output is a transposed view (batch axis
    contiguous); dx comes back laid out the same way, with the same values and
    gradients of both orders."""
    rng = np.random.default_rng(0)
    base = t(rng.standard_normal((6, 4)))  # (in, N) in memory
    w, b = t(rng.standard_normal((3, 6))), t(rng.standard_normal(3))
    x = base.permute(1, 0)  # (N, in), strides (1, N)
    gx, gw = minigen.grad(F.linear(x, w, b).sum(), (x, w))
    assert gx.data.strides[0] < gx.data.strides[1]  # batch axis contiguous, as x
    np.testing.assert_allclose(host(gx), np.ones((4, 3)) @ host(w), rtol=1e-12)
    np.testing.assert_allclose(host(gw), np.ones((3, 4)) @ host(x), rtol=1e-12)
    linear_of_view = lambda base, w, b: F.linear(base.permute(1, 0), w, b)  # noqa: E731
    minigen.gradcheck(linear_of_view, base, w, b)
    minigen.gradgradcheck(linear_of_view, base, w, b)


def test_linear_layer_float32_and_pytorch_semantics():
    layer = nn.Linear(5, 3)
    assert layer.weight.shape == (3, 5) and layer.bias.shape == (3,)
    x = t(np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32))
    y = layer(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(
        host(y), host(x) @ host(layer.weight).T + host(layer.bias), rtol=1e-5, atol=1e-6
    )
    y.sum().backward()
    assert all(g.dtype == np.float32 for g in (x.grad, layer.weight.grad, layer.bias.grad))
    assert nn.Linear(5, 3, bias=False).bias is None


def test_linear_bad_shape_names_layer_and_shapes():
    layer = nn.Linear(784, 10)
    x = t(np.zeros((2, 1, 28, 28), np.float32), False)
    with pytest.raises(ShapeError, match=r"Linear\(in_features=784.*\(2, 1, 28, 28\)"):
        layer(x)
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(4, 5\)"):
        F.linear(t(np.zeros((2, 3))), t(np.zeros((4, 5))))


# ------------------------------------------------------------------- batch norm


def numpy_batch_norm(x, gamma, beta, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    xhat = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return xhat * gamma.reshape(shape) + beta.reshape(shape), mean, var


bn_shapes = st.one_of(
    st.tuples(st.integers(2, 5), st.integers(1, 3)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
).filter(lambda s: np.prod(s) // s[1] > 1)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), shape=bn_shapes, training=st.booleans(), affine=st.booleans())
def test_batch_norm_gradcheck(data, shape, training, affine):
    c = shape[1]
    # Spread-out values: the batch variance stays of order one.
    x = t(data.draw(arrays(shape, -3, 3), label="x") + np.arange(np.prod(shape)).reshape(shape))
    gamma = t(data.draw(arrays((c,), 0.5, 2), label="gamma")) if affine else None
    beta = t(data.draw(arrays((c,)), label="beta")) if affine else None
    rm = backend.from_numpy(data.draw(arrays((c,)), label="running mean"))
    rv = backend.from_numpy(data.draw(arrays((c,), 0.5, 2), label="running var"))
    inputs = [x] + ([gamma, beta] if affine else [])

    def f(x, gamma=None, beta=None):
        # fresh copies: gradcheck calls f many times and training updates them
        return F.batch_norm(x, rm.copy(), rv.copy(), gamma, beta, training, 0.1, 1e-5)

    minigen.gradcheck(f, *inputs)


@settings(max_examples=15, deadline=None)
@given(data=st.data(), shape=bn_shapes, momentum=st.sampled_from([0.1, 0.5, 1.0]))
def test_batch_norm_statistics_as_pytorch(data, shape, momentum):
    c, eps = shape[1], 1e-5
    x = data.draw(arrays(shape, -3, 3), label="x")
    gamma, beta = data.draw(arrays((c,)), label="gamma"), data.draw(arrays((c,)), label="beta")
    rm0, rv0 = data.draw(arrays((c,)), label="rm"), data.draw(arrays((c,), 0.5, 2), label="rv")
    rm, rv = backend.from_numpy(rm0.copy()), backend.from_numpy(rv0.copy())
    y = F.batch_norm(t(x), rm, rv, t(gamma), t(beta), True, momentum, eps)
    expected, mean, var = numpy_batch_norm(x, gamma, beta, eps)
    np.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-10)
    m = x.size // c
    np.testing.assert_allclose(host(rm), (1 - momentum) * rm0 + momentum * mean, rtol=1e-12)
    unbiased = var * m / (m - 1)
    np.testing.assert_allclose(host(rv), (1 - momentum) * rv0 + momentum * unbiased, rtol=1e-12)
    # eval: running statistics, not the batch's
    y = F.batch_norm(t(x), rm, rv, t(gamma), t(beta), False, momentum, eps)
    shape_c = (1, -1) + (1,) * (x.ndim - 2)
    expected = (x - host(rm).reshape(shape_c)) / np.sqrt(host(rv).reshape(shape_c) + eps)
    expected = expected * gamma.reshape(shape_c) + beta.reshape(shape_c)
    np.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cls, shape", [(nn.BatchNorm1d, (8, 3)), (nn.BatchNorm2d, (4, 3, 5, 5))])
def test_batch_norm_layer_modes_and_dtype(cls, shape):
    bn = cls(3)
    x = t((np.random.default_rng(0).standard_normal(shape) * 3 + 2).astype(np.float32))
    y = bn(x)
    assert y.dtype == np.float32 and bn.running_var.dtype == np.float32
    axes = (0,) + tuple(range(2, len(shape)))
    np.testing.assert_allclose(host(y).mean(axis=axes), 0, atol=1e-5)
    np.testing.assert_allclose(host(y).std(axis=axes), 1, atol=1e-3)
    assert int(host(bn.num_batches_tracked)) == 1
    y.sum().backward()
    assert x.grad.dtype == np.float32 and bn.weight.grad.dtype == np.float32
    running = host(bn.running_mean).copy()
    bn.eval()
    y_eval = bn(x)
    np.testing.assert_array_equal(host(bn.running_mean), running)  # eval leaves them alone
    assert int(host(bn.num_batches_tracked)) == 1
    assert not np.allclose(host(y_eval), host(y))


def test_batch_norm_bad_input():
    with pytest.raises(ShapeError, match=r"BatchNorm2d\(3.*\(N, C, H, W\).*\(4, 3\)"):
        nn.BatchNorm2d(3)(t(np.zeros((4, 3), np.float32)))
    with pytest.raises(ShapeError, match=r"BatchNorm1d\(3.*C = 3.*\(4, 5\)"):
        nn.BatchNorm1d(3)(t(np.zeros((4, 5), np.float32)))
    with pytest.raises(ShapeError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(t(np.zeros((1, 3), np.float32)))


# ------------------------------------------------------------------ activations


def test_activation_modules():
    x = np.linspace(-3, 3, 13).astype(np.float32)
    cases = [
        (nn.ReLU(), np.maximum(x, 0)),
        (nn.LeakyReLU(0.2), np.where(x > 0, x, 0.2 * x)),
        (nn.LeakyReLU(), np.where(x > 0, x, 0.01 * x)),
        (nn.Tanh(), np.tanh(x)),
        (nn.Sigmoid(), 1 / (1 + np.exp(-x))),
    ]
    for layer, expected in cases:
        y = layer(t(x))
        assert y.dtype == np.float32, layer
        np.testing.assert_allclose(host(y), expected, rtol=1e-6, atol=1e-6, err_msg=repr(layer))
    np.testing.assert_allclose(host(F.leaky_relu(t(x), 0.3)), np.where(x > 0, x, 0.3 * x))


@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_activation_gradcheck(data):
    x = t(data.draw(arrays((2, 3), avoid=(0.0,)), label="x"))
    for f in (F.relu, lambda v: F.leaky_relu(v, 0.2), F.tanh, F.sigmoid):
        minigen.gradcheck(f, x)


# --------------------------------------------------------------------- reshapes


def test_flatten_unflatten_round_trip():
    x = t(np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5))
    flat = nn.Flatten()(x)
    assert flat.shape == (2, 60)
    back = nn.Unflatten((3, 4, 5))(flat)
    np.testing.assert_array_equal(host(back), host(x))
    assert nn.Unflatten(1, (3, 4, 5))(flat).shape == (2, 3, 4, 5)  # PyTorch's form
    back.sum().backward()
    np.testing.assert_array_equal(host(x.grad), np.ones((2, 3, 4, 5)))
    with pytest.raises(ShapeError, match=r"Unflatten.*\(N, 60\).*\(2, 61\)"):
        nn.Unflatten((3, 4, 5))(t(np.zeros((2, 61), np.float32)))


# ---------------------------------------------------------------------- dropout


def test_dropout_training_and_eval():
    x = t(np.ones((200, 100), np.float32))
    layer = nn.Dropout(0.3)
    y = host(layer(x))
    assert y.dtype == np.float32
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.01
    layer.eval()
    assert layer(x) is x
    assert F.dropout(x, 0.0, True) is x
    np.testing.assert_array_equal(host(F.dropout(x, 1.0, True)), 0)
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)


def test_dropout_gradient_is_the_mask():
    x = t(np.random.default_rng(0).standard_normal((30, 30)))
    y = F.dropout(x, 0.5, True)
    y.sum().backward()
    kept = host(y) != 0
    np.testing.assert_allclose(host(x.grad), kept * 2.0)
