"""Dense layers, batch normalisation, activations, reshapes and dropout.

Each layer is a thin Module around a functional form (``linear``,
``batch_norm``, ...), and the two that carry most of the work, ``linear``
and ``batch_norm``, are single autograd Functions with hand-written backward
passes: one node in the graph instead of five, and no temporaries kept that
backward does not need.
"""

import math

from minigen import backend, ops
from minigen.autograd import Function, ShapeError, Tensor, is_grad_enabled
from minigen.nn import init
from minigen.nn.module import Module, Parameter, check_sizes
from minigen.ops import matmul_array

# ---------------------------------------------------------------------- linear


class LinearFunction(Function):
    """y = x W^T + b for x (..., in), W (out, in), b (out,).

    Backward, with g = dL/dy flattened to (M, out) and x to (M, in):
    dx = g W, dW = g^T x, db = sum of g over rows. Three GEMMs in all, each
    an ``ops.matmul``, so the gradients are differentiable again.
    """

    def forward(self, x, weight, bias=None):
        self.save_for_backward(x, weight)
        self.has_bias = bias is not None
        y = matmul_array(x, weight.T)
        if bias is not None:
            y += bias
        return y

    def backward(self, grad):
        x, weight = self.saved_tensors
        g2 = grad.reshape(-1, grad.shape[-1])
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            if x.ndim == 2 and x.data.strides[0] < x.data.strides[1]:
                # x is a transposed view (a flattened channels-last conv output):
                # dx = (W^T g^T)^T comes out laid out as x, so the layers below meet
                # one layout (an elementwise op across two layouts runs 4-10x slower)
                wt, gt = ops.transpose(weight, 0, 1), ops.transpose(g2, 0, 1)
                gx = ops.transpose(ops.matmul(wt, gt), 0, 1)
            else:
                gx = ops.matmul(g2, weight).reshape(x.shape)
        if self.needs_input_grad[1]:
            gw = ops.matmul(g2.T, x.reshape(-1, x.shape[-1]))
        if self.has_bias and self.needs_input_grad[2]:
            gb = g2.sum(axis=0)
        return gx, gw, gb


def linear(x, weight, bias=None):
    """x W^T + b: x (..., in), weight (out, in), bias (out,) or None."""
    if x.ndim < 1 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"linear: input of shape {tuple(x.shape)} does not fit weight of shape "
            f"{tuple(weight.shape)}; expected input (..., {weight.shape[-1]})"
        )
    if bias is None:
        return LinearFunction.apply(x, weight)
    return LinearFunction.apply(x, weight, bias)


