"""Check an autograd gradient against central finite differences.

For a function f of tensors and a fixed random upstream gradient r, the
scalar L = sum(f(x) * r) has dL/dx_i estimated numerically by

    (L(x + h e_i) - L(x - h e_i)) / (2h),

with error O(h^2). Autograd's value must agree. Work in float64: in float32
the rounding error of L swamps the difference quotient.

``gradgradcheck`` checks second derivatives the same way: the first
gradient, g(x) = dL/dx computed by ``grad(..., create_graph=True)``, is
itself a function of x, so ``gradcheck`` of g compares autograd's gradient
of g (a second derivative, through the backward graph) with central
differences of g.
"""

from minigen import backend, ops
from minigen.autograd import Tensor, grad

np = backend.host  # the comparison is done on the host, in float64


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with the finite-difference estimate."""


def gradcheck(f, *inputs, eps=1e-6, tol=1e-5, seed=0):
    """Compare autograd's gradient of ``f(*inputs)`` with finite differences.

    ``inputs`` are float64 Tensors; those with ``requires_grad`` are checked.
    The error of element i is |analytic - numeric| / max(|analytic|, |numeric|, 1e-3),
    relative for gradients of order one and absolute for tiny ones.
    Returns the worst error; raises GradcheckError naming the input, element and
    both values when it exceeds ``tol``.
    """
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype.name != "float64":
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64")
    out = f(*inputs)
    r = backend.from_numpy(np.random.default_rng(seed).standard_normal(out.shape))

    for i in checked:
        inputs[i].grad = None
    if out.requires_grad:  # else f's output is a constant: every gradient is zero
        out.backward(r)

    worst = 0.0
    for i in checked:
        x = inputs[i]
        # An input f does not use gets no gradient: that is a zero gradient.
        analytic = np.zeros(x.shape) if x.grad is None else backend.to_numpy(x.grad)
        numeric = _numeric_grad(f, inputs, x, r, eps)
        err = abs(analytic - numeric) / np.maximum(np.maximum(abs(analytic), abs(numeric)), 1e-3)
        err = np.where(np.isnan(err), np.inf, err)  # a NaN on either side fails, never passes
        j = int(err.argmax()) if err.size else 0
        if err.size and err.flat[j] > tol:
            index = tuple(int(k) for k in np.unravel_index(j, err.shape))
            raise GradcheckError(
                f"gradcheck: input {i} (shape {x.shape}), element {index}: "
                f"analytic {analytic.flat[j]:.8g} vs numeric {numeric.flat[j]:.8g} "
                f"(error {err.flat[j]:.2e} > tol {tol:.0e})"
            )
        worst = max(worst, float(err.max()) if err.size else 0.0)
    return worst


def _numeric_grad(f, inputs, x, r, eps):
    """Central differences of sum(f * r) with respect to each element of x."""
    grad = np.zeros(x.shape)
    # Index x.data itself: a reshape(-1) "view" is a copy for non-contiguous data.
    for k in np.ndindex(*x.shape):
        original = float(x.data[k])
        x.data[k] = original + eps
        plus = float((f(*inputs).data * r).sum())
        x.data[k] = original - eps
        minus = float((f(*inputs).data * r).sum())
        x.data[k] = original
        grad[k] = (plus - minus) / (2 * eps)
    return grad


def gradgradcheck(f, *inputs, eps=1e-6, tol=1e-5, seed=0):
    """Compare autograd's second derivatives of ``f(*inputs)`` with finite
    differences of its first derivatives.

    The first gradient of sum(f * r) (r a fixed random upstream gradient) with
    respect to the inputs that require it is taken with
    ``grad(..., create_graph=True)``; ``gradcheck`` then checks that function
    of the inputs. Returns the worst error; raises GradcheckError when it
    exceeds ``tol``.
    """
    checked = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input requires grad")
    shape = f(*inputs).shape
    r = Tensor(backend.from_numpy(np.random.default_rng(seed + 1).standard_normal(shape)))

    def first_gradient(*xs):
        out = f(*xs)
        if not out.requires_grad:
            return Tensor(backend.xp().zeros(sum(x.size for x in checked)))
        wanted = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        grads = grad(out, wanted, r, create_graph=True, allow_unused=True)
        return ops.concatenate([g.reshape(-1) for g in grads])

    return gradcheck(first_gradient, *inputs, eps=eps, tol=tol, seed=seed)
