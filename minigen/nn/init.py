"""Weight initialisers, in place, drawn through minigen's backend RNG.

Each function fills a Parameter (or Tensor) in place and returns it. Values
are drawn in the tensor's own dtype (float32 for training), never through a
float64 detour.

- PyTorch's default for Linear and Conv layers, ``kaiming_uniform_`` with
  a = sqrt(5), comes down to U(-1/sqrt(fan_in), 1/sqrt(fan_in)); biases use the
  same bound.
- ``dcgan_init_`` is the DCGAN recipe (Radford et al. 2016): every Linear and
  (transposed) convolution weight N(0, 0.02), biases 0; BatchNorm weight
  N(1, 0.02), bias 0.
"""

import math
import numbers

from minigen import backend


def check_sizes(owner, **sizes):
    """Every size is a positive int (or a pair of them; paddings may be 0), else a
    TypeError or ValueError naming it: Conv2d(1, 2, 2.5) must not build a kernel of 2."""
    for name, value in sizes.items():
        low = 0 if name.endswith("padding") else 1
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{owner}: {name} must be an integer, got {value!r}")
            if v < low:
                what = "a non-negative" if low == 0 else "a positive"
                raise ValueError(f"{owner}: {name} must be {what} integer, got {value!r}")


def _fill(tensor, values):
    tensor.data[...] = values.astype(tensor.dtype, copy=False)
    return tensor


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with samples of N(mean, std^2)."""
    z = backend.randn(*tensor.shape, dtype=tensor.dtype)
    return _fill(tensor, z * std + mean)


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with samples of U(a, b)."""
    return _fill(tensor, backend.uniform(a, b, tensor.shape, dtype=tensor.dtype.type))


def zeros_(tensor):
    tensor.data[...] = 0
    return tensor


def ones_(tensor):
    tensor.data[...] = 1
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
    """PyTorch's default for Linear, Conv2d and ConvTranspose2d."""
    kaiming_uniform_(weight)
    if bias is not None:
        bound = 1 / math.sqrt(fan_in(weight.shape))
        uniform_(bias, -bound, bound)


def dcgan_init_(module):
    """The DCGAN recipe on every submodule: weights N(0, 0.02), biases 0;
    BatchNorm weight N(1, 0.02), bias 0. Returns the module."""
    from minigen.nn.conv import Conv2d, ConvTranspose2d
    from minigen.nn.layers import Linear, _BatchNorm

    for m in module.modules():
        if isinstance(m, (Linear, Conv2d, ConvTranspose2d)):
            normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, _BatchNorm) and m.weight is not None:
            normal_(m.weight, 1.0, 0.02)
        else:
            continue
        if m.bias is not None:
            zeros_(m.bias)
    return module
