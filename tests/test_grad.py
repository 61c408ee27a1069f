"""minigen.grad: gradients as Tensors, as torch.autograd.grad gives them.

Values are those ``.backward()`` gives; no ``.grad`` is touched;
``grad_outputs`` weights the outputs and is checked; several outputs and
inputs, non-leaf inputs, unused inputs; ``create_graph=False`` records
nothing, ``create_graph=True`` gives gradients that differentiate again
(higher derivatives, gradient penalties that reach a layer's parameters);
only the paths that lead to the inputs are walked. And ``Tensor.backward``
and ``requires_grad_`` keep working as before.
"""

import numpy as np
import pytest
from helpers import arrays, broadcastable_shapes, host, shapes, t
from hypothesis import given
from hypothesis import strategies as st

import minigen
from minigen import ShapeError, backend, nn, ops
from minigen.autograd import Function
from minigen.nn import functional as F  # noqa: N812 - the PyTorch idiom
from minigen.nn import layers


def backward_grads(loss_fn, *inputs, upstream=None):
    """The .grad that loss_fn(*inputs).backward(upstream) leaves on each input."""
    for x in inputs:
        x.grad = None
    loss_fn(*inputs).backward(upstream)
    grads = [np.zeros(x.shape) if x.grad is None else host(x.grad) for x in inputs]
    for x in inputs:
        x.grad = None
    return grads


# ----------------------------------------------------------------- values


@given(data=st.data(), shapes2=broadcastable_shapes(2))
def test_values_equal_backward(data, shapes2):
    a = t(data.draw(arrays(shapes2[0]), label="a"))
    b = t(data.draw(arrays(shapes2[1]), label="b"))

    def loss(a, b):
        return ((a * b).tanh() + a.exp() / (1 + b * b)).sum()

    got = minigen.grad(loss(a, b), [a, b])
    assert isinstance(got, tuple) and len(got) == 2
    for g, want, x in zip(got, backward_grads(loss, a, b), (a, b)):
        assert isinstance(g, minigen.Tensor) and g.shape == x.shape and g.dtype == x.dtype
        np.testing.assert_allclose(host(g), want, rtol=1e-12, atol=1e-12)


def test_a_single_tensor_for_outputs_and_inputs():
    x = t(np.array([1.0, 2.0]))
    (g,) = minigen.grad((x * x).sum(), x)
    np.testing.assert_array_equal(host(g), [2.0, 4.0])


def test_float32_stays_float32():
    x = minigen.tensor([1.0, -2.0], requires_grad=True)
    (g,) = minigen.grad((x * x).sum(), x)
    assert g.dtype == np.float32
    (g,) = minigen.grad((x * x).sum(), x, create_graph=True)
    (h,) = minigen.grad(g.sum(), x)
    assert h.dtype == np.float32


def test_grad_leaves_dot_grad_alone():
    x, w = t(np.array([1.0, 2.0])), t(np.array([0.5, -1.0]))
    before = backend.from_numpy(np.array([7.0, 7.0]))
    x.grad = before
    minigen.grad((x * w).sum(), [x])
    minigen.grad((x * w).sum(), [x, w], create_graph=True)
    assert x.grad is before and w.grad is None
    np.testing.assert_array_equal(host(x.grad), [7.0, 7.0])


def test_calling_grad_twice_gives_the_same_gradients():
    """The graph is not freed by a walk (there is no retain_graph to forget)."""
    x = t(np.array([0.5, -1.5]))
    y = (x.tanh() * x).sum()
    first = host(minigen.grad(y, x)[0])
    np.testing.assert_array_equal(host(minigen.grad(y, x)[0]), first)
    y.backward()
    np.testing.assert_array_equal(host(x.grad), first)


# ------------------------------------------------------------ grad_outputs


