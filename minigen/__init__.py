"""minigen: a small deep-learning library that teaches generative models.

The pieces, in the order a learner meets them:

- ``minigen.backend``: where arrays live (NumPy, CuPy, or the strict stand-in).
- ``minigen.autograd``: Tensor and reverse-mode differentiation.
- ``minigen.ops``: the differentiable operations.
- ``minigen.gradcheck``: finite-difference checks of any gradient (and of
  second derivatives, ``gradgradcheck``).
- ``minigen.grad``: gradients as Tensors, differentiable again with
  ``create_graph=True`` (gradient penalties).
- ``minigen.nn``, ``minigen.optim``: layers, losses, optimisers.
- ``minigen.models``, ``minigen.train``: the reference generative models, and
  the loop that trains them (``python -m minigen``).
- ``minigen.distributed``: the same training on N processes under ``mpiexec``,
  each with 1/N of every batch (data parallelism).

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
array op (exp, sum, where)  minigen/ops.py; a Tensor method if a learner expects
                            one; ``array_checks_shapes = True`` if NumPy checks
                            its shapes
array formula shared by     minigen/ops.py, ``*_array`` on raw arrays
several ops (softplus...)   (``softplus_array``, ``logsumexp_array``), used by all;
                            forward code only (a backward uses Tensor ops)
layer op with weights       nn/layers.py (linear, batch_norm), nn/conv.py (conv2d);
                            the Module that holds the weights next to it, checking
                            its input once, through the functional form
loss                        nn/losses.py, with ``reduction`` "mean"/"sum"/"none"
initialiser                 nn/init.py, on arrays (a per-layer recipe lives with
                            the model that uses it)
a generative model          minigen/models/NAME.py, a ``GenerativeModel``
                            (models/base.py has the contract), one line in
                            ``MODELS`` (models/__init__.py); tests/test_models.py
                            and the command line then cover it
a model option              an ``Option(type, default, allowed, help)`` class
                            attribute of the model (models/options.py): checked,
                            saved, and a flag of ``train MODEL``
what a model does on        its hooks (models/base.py): ``on_resume`` (drop what
resume, an extra part       training makes stale), ``parts`` with ``Part`` and
(a prior) with a command    ``fit_part`` (each part gets a command of its name)
a network piece several     models/blocks.py (the 28 -> 7 stem), sized from
models share                ``data.IMAGE_SHAPE``
what one step of training   the model's ``train_step``; the loop around it
is; the loop around it      (epochs, budget, NaN check) is minigen/loop.py, once
a metric                    minigen/metrics.py: a function of a model (or arrays)
                            and images, tested on a case with a known answer
                            in tests/test_metrics.py
a command-line command      minigen/__main__.py: ``add_NAME`` (its parser) and
                            ``run_NAME``; it asks the models, never names one
a lesson                    lessons/NN_name.py, starting with ``setup`` from
                            lessons/_setup.py (options, backend, data; the
                            ours-against-the-library checks); a --quick run in
                            seconds, run by tests/test_lessons.py
==========================  ====================================================

Who may import whom: a module imports only what its row allows
(tests/test_imports.py checks every import against this table, and that
there is one circle, on purpose: autograd imports ops at its bottom for the
Tensor methods, ops builds Tensors):

==========================  ====================================================
module                      may import
==========================  ====================================================
errors, progress,           nothing of minigen
models.options, argtypes
backend, backend.strict     backend.strict, errors (and NumPy/CuPy: all array
                            code goes through it)
autograd, ops               backend, errors, autograd, ops
gradcheck                   backend, autograd, ops
nn.module, nn.init          backend, errors, autograd
nn.layers, nn.conv,         backend, autograd, ops, nn.module, nn.init
nn.losses
nn, nn.functional           nn.*
optim, checkpoint, plots    backend, errors, autograd
data, data.*                backend, errors, autograd, data.*
loop                        errors, progress
distributed                 backend, errors (and mpi4py, only under mpiexec)
classifier                  backend, nn, nn.*
models, models.*            backend, autograd, ops, nn, nn.*, optim, data,
                            data.*, loop, models.*
metrics                     backend, autograd, ops, nn.*, data.*, classifier,
                            models.*
train                       backend, checkpoint, data, distributed, loop, models,
                            models.*
__main__                    backend, errors, argtypes, checkpoint, data,
                            distributed, models, plots, train
minigen                     backend, autograd, ops, gradcheck
==========================  ====================================================
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