class Linear(Module):
    """Fully connected layer: y = x W^T + b, weight (out_features, in_features).

    Initialised as PyTorch: W and b uniform in +-1/sqrt(in_features).
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(backend.zeros((out_features, in_features)))
        self.bias = Parameter(backend.zeros((out_features,))) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        try:  # checked once, by linear(); the layer adds its own description
            return linear(x, self.weight, self.bias)
        except ShapeError as e:
            raise ShapeError(
                f"{self!r}: expected input of shape (..., {self.in_features}), "
                f"got {tuple(x.shape)} ({e})"
            ) from e

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


# ----------------------------------------------------------- batch normalisation


def batch_statistics(x):
    """Per-channel mean and biased variance of x (N, C, ...) over every axis but 1,
    and x - mean. Written once for arrays (forward) and Tensors (a backward
    that builds a graph), which both have these methods."""
    axes = (0,) + tuple(range(2, x.ndim))
    mean = x.mean(axis=axes)
    centred = x - mean.reshape((1, x.shape[1]) + (1,) * (x.ndim - 2))
    return mean, (centred * centred).mean(axis=axes), centred


def inverse_std(var, eps):
    """1 / sqrt(var + eps), for arrays and Tensors alike."""
    return (var + eps) ** -0.5


class BatchNormFunction(Function):
    """y = gamma * xhat + beta, xhat = (x - mean) * invstd, invstd = 1 / sqrt(var + eps),
    per channel.

    Channels are axis 1; statistics are taken over every other axis (m values
    each). In training mode mean and var are the batch's (biased var), and
    backward is the closed form

        dx = gamma invstd / m * (m g - sum(g) - xhat * sum(g * xhat)),

    dgamma = sum(g * xhat), dbeta = sum(g). In eval mode mean and var are the
    running estimates, constants, so dx = gamma * g * invstd.
    The running estimates are updated here (training only):
    r <- (1 - momentum) r + momentum * batch value, with the unbiased variance.

    Backward needs mean and invstd. In training mode they are functions of x,
    so when backward builds a graph (create_graph) it recomputes them from x
    as Tensors (``batch_statistics``) and the second derivative sees every
    path through them; a first-order backward uses forward's two (C,)
    vectors. (Reading them as constants in a graph is the classic bug: the
    second derivative silently loses the terms through the batch statistics.)
    """

    def forward(
        self,
        x,
        weight=None,
        bias=None,
        *,
        running_mean=None,
        running_var=None,
        training=True,
        momentum=0.1,
        eps=1e-5,
        affine=(False, False),
    ):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        self.axes, self.shape, self.training, self.eps = axes, shape, training, eps
        self.m = x.size // x.shape[1]
        if training:
            mean, var, y = batch_statistics(x)  # y: centred, becomes the output in place
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean.astype(running_mean.dtype, copy=False)
            if running_var is not None:
                unbiased = var * (self.m / max(self.m - 1, 1))
                running_var *= 1 - momentum
                running_var += momentum * unbiased.astype(running_var.dtype, copy=False)
        else:
            mean = running_mean.astype(x.dtype, copy=False)
            var = running_var.astype(x.dtype, copy=False)
            y = x - mean.reshape(shape)
        invstd = inverse_std(var, eps)
        has_weight, has_bias = affine
        # Backward recomputes xhat from x (which the graph keeps anyway) and
        # these two (C,) vectors: one activation less in memory per layer.
        self.save_for_backward(x, weight if has_weight else None)
        self.mean, self.invstd = mean, invstd
        y *= (invstd * weight if has_weight else invstd).reshape(shape)  # gamma * xhat
        if has_bias:
            y += bias.reshape(shape)
        return y

    def backward(self, grad):
        axes, shape, m = self.axes, self.shape, self.m
        x, weight = self.saved_tensors
        if self.training and is_grad_enabled():
            _, var, centred = batch_statistics(x)
            invstd = inverse_std(var, self.eps)
        else:
            centred, invstd = x - self.mean.reshape(shape), Tensor(self.invstd)
        need = self.needs_input_grad + (False, False)
        gbeta = grad.sum(axis=axes)
        # sum(g * xhat) as sum(g * (x - mean)) * invstd: xhat itself is never made
        ggamma = (grad * centred).sum(axis=axes) * invstd if need[0] or need[1] else None
        gx = None
        if need[0]:
            scale = invstd if weight is None else invstd * weight
            if self.training:
                # scale (g - sum(g) / m - xhat sum(g xhat) / m), with the per-channel
                # factors gathered, so that only two activation-sized terms are made
                centred = centred * (scale * invstd * ggamma / m).reshape(shape)
                gx = grad * scale.reshape(shape) - centred - (scale * gbeta / m).reshape(shape)
            else:
                gx = grad * scale.reshape(shape)
        return (gx, ggamma if need[1] else None, gbeta if need[2] else None)


def batch_norm(
    x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5
):
    """Batch normalisation over axis 1 (channels) of x (N, C) or (N, C, ...).

    training: normalise with the batch's statistics and update running_mean /
    running_var in place (if given; momentum as PyTorch, unbiased variance).
    eval: normalise with running_mean / running_var. weight and bias (C,) may
    be None. Running statistics are backend arrays, not differentiated.
    """
    data = x.data if isinstance(x, Tensor) else x
    if data.ndim < 2:
        raise ShapeError(f"batch_norm: expected input (N, C, ...), got shape {tuple(data.shape)}")
    c = data.shape[1]
    for name, a in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if a is not None and tuple(a.shape) != (c,):
            raise ShapeError(
                f"batch_norm: {name} has shape {tuple(a.shape)}, expected ({c},) for input "
                f"of shape {tuple(data.shape)}"
            )
    if training and data.size // c <= 1:
        raise ShapeError(
            f"batch_norm: expected more than 1 value per channel when training, got input "
            f"of shape {tuple(data.shape)}"
        )
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: eval mode needs running_mean and running_var")
    inputs = [x] + [t for t in (weight, bias) if t is not None]
    if weight is None and bias is not None:
        raise ValueError("batch_norm: a bias without a weight is not supported")
    return BatchNormFunction.apply(
        *inputs,
        running_mean=running_mean,
        running_var=running_var,
        training=training,
        momentum=momentum,
        eps=eps,
        affine=(weight is not None, bias is not None),
    )


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d: parameters and buffers as PyTorch.

    weight (gamma) = 1, bias (beta) = 0; buffers running_mean = 0,
    running_var = 1, num_batches_tracked = 0.
    """

    expected_ndim = (2,)
    input_form = "(N, C)"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__()
        check_sizes(type(self).__name__, num_features=num_features)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(backend.ones((num_features,))) if affine else None
        self.bias = Parameter(backend.zeros((num_features,))) if affine else None
        self.register_buffer("running_mean", backend.zeros((num_features,)))
        self.register_buffer("running_var", backend.ones((num_features,)))
        self.register_buffer("num_batches_tracked", backend.xp().zeros((), dtype="int64"))

    def check_state(self, state):
        """A variance is >= 0 and a count too: a negative one would normalise by
        the square root of a negative number."""
        return [
            f"{name} must be >= 0 everywhere"
            for name in ("running_var", "num_batches_tracked")
            if name in state and not bool((state[name] >= 0).all())
        ]

    def forward(self, x):
        if x.ndim not in self.expected_ndim or x.shape[1] != self.num_features:
            raise ShapeError(
                f"{self!r}: expected input of shape {self.input_form} with "
                f"C = {self.num_features}, got {tuple(x.shape)}"
            )
        if self.training:
            self.num_batches_tracked += 1
        return batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            self.momentum,
            self.eps,
        )

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm for (N, C) (or (N, C, L)) inputs: statistics per feature."""

    expected_ndim = (2, 3)
    input_form = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm for images (N, C, H, W): statistics per channel over N, H, W."""

    expected_ndim = (4,)
    input_form = "(N, C, H, W)"


