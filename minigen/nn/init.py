"""Weight initialisers, in place, drawn through minigen's backend RNG.

Each function fills an array (a backend array, or a Parameter/Tensor's
``.data``) in place and returns what it was given. It sees only the shape
and dtype, never the layer the weight belongs to: a recipe that treats
layers differently (the DCGAN one, in minigen/models/gan.py) walks the
modules itself and calls these. Values are drawn in the array's own dtype
(float32 for training), never through a float64 detour.

PyTorch's default for Linear and Conv layers, ``kaiming_uniform_`` with
a = sqrt(5), comes down to U(-1/sqrt(fan_in), 1/sqrt(fan_in)); biases use the
same bound (``default_layer_init_``).
"""

import math

from minigen import backend
from minigen.autograd import Tensor


def _array(tensor):
    return tensor.data if isinstance(tensor, Tensor) else tensor


def _fill(tensor, values):
    _array(tensor)[...] = values.astype(tensor.dtype, copy=False)
    return tensor


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with samples of N(mean, std^2)."""
    z = backend.randn(*tensor.shape, dtype=tensor.dtype)
    return _fill(tensor, z * std + mean)


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with samples of U(a, b)."""
    return _fill(tensor, backend.uniform(a, b, tensor.shape, dtype=tensor.dtype.type))


def zeros_(tensor):
    """Fill with 0."""
    _array(tensor)[...] = 0
    return tensor


def ones_(tensor):
    """Fill with 1."""
    _array(tensor)[...] = 1
    return tensor


def fan_in(shape):
    """Inputs feeding one output unit, as PyTorch counts them: shape[1] times the
    kernel size. (For ConvTranspose2d's (in, out, kh, kw) weight that is
    out * kh * kw, PyTorch's convention, kept so initial scales match.)"""
    if len(shape) < 2:
        raise ValueError(f"fan_in needs a weight of at least 2 dimensions, got shape {shape}")
    return shape[1] * math.prod(shape[2:])


def kaiming_uniform_(tensor, a=5**0.5):
    """U(-bound, bound) with bound = sqrt(6 / ((1 + a^2) fan_in)); a = sqrt(5),
    PyTorch's default for layers, gives bound = 1 / sqrt(fan_in)."""
    bound = math.sqrt(6.0 / ((1 + a * a) * fan_in(tensor.shape)))
    return uniform_(tensor, -bound, bound)


def default_layer_init_(weight, bias=None):
    """PyTorch's default for a weight (out/in, in/out, *kernel) and its bias:
    Kaiming-uniform weight, bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    kaiming_uniform_(weight)
    if bias is not None:
        bound = 1 / math.sqrt(fan_in(weight.shape))
        uniform_(bias, -bound, bound)
