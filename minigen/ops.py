"""Differentiable operations, each a Function with forward and backward side by side.

Every op works on arrays of the current backend (``xp``). Backward receives
the gradient of the op's output and returns the gradients of its inputs in
the shape of the *broadcast* result; the engine sums them back down to each
input's own shape (``autograd.unbroadcast``). Constants are made in the
input's dtype (``x.dtype.type(c)`` or Python numbers, which NumPy treats as
"weak"), so float32 stays float32.

The functions at the bottom (``add``, ``exp``, ``sum``...) are the public
forms; ``Tensor`` methods call them too. The array formulas that several
Functions share (``sigmoid_array``, ``softplus_array``, ``logsumexp_array``,
``matmul_array``)
are written once, on raw arrays, just below; the losses in minigen/nn/losses.py
use them too.
"""

import builtins

from minigen import backend
from minigen.autograd import Function, Tensor, is_grad_enabled

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


def matmul_array(a, b):
    """a @ b on arrays; an outer product (inner size 1) as a broadcast multiply,
    which NumPy does 10x faster than its matmul for that shape."""
    if a.shape[-1] == 1 and b.shape[-2] == 1:
        return a * b
    return backend.xp().matmul(a, b)


def logsumexp_array(a, axis=None, keepdims=False):
    """log(sum(exp(a), axis)) on an array, as m + log(sum(exp(a - m))) with m the
    maximum (0 where it is infinite, so all -inf gives -inf, not NaN)."""
    xp = backend.xp()
    m = a.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    out = xp.log(xp.exp(a - m).sum(axis=axis, keepdims=True)) + m
    return out if keepdims else out.squeeze(axis) if axis is not None else out.reshape(())


# ------------------------------------------------------------------ arithmetic
#
# Each backward is written with Tensor operations on Tensors (see the Function
# docstring in minigen/autograd.py): ``grad`` and ``saved_tensors`` are Tensors,
# so the same lines give first derivatives, and, under create_graph, a graph
# that gives second ones. Arrays kept as plain attributes are constants: masks
# and indices, whose derivative is zero.


class Add(Function):
    array_checks_shapes = True

    def forward(self, a, b):
        return a + b

    def backward(self, grad):
        return grad, grad


class Sub(Function):
    array_checks_shapes = True

    def forward(self, a, b):
        return a - b

    def backward(self, grad):
        return grad, -grad


class Mul(Function):
    array_checks_shapes = True

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, grad):
        a, b = self.saved_tensors
        ga = grad * b if self.needs_input_grad[0] else None
        gb = grad * a if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    array_checks_shapes = True

    def forward(self, a, b):
        out = a / b
        self.save_for_backward(b, out)
        return out

    def backward(self, grad):
        b, out = self.saved_tensors
        ga = grad / b
        gb = -ga * out if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, grad):
        return -grad


class Pow(Function):
    """a ** b. d/da = b a^(b-1); d/db = a^b log(a) (needs a > 0).

    Where a constant b is 0 the derivative b a^(b-1) is 0, written as 0 * a^0
    rather than 0 * a^(-1): at a = 0 the latter is 0 * inf = NaN, and so would
    be every higher derivative of x**2 at 0 (the third one has exponent 0).
    """

    array_checks_shapes = True

    def forward(self, a, b):
        out = a**b
        self.save_for_backward(a, b, out)
        return out

    def backward(self, grad):
        a, b, out = self.saved_tensors
        # a constant exponent 0 gives 0 * a^0 (see above); an exponent that is itself
        # differentiated keeps a^(b-1), whose derivative in b at b = 0 is a^-1
        exponent = b - 1 if self.needs_input_grad[1] else b - (b.data != 0)
        ga = grad * b * a**exponent if self.needs_input_grad[0] else None
        gb = grad * out * log(a) if self.needs_input_grad[1] else None
        return ga, gb


