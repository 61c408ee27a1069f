"""The seven reference models of docs/reference-models.md, by name, and the
PixelCNN prior that makes the VQ-VAE sample (minigen/models/prior.py).

``build(name, **options)`` makes one with its reference settings. Every model
is a ``GenerativeModel`` (minigen/models/base.py: name, options, batch size,
pixel scale, ``make_optimizers``, ``train_step``, ``sample``, ``reconstruct``
where it has an encoder), so ``build("dcgan")`` and ``GAN(kind="dcgan")``
train, save and sample through the same functions.

Each model declares its options once (``Option`` class attributes,
minigen/models/options.py): ``build`` checks them, ``check_options`` checks a
checkpoint's before anything is built, and ``flags(name)`` gives the command
line its flags. A new model is a class and one line in ``MODELS``.
"""

from minigen.models.base import GenerativeModel, sample_images, to_unit_range
from minigen.models.gan import GAN, DCGANDiscriminator, DCGANGenerator, dcgan_init_
from minigen.models.options import MAX_SIZE, Option, checked, declared
from minigen.models.prior import MaskedConv2d, PixelCNN, causal_mask, fit_prior
from minigen.models.vae import VAE
from minigen.models.vaegan import VAEGAN
from minigen.models.vqvae import VQVAE, VectorQuantizer
from minigen.models.wgan import WGANGP, Critic, gradient_penalty, r1_penalty

# name -> (class, the options that make it this model)
MODELS = {
    "mlp-gan": (GAN, {"kind": "mlp"}),
    "dcgan": (GAN, {"kind": "dcgan"}),
    "mlp-vae": (VAE, {"kind": "mlp"}),
    "conv-vae": (VAE, {"kind": "conv"}),
    "vq-vae": (VQVAE, {}),
    "vae-gan": (VAEGAN, {}),
    "wgan-gp": (WGANGP, {}),
}


def build(name, **options):
    """A fresh model ``name`` with its reference settings, ``options`` overriding
    the others (not the ones that make it this model, such as a GAN's ``kind``)."""
    cls, fixed = _entry(name)
    _check_fixed(name, fixed, options)
    return cls(**{**options, **fixed})


def check_options(name, options):
    """``options`` for model ``name`` (a checkpoint's, say) checked against its
    declaration without building anything: a TypeError for an unknown option, a
    ValueError for a value outside what the option allows."""
    cls, fixed = _entry(name)
    _check_fixed(name, fixed, options)
    checked(cls, {**options, **fixed})


def flags(name):
    """{name: Option} that ``build(name, ...)`` takes: the declaration of its class less
    the options that make it this model (the command line offers these as flags)."""
    cls, fixed = _entry(name)
    return {key: option for key, option in declared(cls).items() if key not in fixed}


def _entry(name):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def _check_fixed(name, fixed, options):
    for key, value in fixed.items():
        if key in options and options[key] != value:
            raise ValueError(
                f"build: {name!r} has {key}={value!r}, got {key}={options[key]!r}; "
                f"pick the model by its name instead"
            )


__all__ = [
    "MODELS",
    "build",
    "check_options",
    "flags",
    "MAX_SIZE",
    "Option",
    "declared",
    "sample_images",
    "to_unit_range",
    "GenerativeModel",
    "GAN",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "dcgan_init_",
    "VAE",
    "VQVAE",
    "VectorQuantizer",
    "VAEGAN",
    "WGANGP",
    "Critic",
    "gradient_penalty",
    "r1_penalty",
    "PixelCNN",
    "MaskedConv2d",
    "causal_mask",
    "fit_prior",
]
