"""Properties of the autograd engine itself, independent of any one op.

Gradients accumulate until zero_grad, shared subexpressions sum their paths,
broadcasting is undone, no_grad records nothing, detach cuts the graph,
dtypes are kept (float32 graphs stay float32), constants get no gradient,
bad shapes raise errors that name the op and both shapes, deep graphs
do not hit Python's recursion limit, and the graph keeps no intermediate
tensor that no backward needs.
"""

import weakref

import numpy as np
import pytest
from helpers import arrays, broadcastable_shapes, host, shapes, t
from hypothesis import given
from hypothesis import strategies as st

import minigen
from minigen import backend, ops
from minigen.autograd import Function, ShapeError, Tensor

# ----------------------------------------------------------- tensor basics


def test_tensor_attributes():
    x = t(np.array([[1.0, 2.0, 3.0]]))
    assert backend.is_array(x.data)
    assert x.requires_grad and x.grad is None
    assert x.shape == (1, 3) and x.ndim == 2 and x.size == 3 and len(x) == 1
    assert x.dtype == np.float64
    np.testing.assert_array_equal(x.numpy(), [[1.0, 2.0, 3.0]])
    assert "requires_grad=True" in repr(x)
    assert t(np.array(2.5)).item() == 2.5


def test_backward_from_scalar_sets_leaf_gradients():
    x = t(np.array([1.0, -2.0, 3.0]))
    w = t(np.array([0.5, 0.25, 2.0]))
    (x * w).sum().backward()
    np.testing.assert_array_equal(host(x.grad), [0.5, 0.25, 2.0])
    np.testing.assert_array_equal(host(w.grad), [1.0, -2.0, 3.0])
    assert backend.is_array(x.grad)


@given(data=st.data(), shape=shapes(min_dims=1))
def test_backward_with_explicit_upstream_gradient(data, shape):
    x = t(data.draw(arrays(shape)))
    g = data.draw(arrays(shape), label="upstream")
    y = x * 3.0
    y.backward(backend.from_numpy(g))
    np.testing.assert_allclose(host(x.grad), 3.0 * g)
    x.zero_grad()
    y.backward(t(g, requires_grad=False))  # a Tensor works too
    np.testing.assert_allclose(host(x.grad), 3.0 * g)


def test_backward_errors():
    x = t(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"one-element.*\(2, 3\)"):
        (x * 2.0).backward()
    with pytest.raises(ShapeError, match=r"\(3, 2\).*\(2, 3\)"):
        (x * 2.0).backward(backend.from_numpy(np.ones((3, 2))))
    with pytest.raises(RuntimeError, match="does not require"):
        t(np.ones(3), requires_grad=False).sum().backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating"):
        Tensor(backend.from_numpy(np.array([1, 2])), requires_grad=True)


def test_backward_on_a_leaf():
    x = t(np.array(2.0))
    x.backward()
    assert float(host(x.grad)) == 1.0


# --------------------------------------------------- accumulation and paths


@given(data=st.data(), shape=shapes())
def test_two_backward_calls_double_the_gradient(data, shape):
    x = t(data.draw(arrays(shape)))
    loss = (x * x).sum() + x.tanh().sum()
    loss.backward()
    once = host(x.grad).copy()
    loss.backward()
    np.testing.assert_allclose(host(x.grad), 2 * once, rtol=1e-12)
    x.zero_grad()
    assert x.grad is None
    loss.backward()
    np.testing.assert_allclose(host(x.grad), once, rtol=1e-12)


@given(data=st.data(), shape=shapes())
def test_x_times_x_plus_x(data, shape):
    """x is used three times: the engine must sum all three paths."""
    a = data.draw(arrays(shape))
    x = t(a)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(host(x.grad), 2 * a + 1, rtol=1e-12)


@given(data=st.data(), shape=shapes())
def test_shared_subexpression(data, shape):
    """z = y*y + y with y = 2x: dz/dx = (2y + 1) * 2, both uses of y count."""
    a = data.draw(arrays(shape))
    x = t(a)
    y = x * 2.0
    (y * y + y).sum().backward()
    np.testing.assert_allclose(host(x.grad), (2 * (2 * a) + 1) * 2, rtol=1e-12)