@given(data=st.data(), shape=shapes(min_dims=1))
def test_grad_outputs_weight_the_outputs(data, shape):
    x = t(data.draw(arrays(shape), label="x"))
    v = t(data.draw(arrays(shape), label="v"), requires_grad=False)

    def f(x):
        return x.sigmoid() * x

    (g,) = minigen.grad(f(x), x, v)
    (want,) = backward_grads(f, x, upstream=v.data)
    np.testing.assert_allclose(host(g), want, rtol=1e-12, atol=1e-12)
    (g,) = minigen.grad([f(x)], [x], [v])  # lists of one
    np.testing.assert_allclose(host(g), want, rtol=1e-12, atol=1e-12)


def test_grad_outputs_are_checked():
    x = t(np.ones((2, 3)))
    y = x * 2
    with pytest.raises(ShapeError, match=r"gradient shape \(3, 2\) != tensor shape \(2, 3\)"):
        minigen.grad(y, x, t(np.ones((3, 2)), False))
    with pytest.raises(ShapeError, match=r"one-element tensor.*\(2, 3\)"):
        minigen.grad(y, x)  # a non-scalar output needs its grad_output
    with pytest.raises(ValueError, match="2 grad_outputs for 1 outputs"):
        minigen.grad(y, x, [t(np.ones((2, 3)), False), t(np.ones((2, 3)), False)])
    with pytest.raises(ValueError, match="1 grad_outputs for 2 outputs"):
        minigen.grad([y, y.sum()], x, [t(np.ones((2, 3)), False)])
    with pytest.raises(TypeError, match="grad_outputs"):
        minigen.grad(y, x, [np.ones((2, 3))])
    with pytest.raises(TypeError, match="inputs"):
        minigen.grad(y.sum(), [x.data])
    with pytest.raises(TypeError, match="outputs"):
        minigen.grad([y.data], x)


def test_none_in_grad_outputs_means_one_for_a_scalar_output():
    x = t(np.array([1.0, 2.0]))
    gy = [None, t(np.array([1.0, -1.0]), False)]
    (g,) = minigen.grad([(x * x).sum(), x * 3], x, gy)
    np.testing.assert_allclose(host(g), 2 * host(x) + np.array([3.0, -3.0]))


def test_the_gradient_graph_reaches_grad_outputs():
    """With create_graph the result is a function of grad_outputs too:
    grad(x^2, x, v) = 2 x v, whose gradient with respect to v is 2 x."""
    x, v = t(np.array([1.0, -2.0])), t(np.array([0.5, 3.0]))
    (g,) = minigen.grad(x * x, x, v, create_graph=True)
    np.testing.assert_allclose(host(g), 2 * host(x) * host(v))
    gx, gv = minigen.grad(g.sum(), [x, v])
    np.testing.assert_allclose(host(gv), 2 * host(x))
    np.testing.assert_allclose(host(gx), 2 * host(v))


# ---------------------------------------------------- several outputs and inputs


@given(data=st.data(), shape=shapes())
def test_several_outputs_and_inputs(data, shape):
    """grad([y1, y2], [a, b, c], [v1, v2]) is the gradient of sum(y1 v1) + sum(y2 v2)."""
    a, b, c = (t(data.draw(arrays(shape), label=n)) for n in "abc")
    v1 = t(data.draw(arrays(shape), label="v1"), False)
    v2 = t(data.draw(arrays(shape), label="v2"), False)

    def outputs(a, b, c):
        return a * b + c.tanh(), (b - c).exp() * a

    got = minigen.grad(list(outputs(a, b, c)), [a, b, c], [v1, v2])

    def total(a, b, c):
        y1, y2 = outputs(a, b, c)
        return (y1 * v1).sum() + (y2 * v2).sum()

    for g, want in zip(got, backward_grads(total, a, b, c)):
        np.testing.assert_allclose(host(g), want, rtol=1e-12, atol=1e-12)
    # the same input twice: the same gradient twice
    ga, ga_again = minigen.grad(total(a, b, c), [a, a])
    np.testing.assert_array_equal(host(ga), host(ga_again))
    np.testing.assert_allclose(host(ga), host(got[0]), rtol=1e-12, atol=1e-12)


