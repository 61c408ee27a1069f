"""Neural-network building blocks: modules, layers, losses, initialisers.

- ``Module``, ``Parameter``, ``Sequential``, ``eval_mode`` (minigen/nn/module.py):
  how a network holds and saves its weights, and how to evaluate it without
  side effects.
- Layers: ``Linear``, ``Conv2d``, ``ConvTranspose2d``, ``BatchNorm1d``,
  ``BatchNorm2d``, activations, ``Flatten``, ``Unflatten``, ``Dropout``.
- ``minigen.nn.functional``: the same operations and the losses as functions.
- ``minigen.nn.init``: initialisers; they take arrays and know no layer.

Names, weight shapes and defaults follow PyTorch's ``torch.nn``.

Where a new op, layer or loss goes, and which module may import which: the
contributor map in the package docstring (minigen/__init__.py).
"""

from minigen.nn import functional, init
from minigen.nn.conv import Conv2d, ConvTranspose2d
from minigen.nn.layers import (
    BatchNorm1d,
    BatchNorm2d,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    ReLU,
    Sigmoid,
    Tanh,
    Unflatten,
)
from minigen.nn.module import Module, Parameter, Sequential, StateDictError, eval_mode

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "Dropout",
    "Flatten",
    "LeakyReLU",
    "Linear",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "StateDictError",
    "Tanh",
    "Unflatten",
    "functional",
    "eval_mode",
    "init",
]
