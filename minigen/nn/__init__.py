"""Neural-network building blocks: modules, layers, losses, initialisers.

- ``Module``, ``Parameter``, ``Sequential`` (minigen/nn/module.py): how a
  network holds and saves its weights.
- Layers: ``Linear``, ``Conv2d``, ``ConvTranspose2d``, ``BatchNorm1d``,
  ``BatchNorm2d``, activations, ``Flatten``, ``Unflatten``, ``Dropout``.
- ``minigen.nn.functional``: the same operations and the losses as functions.
- ``minigen.nn.init``: initialisers, including the DCGAN recipe.

Names, weight shapes and defaults follow PyTorch's ``torch.nn``.
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
from minigen.nn.module import Module, Parameter, Sequential, StateDictError

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
    "init",
]
