"""The model contract: what every minigen model has, so one loop trains them all.

A model is an ``nn.Module`` that also says how it is trained and used. The
training loop (minigen/train.py), checkpoints and the command line rely on
exactly this, and nothing else:

=============================  ==================================================
``name``                       registry name ("dcgan"): ``build(name, **options)``
                               makes the same model again
``options``                    the constructor's arguments (a checkpoint keeps them)
``batch_size``                 the reference batch size (docs/reference-models.md)
``scale``                      "unit" (pixels in [0, 1]) or "symmetric" ([-1, 1]):
                               the range of its data, samples and reconstructions
``make_optimizers()``          {key: Optimizer}, saved and restored by key
``train_step(x, optimizers)``  one update on a batch x; {loss name: float}
``sample(n)``                  n new images (n, 1, 28, 28), a Tensor in ``scale``
``reconstruct(x)``             x encoded and decoded, in ``scale`` (models with an
                               encoder)
=============================  ==================================================

The likelihood models (VAE, VQ-VAE) also have ``losses(x)``, the terms of
their training loss as scalar Tensors ("loss" is the one minimised), and
``reconstruction_logits(x)``, the Bernoulli logits that ``reconstruct``
turns into pixels (the metrics score those).

A model built directly (``GAN(kind="dcgan")``) is the same as one from
``build``: it trains, saves and samples through the same functions.
"""

from minigen import backend, nn


class GenerativeModel(nn.Module):
    """Base class of the reference models; see the module docstring for the contract.

    A subclass passes its constructor's arguments to ``super().__init__`` (they
    become ``options``), sets ``name`` (a class attribute, or in ``__init__``
    when it depends on the options), ``scale`` and ``batch_size``.
    """

    name = None
    scale = "unit"
    batch_size = 64

    def __init__(self, **options):
        super().__init__()
        self.options = options

    def make_optimizers(self):
        raise NotImplementedError(f"{type(self).__name__} does not define make_optimizers()")

    def train_step(self, x, optimizers):
        raise NotImplementedError(f"{type(self).__name__} does not define train_step()")

    def sample(self, n):
        raise NotImplementedError(f"{type(self).__name__} does not define sample()")


def sample_images(model, n):
    """n samples of ``model`` as a host float32 array (n, 1, 28, 28) in [0, 1].

    Drawn with ``nn.eval_mode`` (BatchNorm on its running statistics, no
    graph, every module's mode restored afterwards); a "symmetric" model's
    [-1, 1] samples are mapped to [0, 1].
    """
    with nn.eval_mode(model):
        x = model.sample(n).data
    return backend.to_numpy(to_unit_range(x, model.scale)).clip(0, 1)


def to_unit_range(x, scale):
    """Images in a model's ``scale`` mapped to [0, 1]: (x + 1) / 2 for "symmetric"."""
    return (x + 1) * 0.5 if scale == "symmetric" else x
