"""Loss functions: autograd Functions with closed-form backwards, or compositions of ops.

``reduction`` says how per-element (or per-example) losses become one number:

- ``binary_cross_entropy_with_logits`` and ``mse_loss`` follow PyTorch:
  "mean" averages over all elements, "sum" adds all of them, "none" keeps
  the elementwise losses.
- ``cross_entropy``: one loss per example (row); "mean" averages them,
  "sum" adds them, "none" returns the (N,) vector.
- ``gaussian_kl``: one KL per example (summed over its latent dimensions);
  "mean" averages over the batch (first axis), "sum" adds over everything,
  "none" returns the (N,) vector. So "mean" is the average per-example KL,
  the term a VAE adds to a per-example reconstruction loss.
"""

from minigen import backend
from minigen.autograd import Function, ShapeError, Tensor, as_tensor
from minigen.ops import logsumexp, sigmoid, softplus_array

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction, where):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{where}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(values, reduction, count):
    """Reduce elementwise values; ``count`` is what "mean" divides by."""
    if reduction == "none":
        return values
    total = values.sum()
    return total / count if reduction == "mean" else total


def _scale(grad, reduction, count):
    """The gradient that reaches each element: 1/count of it for "mean"."""
    return grad / count if reduction == "mean" else grad


def _same_shape(a, b, where):
    sa, sb = tuple(a.shape), tuple(b.shape)
    if sa != sb:
        raise ShapeError(f"{where}: input of shape {sa} and target of shape {sb} differ")


def _target(target, like):
    """A target as a Tensor in the input's floating dtype (host arrays moved)."""
    if isinstance(target, Tensor):
        if target.dtype == like.dtype:
            return target
        if target.requires_grad:
            raise TypeError(f"target dtype {target.dtype} differs from input dtype {like.dtype}")
        target = target.data
    if isinstance(target, backend.host.ndarray) or not hasattr(target, "dtype"):
        target = backend.from_numpy(backend.host.asarray(target, dtype=like.dtype))
    return Tensor(target.astype(like.dtype, copy=False))


# ----------------------------------------------------------- binary cross-entropy


class BCEWithLogits(Function):
    """l = -(t log s(z) + (1 - t) log(1 - s(z))), s = sigmoid, from logits z.

    Written as softplus(z) - z t (``ops.softplus_array``, finite for logits of
    either sign and any size). dl/dz = s(z) - t, dl/dt = -z.
    """

    def forward(self, z, t, reduction="mean"):
        self.save_for_backward(z, t)
        self.reduction, self.count = reduction, z.size
        return _reduce(softplus_array(z) - z * t, reduction, z.size)

    def backward(self, grad):
        z, t = self.saved_tensors
        g = _scale(grad, self.reduction, self.count)
        gz = (sigmoid(z) - t) * g if self.needs_input_grad[0] else None
        gt = -z * g if self.needs_input_grad[1] else None
        return gz, gt


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """Binary cross-entropy between targets in [0, 1] and sigmoid(logits), stable
    for large logits. "mean": over all elements; "sum"; "none": elementwise."""
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    logits = as_tensor(logits)
    target = _target(target, logits)
    _same_shape(logits, target, "binary_cross_entropy_with_logits")
    return BCEWithLogits.apply(logits, target, reduction=reduction)


# ----------------------------------------------------------- mean squared error


class MSE(Function):
    """l = (x - t)^2; dl/dx = 2 (x - t), dl/dt = -2 (x - t)."""

    def forward(self, x, t, reduction="mean"):
        self.save_for_backward(x, t)
        self.reduction, self.count = reduction, x.size
        diff = x - t
        return _reduce(diff * diff, reduction, x.size)

    def backward(self, grad):
        x, t = self.saved_tensors
        g = (x - t) * 2 * _scale(grad, self.reduction, self.count)
        return (g if self.needs_input_grad[0] else None), (-g if self.needs_input_grad[1] else None)