def test_non_leaf_inputs():
    """An intermediate tensor as an input: the gradient stops at it (dy/dh); a leaf
    asked for in the same call still gets every path, through h included."""
    x = t(np.array([0.3, -0.8, 1.1]))
    h = x * 2
    y = (h.tanh() * x).sum()
    gh, gx = minigen.grad(y, [h, x])
    np.testing.assert_allclose(host(gh), (1 - np.tanh(host(h)) ** 2) * host(x), rtol=1e-12)
    (want,) = backward_grads(lambda x: ((x * 2).tanh() * x).sum(), x)
    np.testing.assert_allclose(host(gx), want, rtol=1e-12)
    # and the gradient with respect to h differentiates again, with respect to x
    (gh,) = minigen.grad(y, h, create_graph=True)
    (ggx,) = minigen.grad(gh.sum(), x)
    th = np.tanh(2 * host(x))
    want = (1 - th**2) + host(x) * (-2 * th * (1 - th**2)) * 2
    np.testing.assert_allclose(host(ggx), want, rtol=1e-12)


def test_an_unused_input_is_an_error_or_a_zero_gradient():
    x, unused = t(np.array([1.0, 2.0])), t(np.array([[3.0, 4.0, 5.0]]))
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(1, 3\)\).*allow_unused=True"):
        minigen.grad(y, [x, unused])
    gx, gu = minigen.grad(y, [x, unused], allow_unused=True)
    np.testing.assert_array_equal(host(gx), [2.0, 4.0])
    assert gu.shape == (1, 3) and gu.dtype == unused.dtype and not gu.requires_grad
    np.testing.assert_array_equal(host(gu), np.zeros((1, 3)))
    # used only through a branch that does not reach the output: still unused
    z = unused * 2  # noqa: F841
    with pytest.raises(RuntimeError, match="input 0"):
        minigen.grad(y, [unused, x])


def test_inputs_and_outputs_that_do_not_require_grad():
    x, c = t(np.array([1.0, 2.0])), t(np.array([3.0, 4.0]), requires_grad=False)
    y = (x * c).sum()
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(2,\)\) does not require"):
        minigen.grad(y, [x, c])
    with pytest.raises(RuntimeError, match=r"output 0.*does not require"):
        minigen.grad((c * c).sum(), x)
    with minigen.no_grad():
        z = (x * x).sum()
    with pytest.raises(RuntimeError, match="output 0"):
        minigen.grad(z, x)


# ---------------------------------------------------------------- create_graph


class RecordedNodes:
    """Counts the Functions applied, and those recorded as graph nodes (an output
    with a maker), while active: wraps Function.apply, which every op goes through."""

    def __init__(self, monkeypatch):
        self.applied, self.recorded, self.active = 0, 0, False
        apply = Function.apply.__func__

        def counting(cls, *inputs, **params):
            out = apply(cls, *inputs, **params)
            if self.active:
                self.applied += 1
                self.recorded += out._ctx is not None
            return out

        monkeypatch.setattr(Function, "apply", classmethod(counting))

    def __enter__(self):
        self.active = True
        return self

    def __exit__(self, *exc):
        self.active = False


def test_without_create_graph_nothing_is_recorded(monkeypatch):
    w = t(np.array([[0.5, -1.0], [2.0, 0.3]]))
    x = t(np.array([[1.0, 2.0]]))
    v = t(np.array([[1.0, -1.0]]))  # a grad_output that requires grad: still nothing
    y = (x @ w).tanh() * x
    with RecordedNodes(monkeypatch) as nodes:
        gx, gw = minigen.grad(y, [x, w], v)
    assert nodes.applied > 0  # the backward pass ran ops...
    assert nodes.recorded == 0  # ...and none of them made a graph node
    for g in (gx, gw):
        assert not g.requires_grad and g._ctx is None
    assert minigen.is_grad_enabled()
    with RecordedNodes(monkeypatch) as nodes:
        gx, gw = minigen.grad(y, [x, w], v, create_graph=True)
    assert nodes.recorded > 0
    assert gx.requires_grad and gx._ctx is not None and gw.requires_grad


