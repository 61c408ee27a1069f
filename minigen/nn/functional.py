"""Functional forms of every layer and loss: plain functions of tensors.

A layer (``nn.Conv2d``) holds its weights and calls the function here
(``conv2d(x, weight, bias, stride, padding)``); use these directly when the
weights live elsewhere or are shared. Names and arguments follow
``torch.nn.functional``.
"""

from minigen.nn.conv import (
    col2im,
    col2im_matmul,
    conv2d,
    conv_output_size,
    conv_transpose2d,
    conv_transpose_output_size,
    im2col,
)
from minigen.nn.layers import batch_norm, dropout, leaky_relu, linear, relu, sigmoid, tanh
from minigen.nn.losses import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    gaussian_kl,
    mse_loss,
)

__all__ = [
    "batch_norm",
    "binary_cross_entropy_with_logits",
    "col2im",
    "col2im_matmul",
    "conv2d",
    "conv_output_size",
    "conv_transpose2d",
    "conv_transpose_output_size",
    "cross_entropy",
    "dropout",
    "gaussian_kl",
    "im2col",
    "leaky_relu",
    "linear",
    "mse_loss",
    "relu",
    "sigmoid",
    "tanh",
]