def mse_loss(input, target, reduction="mean"):  # noqa: A002 - PyTorch's name
    """Squared error (input - target)^2. "mean": over all elements; "sum"; "none"."""
    _check_reduction(reduction, "mse_loss")
    input = as_tensor(input)  # noqa: A001
    target = _target(target, input)
    _same_shape(input, target, "mse_loss")
    return MSE.apply(input, target, reduction=reduction)


# ---------------------------------------------------------------- cross-entropy


def cross_entropy(logits, labels, reduction="mean"):
    """Softmax cross-entropy of logits (N, K) against integer labels (N,) in [0, K).
    "mean": average over the N examples; "sum"; "none": (N,) per-example losses."""
    _check_reduction(reduction, "cross_entropy")
    logits = as_tensor(logits)
    labels = labels.data if isinstance(labels, Tensor) else labels
    if isinstance(labels, backend.host.ndarray) or not hasattr(labels, "dtype"):
        labels = backend.from_numpy(backend.host.asarray(labels))
    shape = tuple(logits.shape)
    if len(shape) != 2 or tuple(labels.shape) != (shape[0],):
        raise ShapeError(
            f"cross_entropy: expected logits (N, K) and labels (N,), got {shape} and "
            f"{tuple(labels.shape)}"
        )
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integers, got dtype {labels.dtype}")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= shape[1]):
        raise ValueError(
            f"cross_entropy: labels must lie in [0, {shape[1]}), got values from "
            f"{int(labels.min())} to {int(labels.max())}"
        )
    # l_n = logsumexp(z_n) - z_n[y_n]; dl_n/dz_n = softmax(z_n) - onehot(y_n) follows
    # from the two ops' own backwards (LogSumExp, GetItem).
    rows = backend.xp().arange(shape[0])
    return _reduce(logsumexp(logits, axis=1) - logits[rows, labels], reduction, shape[0])


# ------------------------------------------------------------------ Gaussian KL


class GaussianKL(Function):
    """KL(N(mu, exp(logvar)) || N(0, 1)) per element: 0.5 (mu^2 + exp(logvar) - 1 - logvar).

    d/dmu = mu, d/dlogvar = 0.5 (exp(logvar) - 1).
    """

    def forward(self, mu, logvar, reduction="mean"):
        self.save_for_backward(mu, logvar)
        self.reduction, self.n = reduction, mu.shape[0]
        kl = 0.5 * (mu * mu + backend.xp().exp(logvar) - 1 - logvar)
        if reduction == "none":
            return kl.reshape(self.n, -1).sum(axis=1)
        total = kl.sum()
        return total / self.n if reduction == "mean" else total

    def backward(self, grad):
        mu, logvar = self.saved_tensors
        if self.reduction == "mean":
            grad = grad / self.n
        elif self.reduction == "none":
            grad = grad.reshape((self.n,) + (1,) * (mu.ndim - 1))
        gmu = mu * grad if self.needs_input_grad[0] else None
        glogvar = (logvar.exp() - 1) * 0.5 * grad if self.needs_input_grad[1] else None
        return gmu, glogvar


def gaussian_kl(mu, logvar, reduction="mean"):
    """KL divergence of the diagonal Gaussian N(mu, exp(logvar)) from N(0, I).

    mu and logvar (N, ...) give one KL per example, the sum over its latent
    dimensions of 0.5 (mu^2 + exp(logvar) - 1 - logvar). "mean": average of
    those over the batch (first axis); "sum": total over the batch; "none": (N,).
    """
    _check_reduction(reduction, "gaussian_kl")
    mu, logvar = as_tensor(mu), as_tensor(logvar)
    if tuple(mu.shape) != tuple(logvar.shape) or len(mu.shape) < 1:
        raise ShapeError(
            f"gaussian_kl: mu and logvar must have the same shape (N, ...), got "
            f"{tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    return GaussianKL.apply(mu, logvar, reduction=reduction)