def test_diamond_graph_backward_visits_each_node_once():
    """a -> b, c -> d: gradients through both branches, each Function's backward once."""
    calls = []

    class Double(Function):
        def forward(self, a):
            return a * 2

        def backward(self, grad):
            calls.append(1)
            return grad * 2

    x = t(np.array([1.0, 2.0]))
    b = Double.apply(x)
    (b * 3.0 + b.exp()).sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(host(x.grad), 2 * (3 + np.exp(2 * np.array([1.0, 2.0]))))


@given(data=st.data(), shapes2=broadcastable_shapes(2))
def test_broadcasting_is_undone(data, shapes2):
    """Each input's gradient has the input's shape, and is the upstream gradient
    summed over the axes that broadcasting stretched or added."""
    sa, sb = shapes2
    a, b = t(data.draw(arrays(sa))), t(data.draw(arrays(sb)))
    out = a * b
    g = data.draw(arrays(out.shape), label="upstream")
    out.backward(backend.from_numpy(g))
    assert a.grad.shape == sa and b.grad.shape == sb
    full_b = np.broadcast_to(host(b), out.shape)
    np.testing.assert_allclose(host(a.grad), _sum_to(g * full_b, sa), rtol=1e-10, atol=1e-12)
    full_a = np.broadcast_to(host(a), out.shape)
    np.testing.assert_allclose(host(b.grad), _sum_to(g * full_a, sb), rtol=1e-10, atol=1e-12)


def _sum_to(g, shape):
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    return g.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


def test_inputs_without_requires_grad_get_no_gradient():
    x = t(np.array([1.0, 2.0]))
    c = t(np.array([3.0, 4.0]), requires_grad=False)
    (x * c).sum().backward()
    assert c.grad is None
    unused = t(np.array([1.0]))
    (x * 2.0).sum().backward()
    assert unused.grad is None


def test_ops_on_constants_build_no_graph():
    c = t(np.array([1.0, 2.0]), requires_grad=False)
    y = (c * 2.0).exp().sum()
    assert not y.requires_grad and y._ctx is None


# ------------------------------------------------------- no_grad and detach


@given(data=st.data(), shape=shapes())
def test_no_grad_records_nothing(data, shape):
    x = t(data.draw(arrays(shape)))
    assert minigen.is_grad_enabled()
    with minigen.no_grad():
        assert not minigen.is_grad_enabled()
        y = (x * x).exp().sum() + x.sum()
        with minigen.no_grad():  # nesting keeps it off
            pass
        assert not minigen.is_grad_enabled()
    assert minigen.is_grad_enabled()
    assert not y.requires_grad and y._ctx is None
    with pytest.raises(RuntimeError):
        y.backward()
    assert x.grad is None


def test_no_grad_restores_after_an_exception():
    with pytest.raises(ZeroDivisionError), minigen.no_grad():
        raise ZeroDivisionError
    assert minigen.is_grad_enabled()


def test_detach_shares_data_and_cuts_the_graph():
    x = t(np.array([1.0, 2.0]))
    d = (x * 3.0).detach()
    assert not d.requires_grad and d._ctx is None
    np.testing.assert_array_equal(host(d), [3.0, 6.0])
    (x * d).sum().backward()  # d is a constant: dx = d, no path through d
    np.testing.assert_array_equal(host(x.grad), [3.0, 6.0])
    assert x.detach().data is x.data


def test_graph_keeps_no_intermediate_tensor_that_backward_does_not_need():
    # a = x + 1 is needed by no backward (Add saves nothing, ReLU saves its
    # output), so dropping it frees it; gradients still flow through it.
    x = t(np.array([-2.0, 0.5, 3.0]))
    a = x + 1.0
    ref = weakref.ref(a)
    y = ops.relu(a)
    del a
    assert ref() is None
    (y * 2.0).sum().backward()
    np.testing.assert_array_equal(host(x.grad), [0.0, 2.0, 2.0])


# ------------------------------------------------------------------- dtypes