class MatMul(Function):
    """a @ b over the last two axes, batch axes broadcast. Both inputs need ndim >= 2."""

    array_checks_shapes = True

    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError("matmul needs arrays of at least 2 dimensions")
        self.save_for_backward(a, b)
        return matmul_array(a, b)

    def backward(self, grad):
        a, b = self.saved_tensors
        ga = matmul(grad, transpose(b, -1, -2)) if self.needs_input_grad[0] else None
        gb = matmul(transpose(a, -1, -2), grad) if self.needs_input_grad[1] else None
        return ga, gb


# ------------------------------------------------------------------ reductions


def _expand(grad, shape, axis, keepdims):
    """Broadcast a reduced gradient (a Tensor) back to the input's shape."""
    if axis is not None and not keepdims:
        axes = (axis,) if isinstance(axis, int) else axis
        axes = {ax % len(shape) for ax in axes}
        grad = reshape(grad, tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return broadcast_to(grad, shape)


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
    """Maximum over axes; ties share the gradient equally. The share of each
    element (``mask``) is piecewise constant, so it is a constant here."""

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
        out = logsumexp_array(a, axis=axis, keepdims=keepdims)
        self.save_for_backward(a, out)
        return out

    def backward(self, grad):
        a, out = self.saved_tensors
        softmax = exp(a - _expand(out, a.shape, self.axis, self.keepdims))
        return _expand(grad, a.shape, self.axis, self.keepdims) * softmax


class BroadcastTo(Function):
    """a stretched to ``shape`` (NumPy's ``broadcast_to``, a view). Its gradient
    is the upstream one summed back down, which the engine does for every input."""

    array_checks_shapes = True

    def forward(self, a, shape):
        return backend.xp().broadcast_to(a, shape)

    def backward(self, grad):
        return grad


# ------------------------------------------------------------- shape and moves


class Reshape(Function):
    array_checks_shapes = True

    def forward(self, a, shape):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, grad):
        return reshape(grad, self.shape)


class Permute(Function):
    """Permute axes (reverse them when ``axes`` is None); backward permutes back."""

    def forward(self, a, axes=None):
        axes = tuple(reversed(range(a.ndim))) if axes is None else tuple(axes)
        axes = tuple(ax + a.ndim if ax < 0 else ax for ax in axes)  # the inverse needs -1 as ndim-1
        self.inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        return a.transpose(axes)

    def backward(self, grad):
        return permute(grad, self.inverse)


class GetItem(Function):
    """a[index]; its gradient scatters back into zeros (``ScatterAdd``)."""

    def forward(self, a, index):
        self.shape, self.index = a.shape, index
        return a[index]

    def backward(self, grad):
        return ScatterAdd.apply(grad, shape=self.shape, index=self.index)


class ScatterAdd(Function):
    """zeros(shape) with ``grad`` added at ``index``: the adjoint of a[index].
    Repeated integer indices add up (``add.at``); its own adjoint is GetItem."""

    def forward(self, grad, shape, index):
        xp = backend.xp()
        self.index = index
        out = xp.zeros(shape, dtype=grad.dtype)
        if _has_array(index):
            xp.add.at(out, index, grad)
        else:
            out[index] = grad
        return out

    def backward(self, grad):
        return getitem(grad, self.index)


def _has_array(index):
    parts = index if isinstance(index, tuple) else (index,)
    return builtins.any(hasattr(p, "shape") or isinstance(p, list) for p in parts)


class Concatenate(Function):
    array_checks_shapes = True

    def forward(self, *arrays, axis=0):
        self.axis = axis % arrays[0].ndim
        self.bounds = _cumulative([a.shape[axis] for a in arrays])
        return backend.xp().concatenate(arrays, axis=axis)

    def backward(self, grad):
        lead = (slice(None),) * self.axis
        return tuple(getitem(grad, lead + (slice(lo, hi),)) for lo, hi in self.bounds)


class Stack(Function):
    array_checks_shapes = True

    def forward(self, *arrays, axis=0):
        self.axis, self.count = axis % (arrays[0].ndim + 1), len(arrays)
        return backend.xp().stack(arrays, axis=axis)

    def backward(self, grad):
        lead = (slice(None),) * self.axis
        return tuple(getitem(grad, lead + (i,)) for i in range(self.count))


