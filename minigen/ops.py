"""Differentiable operations, each a Function with forward and backward side by side.

Every op works on arrays of the current backend (``xp``). Backward receives
the gradient of the op's output and returns the gradients of its inputs in
the shape of the *broadcast* result; the engine sums them back down to each
input's own shape (``autograd.unbroadcast``). Constants are made in the
input's dtype (``x.dtype.type(c)`` or Python numbers, which NumPy treats as
"weak"), so float32 stays float32.

The functions at the bottom (``add``, ``exp``, ``sum``...) are the public
forms; ``Tensor`` methods call them too. The array formulas that several
Functions share (``sigmoid_array``, ``softplus_array``, ``logsumexp_array``)
are written once, on raw arrays, just below; the losses in minigen/nn/losses.py
use them too.
"""

import builtins

from minigen import backend
from minigen.autograd import Function, Tensor

# ------------------------------------------------------ array formulas, written once


def sigmoid_array(a):
    """1 / (1 + exp(-a)) on an array, as 0.5 tanh(a / 2) + 0.5: the plain form
    overflows exp for large -a, this one never does."""
    return 0.5 * backend.xp().tanh(0.5 * a) + 0.5


def softplus_array(a):
    """log(1 + exp(a)) on an array, as max(a, 0) + log1p(exp(-|a|)): no exp of a
    large positive number, so it is finite for any a."""
    xp = backend.xp()
    return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))


def logsumexp_array(a, axis=None, keepdims=False):
    """log(sum(exp(a), axis)) on an array, as m + log(sum(exp(a - m))) with m the
    maximum (0 where it is infinite, so all -inf gives -inf, not NaN)."""
    xp = backend.xp()
    m = a.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    out = xp.log(xp.exp(a - m).sum(axis=axis, keepdims=True)) + m
    return out if keepdims else out.squeeze(axis) if axis is not None else out.reshape(())


# ------------------------------------------------------------------ arithmetic


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, grad):
        return grad, grad


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, grad):
        return grad, -grad


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        ga = grad * self.b if self.needs_input_grad[0] else None
        gb = grad * self.a if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        self.b = b
        self.out = a / b
        return self.out

    def backward(self, grad):
        ga = grad / self.b
        gb = -ga * self.out if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, grad):
        return -grad


class Pow(Function):
    """a ** b. d/da = b a^(b-1); d/db = a^b log(a) (needs a > 0)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a**b
        return self.out

    def backward(self, grad):
        ga = grad * self.b * self.a ** (self.b - 1) if self.needs_input_grad[0] else None
        gb = grad * self.out * backend.xp().log(self.a) if self.needs_input_grad[1] else None
        return ga, gb


class MatMul(Function):
    """a @ b over the last two axes, batch axes broadcast. Both inputs need ndim >= 2."""

    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError("matmul needs arrays of at least 2 dimensions")
        self.a, self.b = a, b
        return a @ b

    def backward(self, grad):
        ga = grad @ self.b.swapaxes(-1, -2) if self.needs_input_grad[0] else None
        gb = self.a.swapaxes(-1, -2) @ grad if self.needs_input_grad[1] else None
        return ga, gb


# ------------------------------------------------------------------ reductions


def _expand(grad, shape, axis, keepdims):
    """Broadcast a reduced gradient back to the input's shape."""
    if axis is not None and not keepdims:
        grad = backend.xp().expand_dims(grad, axis)
    return backend.xp().broadcast_to(grad, shape)