# Every public op applied to float32 input, with Python ints and NumPy float64
# scalars mixed in as constants.
F32_OPS = {
    "add": lambda x: x + 1 + np.float64(0.5),
    "radd": lambda x: np.float64(0.5) + x,
    "sub": lambda x: 2 - x - np.sqrt(0.5),
    "mul": lambda x: x * np.sqrt(0.5) * 3,
    "rmul": lambda x: np.sqrt(0.5) * x,
    "div": lambda x: x / np.float64(3.0) / 2,
    "rdiv": lambda x: np.float64(1.0) / (x * x + 1),
    "neg": lambda x: -x,
    "pow": lambda x: (x * x + 1) ** np.float64(0.5) + x**2,
    "rpow": lambda x: np.float64(2.0) ** x + 3**x,
    "matmul": lambda x: x.reshape(2, 3) @ x.reshape(3, 2),
    "sum": lambda x: x.sum(0, keepdims=True),
    "mean": lambda x: x.mean(),
    "max": lambda x: x.max(-1),
    "logsumexp": lambda x: x.logsumexp(),
    "reshape": lambda x: x.reshape(-1),
    "transpose": lambda x: x.T,
    "getitem": lambda x: x[::2],
    "concatenate": lambda x: ops.concatenate([x, x]),
    "stack": lambda x: ops.stack([x, x], axis=-1),
    "exp": lambda x: x.exp(),
    "log": lambda x: (x * x + 1).log(),
    "sqrt": lambda x: (x * x + 1).sqrt(),
    "tanh": lambda x: x.tanh(),
    "sigmoid": lambda x: x.sigmoid(),
    "relu": lambda x: x.relu(),
    "leaky_relu": lambda x: x.leaky_relu(np.float64(0.1)),
    "softplus": lambda x: x.softplus(),
    "log_sigmoid": lambda x: x.log_sigmoid(),
    "clip": lambda x: x.clip(np.float64(-0.5), np.float64(0.5)),
    "clip_int": lambda x: x.clip(-1, 1),
    "where": lambda x: ops.where(x.data > 0, x, np.float64(0.0)),
    "int_array": lambda x: x + backend.from_numpy(np.arange(6)),
    "f64_array": lambda x: x * backend.from_numpy(np.full(6, 0.5)),
}


@pytest.mark.parametrize("name", list(F32_OPS))
def test_float32_in_float32_out(name):
    """float32 graphs stay float32, forward and backward, even with float64 constants."""
    x = Tensor(backend.randn(6), requires_grad=True)
    assert x.dtype == np.float32
    y = F32_OPS[name](x)
    assert y.dtype == np.float32, f"{name}: float32 in, {y.dtype} out"
    y.sum().backward()
    assert x.grad.dtype == np.float32, f"{name}: gradient is {x.grad.dtype}"


def test_tensor_keeps_the_dtype_of_its_data():
    assert minigen.tensor(np.zeros(3)).dtype == np.float64
    assert minigen.tensor(np.zeros(3, np.float32)).dtype == np.float32
    assert minigen.tensor(np.float64(1.0)).dtype == np.float64
    assert minigen.tensor([1.0, 2.0]).dtype == np.float32  # created by minigen: float32
    assert minigen.tensor(3.0).dtype == np.float32
    assert minigen.tensor([1, 2]).dtype == np.float32
    assert minigen.tensor(np.zeros(3), dtype=np.float32).dtype == np.float32
    assert backend.is_array(minigen.tensor([1.0]).data)


@given(data=st.data(), shape=shapes())
def test_float64_stays_float64(data, shape):
    x = t(data.draw(arrays(shape)))
    y = (x * 0.1 + 1).sigmoid() * np.float32(2.0)
    assert y.dtype == np.float64
    # a Python constant in a float64 graph keeps full precision
    np.testing.assert_allclose(host(x * 0.1), host(x) * 0.1, rtol=1e-15)


# ---------------------------------------------------------------- constants


@given(data=st.data(), shape=shapes(min_dims=1), c=st.floats(-2, 2))
def test_non_tensor_constants(data, shape, c):
    """An op applied to a backend array or a scalar works and treats it as constant."""
    a = data.draw(arrays(shape))
    x = t(a)
    arr = backend.from_numpy(data.draw(arrays(shape), label="array"))
    y = ops.mul(x, arr) + ops.add(c, x) + ops.sub(arr, x) + ops.exp(arr).sum()
    np.testing.assert_allclose(
        host(y), a * host(arr) + c + a + host(arr) - a + np.exp(host(arr)).sum(), rtol=1e-12
    )
    y.backward(backend.from_numpy(np.ones(y.shape)))
    np.testing.assert_allclose(host(x.grad), host(arr) + 1 - 1, rtol=1e-12, atol=1e-12)
    only_constants = ops.mul(arr, c)
    assert isinstance(only_constants, Tensor) and not only_constants.requires_grad


