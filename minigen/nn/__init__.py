"""Neural-network building blocks: modules, layers, losses, initialisers.

- ``Module``, ``Parameter``, ``Sequential``, ``eval_mode`` (minigen/nn/module.py):
  how a network holds and saves its weights, and how to evaluate it without
  side effects.
- Layers: ``Linear``, ``Conv2d``, ``ConvTranspose2d``, ``BatchNorm1d``,
  ``BatchNorm2d``, activations, ``Flatten``, ``Unflatten``, ``Dropout``.
- ``minigen.nn.functional``: the same operations and the losses as functions.
- ``minigen.nn.init``: initialisers; they take arrays and know no layer.

Names, weight shapes and defaults follow PyTorch's ``torch.nn``.

Map for contributors: where a new piece goes
---------------------------------------------
A differentiable operation is a ``Function`` subclass (minigen/autograd.py)
with ``forward`` (on arrays) and ``backward`` (Tensor operations on the
upstream gradient and ``saved_tensors``, so that it is twice differentiable)
side by side, plus a public function that calls ``.apply``, and a
``gradcheck`` and a ``gradgradcheck`` in float64 under tests/:

==========================  ====================================================
what                        where
==========================  ====================================================
array op (exp, sum, where)  minigen/ops.py; a Tensor method if a learner expects one
array formula shared by     minigen/ops.py, ``*_array`` on raw arrays
several ops (softplus...)   (``softplus_array``, ``logsumexp_array``), used by all;
                            forward code only (a backward uses Tensor ops)
layer op with weights       nn/layers.py (linear, batch_norm), nn/conv.py (conv2d);
                            the Module that holds the weights next to it
loss                        nn/losses.py, with ``reduction`` "mean"/"sum"/"none"
initialiser                 nn/init.py, on arrays (a per-layer recipe lives with
                            the model that uses it)
a generative model          minigen/models/, a ``GenerativeModel``
==========================  ====================================================

Who may import whom: a module imports only from rows above its own. The one
circle is on purpose: autograd imports ops at its bottom for the Tensor
methods, ops builds Tensors (tests/test_imports.py checks there is no other):

==========================  ====================================================
module                      may import
==========================  ====================================================
backend                     NumPy/CuPy only (all array code goes through it)
autograd <-> ops            backend, each other
nn.module, nn.init          backend, autograd
nn.layers, nn.conv,         backend, autograd, ops, nn.module, nn.init
nn.losses
optim, data, checkpoint     backend, autograd
models                      backend, autograd, ops, nn, optim
classifier                  backend, nn
metrics                     backend, autograd, ops, nn, data, classifier
train, CLI, plots           anything above
==========================  ====================================================
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
