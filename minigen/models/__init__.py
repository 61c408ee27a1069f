"""The six reference models of shared/reference-models.md, by name.

``build(name, **options)`` makes one; every model has ``train_step``,
``make_optimizers``, ``scale`` (pixel range its data needs), ``batch_size``,
and ``name``/``options`` so a checkpoint can rebuild it.
"""

from minigen.models.gan import GAN, DCGANDiscriminator, DCGANGenerator
from minigen.models.vae import ELBO, VAE
from minigen.models.vaegan import VAEGAN
from minigen.models.vqvae import VQVAE, VectorQuantizer

# name -> (class, fixed options, batch size)
MODELS = {
    "mlp-gan": (GAN, {"kind": "mlp"}, 64),
    "dcgan": (GAN, {"kind": "dcgan"}, 64),
    "mlp-vae": (VAE, {"kind": "mlp"}, 128),
    "conv-vae": (VAE, {"kind": "conv"}, 128),
    "vq-vae": (VQVAE, {}, 128),
    "vae-gan": (VAEGAN, {}, 64),
}


def build(name, **options):
    """A fresh model ``name`` with its reference settings, ``options`` overriding."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    cls, fixed, batch_size = MODELS[name]
    options = {**fixed, **options}
    model = cls(**options)
    model.name, model.options, model.batch_size = name, options, batch_size
    return model


__all__ = [
    "MODELS",
    "build",
    "GAN",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "VAE",
    "ELBO",
    "VQVAE",
    "VectorQuantizer",
    "VAEGAN",
]