def test_host_numpy_constants_work_on_the_numpy_backend():
    minigen.use_backend("numpy")
    x = minigen.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * np.array([3.0, 4.0]) + np.array([1.0, 1.0])
    z = np.ones((1, 2)) @ y.reshape(2, 1)  # a NumPy array on the left of @
    z.sum().backward()
    np.testing.assert_array_equal(host(x.grad), [3.0, 4.0])


# ------------------------------------------------------------- shape errors

SHAPE_ERRORS = [
    ("Add", lambda a, b: a + b, (2, 3), (4, 3)),
    ("Mul", lambda a, b: ops.mul(a, b), (2, 3), (3, 2)),
    ("MatMul", lambda a, b: a @ b, (2, 3), (2, 3)),
    ("MatMul", lambda a, b: a @ b, (3,), (3, 2)),
    ("Concatenate", lambda a, b: ops.concatenate([a, b], axis=1), (2, 3), (4, 3)),
    ("Stack", lambda a, b: ops.stack([a, b]), (2, 3), (3, 2)),
    ("Where", lambda a, b: ops.where(a.data > 0, a, b), (2, 3), (4,)),
]


@pytest.mark.parametrize("op, f, sa, sb", SHAPE_ERRORS)
def test_shape_mismatch_names_the_op_and_both_shapes(op, f, sa, sb):
    a, b = t(np.ones(sa)), t(np.ones(sb))
    with pytest.raises(ShapeError) as info:
        f(a, b)
    message = str(info.value)
    assert op in message and str(sa) in message and str(sb) in message
    assert isinstance(info.value, ValueError)


def test_reshape_error_names_the_op():
    with pytest.raises(ShapeError, match=r"Reshape.*\(2, 3\)"):
        t(np.ones((2, 3))).reshape(4, 2)


# ------------------------------------------------------------------ engine


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = t(np.array([0.5, -0.25]))
    y = x
    for _ in range(5000):
        y = y + 1.0
    for _ in range(1000):
        y = y * 1.0
    y.sum().backward()
    np.testing.assert_array_equal(host(x.grad), [1.0, 1.0])
    np.testing.assert_array_equal(host(y), [5000.5, 4999.75])
    del y  # freeing a long chain must not recurse either


def test_every_op_is_a_method_and_a_function():
    for name in [
        "sum mean max logsumexp reshape transpose permute exp log sqrt tanh sigmoid relu",
        "leaky_relu softplus log_sigmoid clip",
    ]:
        for op in name.split():
            assert callable(getattr(Tensor, op)), op
            assert callable(getattr(minigen, op)), op
    for op in "add sub mul div neg pow matmul getitem concatenate stack where".split():
        assert callable(getattr(minigen, op)), op
    for dunder in "add radd sub rsub mul rmul truediv rtruediv neg pow rpow matmul getitem".split():
        assert hasattr(Tensor, f"__{dunder}__"), dunder


def test_custom_function_with_needs_input_grad():
    """A user Function: backward sees which inputs need a gradient."""
    seen = []

    class Scale(Function):
        def forward(self, a, b):
            self.a, self.b = a, b
            return a * b

        def backward(self, grad):
            seen.append(self.needs_input_grad)
            return grad * self.b, (grad * self.a if self.needs_input_grad[1] else None)

    x = t(np.array([2.0]))
    c = t(np.array([5.0]), requires_grad=False)
    Scale.apply(x, c).sum().backward()
    assert seen == [(True, False)]
    np.testing.assert_array_equal(host(x.grad), [5.0])


def test_where_needs_its_condition():
    a, b = t(np.ones(3)), t(np.zeros(3))
    with pytest.raises(TypeError, match="cond"):
        ops.Where.apply(a, b)
    cond = backend.from_numpy(np.array([True, False, True]))
    np.testing.assert_array_equal(host(ops.where(cond, a, b)), [1, 0, 1])


def test_a_value_error_of_an_op_that_checks_no_shapes_is_not_called_a_shape_error():
    class Picky(Function):
        def forward(self, a):
            raise ValueError("needs positive values")

    with pytest.raises(ValueError, match="needs positive values") as info:
        Picky.apply(t(np.ones(3)))
    assert not isinstance(info.value, ShapeError)
