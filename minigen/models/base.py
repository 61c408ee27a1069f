"""The model contract: what every minigen model has, so one loop trains them all.

A model is an ``nn.Module`` that also says how it is trained and used. The
training loop (minigen/train.py), checkpoints and the command line rely on
exactly this, and nothing else:

=============================  ==================================================
``name``                       registry name ("dcgan"): ``build(name, **options)``
                               makes the same model again
options                        declared once as class attributes, ``Option(type,
                               default, allowed, help)`` (minigen/models/options.py);
                               ``options`` holds their values (a checkpoint keeps
                               them), ``model.lr`` reads one
``batch_size``                 the reference batch size (docs/reference-models.md)
``scale``                      "unit" (pixels in [0, 1]) or "symmetric" ([-1, 1]):
                               the range of its data, samples and reconstructions
``make_optimizers()``          {key: Optimizer}, saved and restored by key
``train_step(x, optimizers)``  one update on a batch x; {loss name: float}
``sample(n)``                  n new images (n, 1, 28, 28), a Tensor in ``scale``
``reconstruct(x)``             x encoded and decoded, in ``scale`` (models with an
                               encoder)
=============================  ==================================================

What the training loop and the command line ask a model, so that they never
test its name (each has a default here that does nothing):

=============================  ==================================================
``on_resume(source, epoch)``   training goes on from checkpoint ``source``: drop
                               what it would make stale; returns a line to print
``parts``                      ``Part`` declarations: optional parts fitted after
                               training, each by its own command (the VQ-VAE's
                               prior: ``python -m minigen prior CKPT``)
``has_part(name)``             whether the part is there
``fit_part(name, images,       fit it on the training images; its loss per epoch
epochs, **options)``
=============================  ==================================================

The likelihood models (VAE, VQ-VAE) also have ``losses(x)``, the terms of
their training loss as scalar Tensors ("loss" is the one minimised), and
``reconstruction_logits(x)``, the Bernoulli logits that ``reconstruct``
turns into pixels (the metrics score those).

A model built directly (``GAN(kind="dcgan")``) is the same as one from
``build``: it trains, saves and samples through the same functions.
"""

from minigen import backend, nn
from minigen.models.options import checked


class Part:
    """An optional part of a model, fitted after training by its own command.

    ``python -m minigen NAME CKPT`` (NAME is ``name``) loads a checkpoint, calls
    ``model.fit_part(NAME, images, epochs, **options)`` on the training images
    and writes the model back into the checkpoint (``train.fit_part``).
    ``help``: one line for the command list; ``description``: its --help;
    ``epochs``: the default; ``options``: the names of the model options that
    size the part (they are that command's flags, not ``train``'s);
    ``losses``: what the losses per epoch measure; ``uses``: the line
    ``sample`` prints when the part is there.
    """

    def __init__(self, name, *, help, description, epochs, options=(), losses, uses):
        self.name, self.help, self.description, self.epochs = name, help, description, epochs
        self.options, self.losses, self.uses = tuple(options), losses, uses


class GenerativeModel(nn.Module):
    """Base class of the reference models; see the module docstring for the contract.

    A subclass declares its options (``Option`` class attributes) and passes
    its constructor's keyword arguments to ``super().__init__``, which checks
    them against the declaration and keeps them, defaults filled in, in
    ``options`` (an option that is None, "off", is left out). It sets
    ``name`` (a class attribute, or in ``__init__`` when it depends on the
    options), ``scale`` and ``batch_size``.
    """

    name = None
    scale = "unit"
    batch_size = 64
    parts = ()  # Part declarations

    def __init__(self, **options):
        super().__init__()
        self.options = {}
        for key, value in checked(type(self), options).items():
            if value is not None:
                self.options[key] = value

    def make_optimizers(self):
        raise NotImplementedError(f"{type(self).__name__} does not define make_optimizers()")

    def train_step(self, x, optimizers):
        raise NotImplementedError(f"{type(self).__name__} does not define train_step()")

    def sample(self, n):
        raise NotImplementedError(f"{type(self).__name__} does not define sample()")

    def on_resume(self, source, epoch):
        """Training resumes from checkpoint ``source`` (at ``epoch``): drop what it would
        make stale. Returns a line saying what was dropped, or None (here: nothing)."""
        return None

    def has_part(self, name):
        """Whether the optional part ``name`` (see ``parts``) is there: the attribute of
        that name is set."""
        return getattr(self, name, None) is not None

    def fit_part(self, name, images, epochs, *, quiet=False, **options):
        """Fit the optional part ``name`` on ``images``; its mean loss per epoch."""
        raise NotImplementedError(f"{type(self).__name__} has no part {name!r} to fit")


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