class Sum(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return a.sum(axis=axis, keepdims=keepdims)

    def backward(self, grad):
        return _expand(grad, self.shape, self.axis, self.keepdims)


class Mean(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        out = a.mean(axis=axis, keepdims=keepdims)
        self.count = a.size // builtins.max(1, out.size)
        return out

    def backward(self, grad):
        return _expand(grad / self.count, self.shape, self.axis, self.keepdims)


class Max(Function):
    """Maximum over axes; ties share the gradient equally."""

    def forward(self, a, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims
        out = a.max(axis=axis, keepdims=True)
        mask = (a == out).astype(a.dtype)
        self.mask = mask / mask.sum(axis=axis, keepdims=True)
        return out if keepdims else out.squeeze(axis) if axis is not None else out.reshape(())

    def backward(self, grad):
        return _expand(grad, self.mask.shape, self.axis, self.keepdims) * self.mask


class LogSumExp(Function):
    """log(sum(exp(a))) (``logsumexp_array``); its gradient is softmax(a) = exp(a - out)."""

    def forward(self, a, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims
        out = logsumexp_array(a, axis=axis, keepdims=True)
        self.softmax = backend.xp().exp(a - out)
        return out if keepdims else out.squeeze(axis) if axis is not None else out.reshape(())

    def backward(self, grad):
        return _expand(grad, self.softmax.shape, self.axis, self.keepdims) * self.softmax


# ------------------------------------------------------------- shape and moves


class Reshape(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, grad):
        return grad.reshape(self.shape)


class Permute(Function):
    """Permute axes (reverse them when ``axes`` is None); backward permutes back."""

    def forward(self, a, axes=None):
        axes = tuple(reversed(range(a.ndim))) if axes is None else tuple(axes)
        axes = tuple(ax + a.ndim if ax < 0 else ax for ax in axes)  # the inverse needs -1 as ndim-1
        self.inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        return a.transpose(axes)

    def backward(self, grad):
        return grad.transpose(self.inverse)


class GetItem(Function):
    """a[index]; repeated integer indices add their gradients (``add.at``)."""

    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, grad):
        xp = backend.xp()
        out = xp.zeros(self.shape, dtype=self.dtype)
        if _has_array(self.index):
            xp.add.at(out, self.index, grad)
        else:
            out[self.index] = grad
        return out


def _has_array(index):
    parts = index if isinstance(index, tuple) else (index,)
    return builtins.any(hasattr(p, "shape") or isinstance(p, list) for p in parts)


class Concatenate(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        self.bounds = _cumulative([a.shape[axis] for a in arrays])
        return backend.xp().concatenate(arrays, axis=axis)

    def backward(self, grad):
        axis = self.axis % grad.ndim
        lead = (slice(None),) * axis
        return tuple(grad[lead + (slice(lo, hi),)] for lo, hi in self.bounds)


class Stack(Function):
    def forward(self, *arrays, axis=0):
        self.axis, self.count = axis, len(arrays)
        return backend.xp().stack(arrays, axis=axis)

    def backward(self, grad):
        return tuple(grad.take(i, axis=self.axis) for i in range(self.count))


def _cumulative(sizes):
    bounds, start = [], 0
    for n in sizes:
        bounds.append((start, start + n))
        start += n
    return bounds


# --------------------------------------------------------- elementwise functions


class Exp(Function):
    def forward(self, a):
        self.out = backend.xp().exp(a)
        return self.out

    def backward(self, grad):
        return grad * self.out


class Log(Function):
    def forward(self, a):
        self.a = a
        return backend.xp().log(a)

    def backward(self, grad):
        return grad / self.a


class Sqrt(Function):
    def forward(self, a):
        self.out = backend.xp().sqrt(a)
        return self.out

    def backward(self, grad):
        return grad / (2 * self.out)


class Tanh(Function):
    def forward(self, a):
        self.out = backend.xp().tanh(a)
        return self.out

    def backward(self, grad):
        return grad * (1 - self.out * self.out)


class Sigmoid(Function):
    def forward(self, a):
        self.out = sigmoid_array(a)
        return self.out

    def backward(self, grad):
        return grad * self.out * (1 - self.out)


class ReLU(Function):
    def forward(self, a):
        self.out = backend.xp().maximum(a, 0)
        return self.out

    def backward(self, grad):
        return grad * (self.out > 0)


class LeakyReLU(Function):
    """a for a > 0, negative_slope * a otherwise.

    For a slope >= 0 the output has the sign of the input, so backward finds
    the sign in the output, as ReLU does: the next layer keeps that array
    anyway, and the input (a convolution's or BatchNorm's output) is freed.
    A negative slope flips the sign, so then the input is kept instead.
    (max(a, negative_slope * a) is the same for slopes in [0, 1], and runs several
    times faster than ``where``, which matters: this op sits on every conv layer.)
    """

    def forward(self, a, negative_slope=0.01):
        self.negative_slope = a.dtype.type(negative_slope)
        if 0 <= negative_slope <= 1:
            out = backend.xp().maximum(a, a * self.negative_slope)
        else:
            out = backend.xp().where(a > 0, a, a * self.negative_slope)
        self.sign_of = out if negative_slope >= 0 else a  # > 0 exactly where a > 0
        return out

    def backward(self, grad):
        # grad * (1 where a > 0, else slope), as arithmetic: ``where`` on a
        # sign pattern that changes at random mispredicts branches, 5-10x slower.
        s = self.negative_slope
        factor = (self.sign_of > 0) * (1 - s)
        factor += s
        factor *= grad
        return factor


class Softplus(Function):
    """log(1 + exp(a)) (``softplus_array``); its derivative is sigmoid(a)."""

    def forward(self, a):
        self.a = a
        return softplus_array(a)

    def backward(self, grad):
        return grad * sigmoid_array(self.a)


class LogSigmoid(Function):
    """log(sigmoid(a)) = -softplus(-a); its derivative is sigmoid(-a)."""

    def forward(self, a):
        self.a = a
        return -softplus_array(-a)

    def backward(self, grad):
        return grad * sigmoid_array(-self.a)


class Clip(Function):
    """Clip to [low, high]; the gradient passes where low <= a <= high."""

    def forward(self, a, low=None, high=None):
        # Bounds in a's dtype: an np.float64 bound would turn float32 into float64.
        low = None if low is None else a.dtype.type(low)
        high = None if high is None else a.dtype.type(high)
        inside_low = a >= low if low is not None else True
        inside_high = a <= high if high is not None else True
        self.mask = inside_low & inside_high
        return backend.xp().clip(a, low, high)

    def backward(self, grad):
        return grad * self.mask


class Where(Function):
    """cond ? a : b, with ``cond`` a boolean array (a parameter, not differentiated)."""

    def forward(self, a, b, *, cond):
        self.cond = cond
        return backend.xp().where(cond, a, b)

    def backward(self, grad):
        zero = grad.dtype.type(0)
        xp = backend.xp()
        ga = xp.where(self.cond, grad, zero) if self.needs_input_grad[0] else None
        gb = xp.where(self.cond, zero, grad) if self.needs_input_grad[1] else None
        return ga, gb


# ---------------------------------------------------------------- public forms


def add(a, b):
    """a + b, broadcasting."""
    return Add.apply(a, b)


def sub(a, b):
    """a - b, broadcasting."""
    return Sub.apply(a, b)


def mul(a, b):
    """a * b, broadcasting."""
    return Mul.apply(a, b)


def div(a, b):
    """a / b, broadcasting."""
    return Div.apply(a, b)


def neg(a):
    return Neg.apply(a)


def pow(a, b):  # noqa: A001 - named like the operator
    """a ** b; b may be a number or a tensor (its gradient needs a > 0)."""
    return Pow.apply(a, b)


def matmul(a, b):
    """Matrix product over the last two axes; leading (batch) axes broadcast."""
    return MatMul.apply(a, b)


def sum(a, axis=None, keepdims=False):  # noqa: A001
    return Sum.apply(a, axis=_axis(axis), keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    return Mean.apply(a, axis=_axis(axis), keepdims=keepdims)


def max(a, axis=None, keepdims=False):  # noqa: A001
    return Max.apply(a, axis=_axis(axis), keepdims=keepdims)


def logsumexp(a, axis=None, keepdims=False):
    """log(sum(exp(a), axis)), without overflow."""
    return LogSumExp.apply(a, axis=_axis(axis), keepdims=keepdims)


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def reshape(a, shape):
    return Reshape.apply(a, shape=tuple(shape) if not isinstance(shape, int) else (shape,))


def permute(a, axes=None):
    """Reorder the axes of ``a`` as ``axes`` says (NumPy's ``transpose(a, axes)``);
    all axes reversed when ``axes`` is None."""
    return Permute.apply(a, axes=axes)


def transpose(a, dim0, dim1):
    """Swap two axes, as PyTorch's ``transpose(a, dim0, dim1)``."""
    axes = list(range(a.ndim))
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return Permute.apply(a, axes=axes)


def getitem(a, index):
    """a[index] with slices, integers, and integer or boolean arrays."""
    return GetItem.apply(a, index=_index_data(index))


def _index_data(index):
    if isinstance(index, tuple):
        return tuple(_index_data(i) for i in index)
    return index.data if isinstance(index, Tensor) else index


def concatenate(tensors, axis=0):
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis=0):
    return Stack.apply(*tensors, axis=axis)


def exp(a):
    return Exp.apply(a)


def log(a):
    return Log.apply(a)


def sqrt(a):
    return Sqrt.apply(a)


def tanh(a):
    return Tanh.apply(a)


def sigmoid(a):
    return Sigmoid.apply(a)


def relu(a):
    return ReLU.apply(a)


def leaky_relu(a, negative_slope=0.01):
    """a for a > 0, negative_slope * a otherwise (PyTorch's name for the slope)."""
    return LeakyReLU.apply(a, negative_slope=negative_slope)


def softplus(a):
    return Softplus.apply(a)


def log_sigmoid(a):
    return LogSigmoid.apply(a)


def clip(a, low=None, high=None):
    return Clip.apply(a, low=low, high=high)


def where(cond, a, b):
    """Elementwise ``a`` where ``cond`` is true, else ``b``."""
    cond = cond.data if isinstance(cond, Tensor) else cond
    return Where.apply(a, b, cond=cond)


def reparameterize(mu, logvar, eps=None):
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I): a sample of N(mu, exp(logvar)).

    The reparameterisation trick: the randomness is an input, so gradients
    flow to mu and logvar. ``eps`` is drawn with ``backend.randn`` in mu's
    dtype unless given (the importance-weighted bound needs it back).
    """
    if eps is None:
        eps = backend.randn(*mu.shape, dtype=mu.dtype)
    return mu + exp(logvar * 0.5) * eps