def test_recording_is_switched_back_after_an_error_in_a_backward():
    class Broken(Function):
        def forward(self, a):
            return a * 1

        def backward(self, grad):
            raise ZeroDivisionError("broken backward")

    x = t(np.array([1.0]))
    for create_graph in (False, True):
        with pytest.raises(ZeroDivisionError):
            minigen.grad(Broken.apply(x).sum(), x, create_graph=create_graph)
        assert minigen.is_grad_enabled()
    y = Broken.apply(x).sum()
    with minigen.no_grad():  # and off again when it was off
        with pytest.raises(ZeroDivisionError):
            minigen.grad(y, x, create_graph=True)
        assert not minigen.is_grad_enabled()


def test_a_backward_that_returns_arrays_works_but_not_under_create_graph():
    class ArrayBackward(Function):
        def forward(self, a):
            self.a = a
            return a * a

        def backward(self, grad):
            return 2 * self.a * grad.data  # an array: no graph can come of it

    x = t(np.array([1.0, 3.0]))
    (g,) = minigen.grad(ArrayBackward.apply(x).sum(), x)
    np.testing.assert_array_equal(host(g), [2.0, 6.0])
    with pytest.raises(TypeError, match="ArrayBackward.backward returned an array"):
        minigen.grad(ArrayBackward.apply(x).sum(), x, create_graph=True)


@given(x0=st.floats(-2, 2))
def test_higher_derivatives_of_x_to_the_fourth(x0):
    """d/dx x^4 = 4 x^3, then 12 x^2, 24 x, 24."""
    x = t(np.array([x0]))
    y = x**4
    want = [4 * x0**3, 12 * x0**2, 24 * x0, 24.0]
    for k, expected in enumerate(want):
        (y,) = minigen.grad(y.sum(), x, create_graph=True)
        np.testing.assert_allclose(host(y), [expected], rtol=1e-12, atol=1e-12, err_msg=str(k))


@given(data=st.data(), shape=shapes(min_dims=1))
def test_third_derivative_of_tanh(data, shape):
    """tanh' = s = 1 - t^2, tanh'' = -2 t s, tanh''' = -2 s (1 - 3 t^2), elementwise."""
    x = t(data.draw(arrays(shape, -2, 2)))
    (d1,) = minigen.grad(x.tanh().sum(), x, create_graph=True)
    (d2,) = minigen.grad(d1.sum(), x, create_graph=True)
    (d3,) = minigen.grad(d2.sum(), x)
    th = np.tanh(host(x))
    s = 1 - th**2
    np.testing.assert_allclose(host(d1), s, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(d2), -2 * th * s, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(d3), -2 * s * (1 - 3 * th**2), rtol=1e-10, atol=1e-12)