# ----------------------------------------------------------------- activations

relu = ops.relu
tanh = ops.tanh
sigmoid = ops.sigmoid


def leaky_relu(x, negative_slope=0.01):
    """x for x > 0, negative_slope * x otherwise."""
    return ops.leaky_relu(x, negative_slope)


class ReLU(Module):
    def forward(self, x):
        return ops.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return ops.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    def forward(self, x):
        return ops.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return ops.sigmoid(x)


# -------------------------------------------------------------------- reshapes


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...): keeps the batch axis."""

    def forward(self, x):
        if x.ndim < 1:
            raise ShapeError(f"Flatten: expected an input with a batch axis, got shape {x.shape}")
        return ops.reshape(x, (x.shape[0], -1))


class Unflatten(Module):
    """(N, prod(shape)) -> (N, *shape). ``Unflatten(1, shape)`` (PyTorch's form) works too."""

    def __init__(self, *args):
        super().__init__()
        if len(args) == 2 and args[0] == 1:
            args = args[1:]
        if len(args) != 1:
            raise TypeError("Unflatten(shape): give the shape of one example, e.g. (128, 7, 7)")
        self.shape = tuple(args[0])

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != math.prod(self.shape):
            raise ShapeError(
                f"{self!r}: expected input of shape (N, {math.prod(self.shape)}), "
                f"got {tuple(x.shape)}"
            )
        return ops.reshape(x, (x.shape[0],) + self.shape)

    def extra_repr(self):
        return f"{self.shape}"


# --------------------------------------------------------------------- dropout


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1 - p)
    (inverted dropout: the expected value is unchanged, eval needs no rescaling).
    Identity when not training or p == 0."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    data = x.data if isinstance(x, Tensor) else x
    keep = backend.rand(*data.shape, dtype=data.dtype) >= p
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    return ops.mul(x, keep.astype(data.dtype) * scale)


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
