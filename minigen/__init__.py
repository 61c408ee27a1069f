"""minigen: a small deep-learning library that teaches generative models.

The pieces, in the order a learner meets them:

- ``minigen.backend``: where arrays live (NumPy, CuPy, or the strict stand-in).
- ``minigen.autograd``: Tensor and reverse-mode differentiation.
- ``minigen.ops``: the differentiable operations.
- ``minigen.gradcheck``: finite-difference checks of any gradient (and of
  second derivatives, ``gradgradcheck``).
- ``minigen.grad``: gradients as Tensors, differentiable again with
  ``create_graph=True`` (gradient penalties).
"""

from minigen import backend, ops
from minigen.autograd import (
    Function,
    ShapeError,
    Tensor,
    grad,
    is_grad_enabled,
    no_grad,
    to_numpy,
)
from minigen.backend import BackendError, manual_seed, use_backend
from minigen.gradcheck import GradcheckError, gradcheck, gradgradcheck
from minigen.ops import (
    add,
    broadcast_to,
    clip,
    concatenate,
    div,
    exp,
    getitem,
    leaky_relu,
    log,
    log_sigmoid,
    logsumexp,
    matmul,
    max,
    mean,
    mul,
    neg,
    permute,
    pow,
    relu,
    reshape,
    sigmoid,
    softplus,
    sqrt,
    stack,
    sub,
    sum,
    tanh,
    transpose,
    where,
)

__version__ = "0.1.0"


def tensor(data, requires_grad=False, dtype=None):
    """A Tensor on the current backend, made from Python data or a NumPy array.

    Python numbers and lists become float32; an array keeps its dtype.
    """
    return Tensor(backend.asarray(data, dtype), requires_grad=requires_grad)