@given(data=st.data(), shape=shapes())
def test_mixed_second_derivative_is_symmetric(data, shape):
    """d/db (dL/da) = d/da (dL/db) for L = sum(exp(a b) * a)."""
    a, b = t(data.draw(arrays(shape, -1, 1), label="a")), t(data.draw(arrays(shape, -1, 1)))
    loss = ((a * b).exp() * a).sum()
    ga, gb = minigen.grad(loss, [a, b], create_graph=True)
    (gab,) = minigen.grad(ga.sum(), b)
    (gba,) = minigen.grad(gb.sum(), a)
    ah, bh = host(a), host(b)
    want_ab = np.exp(ah * bh) * (2 * ah + ah * ah * bh)  # d/db [exp(ab)(1 + ab)]
    np.testing.assert_allclose(host(gab), want_ab, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(host(gba), want_ab, rtol=1e-10, atol=1e-12)


# ------------------------------------------------ a gradient penalty on a layer


def float64_linear(n_in, n_out, rng):
    layer = nn.Linear(n_in, n_out)
    layer.weight.data = backend.from_numpy(rng.uniform(-1, 1, (n_out, n_in)))
    layer.bias.data = backend.from_numpy(rng.uniform(-1, 1, n_out))
    return layer


@pytest.mark.parametrize("form", ["squared norm", "WGAN-GP"])
def test_gradient_penalty_reaches_the_parameters(form):
    """P(theta) = mean over examples of |dD/dx|^2 (or (|dD/dx| - 1)^2) for a small
    critic D: grad(P, parameters) through create_graph, against .backward() and
    against finite differences in the parameters (gradcheck of P)."""
    rng = np.random.default_rng(0)
    l1, l2 = float64_linear(3, 4, rng), float64_linear(4, 1, rng)
    x_data = rng.uniform(-1, 1, (5, 3))
    params = [l1.weight, l1.bias, l2.weight, l2.bias]

    def penalty(*_params):
        x = t(x_data)  # a fresh leaf each call: gradcheck calls penalty many times
        critic = l2(l1(x).tanh())
        (gx,) = minigen.grad(critic.sum(), x, create_graph=True)
        norm2 = (gx * gx).sum(axis=1)
        if form == "squared norm":
            return norm2.mean()
        return (((norm2 + 1e-12).sqrt() - 1) ** 2).mean()

    p = penalty()
    with pytest.raises(RuntimeError, match="input 3"):  # the last bias does not move dD/dx
        minigen.grad(p, params)
    got = minigen.grad(p, params, allow_unused=True)
    for g, param in zip(got[:3], params):
        assert g.shape == param.shape and np.abs(host(g)).max() > 1e-6  # all reached
    np.testing.assert_array_equal(host(got[3]), [0.0])
    for g, want in zip(got, backward_grads(penalty, *params)):
        np.testing.assert_allclose(host(g), want, rtol=1e-12, atol=1e-12)
    minigen.gradcheck(penalty, *params)


def test_gradient_penalty_through_conv_and_batch_norm():
    """The same through a convolutional critic with BatchNorm in train mode."""
    rng = np.random.default_rng(1)
    conv = nn.Conv2d(1, 2, 2, stride=2)
    bn = nn.BatchNorm2d(2)
    head = float64_linear(2 * 2 * 2, 1, rng)
    for p in (*conv.parameters(), *bn.parameters()):
        p.data = backend.from_numpy(rng.uniform(0.5, 1.5, p.shape))
    for name in ("running_mean", "running_var"):
        setattr(bn, name, getattr(bn, name).astype(np.float64))
    params = [*conv.parameters(), *bn.parameters(), *head.parameters()]
    x_data = rng.uniform(-1, 1, (3, 1, 4, 4))

    def penalty(*_params):
        x = t(x_data)
        h = F.leaky_relu(bn(conv(x)), 0.2).reshape(3, -1)
        (gx,) = minigen.grad(head(h).sum(), x, create_graph=True)
        return (gx * gx).sum() / 3

    minigen.gradcheck(penalty, *params)


# ----------------------------------------------------------------- pruning


def test_only_the_paths_to_the_inputs_are_walked(monkeypatch):
    """The gradient with respect to a Linear's input computes no weight
    gradient: its backward is told (needs_input_grad) and does one GEMM."""
    layer = float64_linear(3, 2, np.random.default_rng(0))
    x = t(np.random.default_rng(1).uniform(-1, 1, (4, 3)))
    seen, matmuls = [], []
    linear_backward, matmul_forward = layers.LinearFunction.backward, ops.MatMul.forward

    def recording_backward(self, grad):
        seen.append(self.needs_input_grad)
        return linear_backward(self, grad)

    def counting_forward(self, a, b):
        matmuls.append((a.shape, b.shape))
        return matmul_forward(self, a, b)

    monkeypatch.setattr(layers.LinearFunction, "backward", recording_backward)
    monkeypatch.setattr(ops.MatMul, "forward", counting_forward)
    y = layer(x).tanh().sum()

    (gx,) = minigen.grad(y, x)
    assert seen == [(True, False, False)] and matmuls == [((4, 2), (2, 3))]  # g @ W only
    seen.clear(), matmuls.clear()
    (gw,) = minigen.grad(y, layer.weight)
    assert seen == [(False, True, False)] and matmuls == [((2, 4), (4, 3))]  # g^T @ x only
    seen.clear(), matmuls.clear()
    y.backward()
    assert seen == [(True, True, True)] and len(matmuls) == 2
    np.testing.assert_allclose(host(x.grad), host(gx), rtol=1e-12)
    np.testing.assert_allclose(host(layer.weight.grad), host(gw), rtol=1e-12)
    # needs_input_grad is the full one again after each walk
    assert layer(x)._ctx.needs_input_grad == (True, True, True)


def test_a_branch_that_does_not_lead_to_the_inputs_is_not_walked():
    class Explodes(Function):
        def forward(self, a):
            return a * 2

        def backward(self, grad):
            raise AssertionError("backward of a branch that does not reach the inputs")

    x, w = t(np.array([1.0, 2.0])), t(np.array([3.0, 4.0]))
    y = (x.tanh() + Explodes.apply(w)).sum()
    (gx,) = minigen.grad(y, x)
    np.testing.assert_allclose(host(gx), 1 - np.tanh([1.0, 2.0]) ** 2)
    with pytest.raises(AssertionError, match="does not reach"):
        y.backward()  # backward() walks every branch


# --------------------------------------------------- backward and requires_grad_


@given(data=st.data(), shape=shapes())
def test_backward_still_accumulates(data, shape):
    x = t(data.draw(arrays(shape)))

    def f(x):
        return (x * x.tanh()).sum()

    f(x).backward()
    once = host(x.grad).copy()
    minigen.grad(f(x), x)  # in between: touches nothing
    f(x).backward()
    np.testing.assert_allclose(host(x.grad), 2 * once, rtol=1e-12, atol=1e-15)
    assert not isinstance(x.grad, minigen.Tensor)  # .grad stays an array
    x.zero_grad()
    assert x.grad is None


def test_backward_through_a_gradient_accumulates_second_derivatives():
    """.backward() on a loss built from a create_graph gradient (a penalty)
    fills .grad with its derivatives: d/dx (dx^3/dx)^2 = 2 (3x^2)(6x)."""
    x = t(np.array([0.5, -1.0]))
    (g,) = minigen.grad((x**3).sum(), x, create_graph=True)
    (g * g).sum().backward()
    xs = np.array([0.5, -1.0])
    np.testing.assert_allclose(host(x.grad), 36 * xs**3, rtol=1e-12)


def test_backward_of_a_loss_made_of_a_function_and_its_gradient():
    """L = f(x) + |grad f(x)|^2 with f = sum(exp(x)): one .backward() walks the
    original graph and the gradient's graph, which share Exp's node:
    dL/dx = exp(x) + 2 exp(2x)."""
    xs = np.array([0.3, -0.5, 1.2])
    x = t(xs)
    y = x.exp().sum()
    (g,) = minigen.grad(y, x, create_graph=True)
    (y + (g * g).sum()).backward()
    np.testing.assert_allclose(host(x.grad), np.exp(xs) + 2 * np.exp(2 * xs), rtol=1e-12)


def test_requires_grad_on_a_leaf_and_on_a_non_leaf():
    x = t(np.array([1.0, 2.0]), requires_grad=False)
    assert x.requires_grad_() is x and x.requires_grad
    (g,) = minigen.grad((x * x).sum(), x)
    np.testing.assert_array_equal(host(g), [2.0, 4.0])
    assert x.requires_grad_(False) is x and not x.requires_grad
    y = t(np.array([1.0]))
    z = y * 2
    with pytest.raises(RuntimeError, match=r"operation.*detach\(\)\.requires_grad_\(\)"):
        z.requires_grad_()
    d = z.detach().requires_grad_()
    assert d.requires_grad and d._ctx is None
    with pytest.raises(TypeError, match="floating"):
        minigen.tensor(np.array([1, 2])).requires_grad_()


# ------------------------------------------------------------------- detach


def test_a_detached_copy_is_a_constant_in_the_second_derivative():
    """x * x.detach(): the first gradient is x.detach(), a constant; so its
    gradient with respect to x is zero (PyTorch: the first gradient does not
    even require grad)."""
    x = t(np.array([1.0, 2.0, 3.0]))
    (g,) = minigen.grad((x * x.detach()).sum(), x, create_graph=True)
    np.testing.assert_array_equal(host(g), [1.0, 2.0, 3.0])
    assert not g.requires_grad