def _cumulative(sizes):
    bounds, start = [], 0
    for n in sizes:
        bounds.append((start, start + n))
        start += n
    return bounds


# --------------------------------------------------------- elementwise functions


class Exp(Function):
    def forward(self, a):
        out = backend.xp().exp(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors
        return grad * out


class Log(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return backend.xp().log(a)

    def backward(self, grad):
        (a,) = self.saved_tensors
        return grad / a


class Sqrt(Function):
    def forward(self, a):
        out = backend.xp().sqrt(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors
        return grad / (out * 2)


class Tanh(Function):
    def forward(self, a):
        out = backend.xp().tanh(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors
        return grad * (1 - out * out)


class Sigmoid(Function):
    def forward(self, a):
        out = sigmoid_array(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved_tensors
        return grad * out * (1 - out)


class Scale(Function):
    """grad * factor for a constant array ``factor``: the backward of the
    piecewise-linear functions (ReLU, LeakyReLU, Clip), whose derivative is
    constant where it exists. Linear in its input, so its own backward is
    itself. The product is made in the factor's own buffer (a temporary of
    the caller), one activation-sized allocation less per layer."""

    def forward(self, grad, factor):
        if is_grad_enabled():  # a graph of this product is being built: keep the factor
            self.factor = factor
            return factor * grad
        factor *= grad
        return factor

    def backward(self, grad):
        return Scale.apply(grad, factor=self.factor.copy())  # a copy: the product overwrites it


class ReLU(Function):
    def forward(self, a):
        out = backend.xp().maximum(a, 0)
        self.out = out
        return out

    def backward(self, grad):
        return Scale.apply(grad, factor=(self.out > 0).astype(grad.dtype))


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
        # 1 where a > 0, else the slope, as arithmetic: ``where`` on a sign
        # pattern that changes at random mispredicts branches, 5-10x slower.
        s = self.negative_slope
        factor = (self.sign_of > 0) * (1 - s)
        factor += s
        return Scale.apply(grad, factor=factor)


class Softplus(Function):
    """log(1 + exp(a)) (``softplus_array``); its derivative is sigmoid(a)."""

    def forward(self, a):
        self.save_for_backward(a)
        return softplus_array(a)

    def backward(self, grad):
        (a,) = self.saved_tensors
        return grad * sigmoid(a)


class LogSigmoid(Function):
    """log(sigmoid(a)) = -softplus(-a); its derivative is sigmoid(-a)."""

    def forward(self, a):
        self.save_for_backward(a)
        return -softplus_array(-a)

    def backward(self, grad):
        (a,) = self.saved_tensors
        return grad * sigmoid(-a)


class Clip(Function):
    """Clip to [low, high]; the gradient passes where low <= a <= high."""

    def forward(self, a, low=None, high=None):
        # Bounds in a's dtype: an np.float64 bound would turn float32 into float64.
        low = None if low is None else a.dtype.type(low)
        high = None if high is None else a.dtype.type(high)
        self.inside = backend.xp().ones(a.shape, dtype=a.dtype)
        if low is not None:
            self.inside *= a >= low
        if high is not None:
            self.inside *= a <= high
        return backend.xp().clip(a, low, high)

    def backward(self, grad):
        return Scale.apply(grad, factor=self.inside.copy())


class Where(Function):
    """cond ? a : b, with ``cond`` a boolean array (a parameter, not differentiated)."""

    array_checks_shapes = True

    def forward(self, a, b, *, cond):
        self.cond = cond
        return backend.xp().where(cond, a, b)

    def backward(self, grad):
        ga = where(self.cond, grad, 0) if self.needs_input_grad[0] else None
        gb = where(self.cond, 0, grad) if self.needs_input_grad[1] else None
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


def broadcast_to(a, shape):
    """``a`` stretched to ``shape`` by NumPy's broadcasting rules (a view)."""
    return BroadcastTo.apply(a, shape=tuple(shape))


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
