"""The six reference models of shared/reference-models.md, by name.

``build(name, **options)`` makes one; every model has ``train_step``,
``make_optimizers``, ``scale`` (pixel range its data needs), ``batch_size``,
and ``name``/``options`` so a checkpoint can rebuild it.
"""

from minigen import backend
from minigen.autograd import no_grad
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


def sample_images(model, n):
    """n samples of ``model`` as a host float32 array (n, 1, 28, 28) in [0, 1].

    Drawn in eval mode (BatchNorm uses its running statistics) without a
    graph; the model's training mode is restored afterwards. A VQ-VAE has no
    prior of its own, so its "samples" decode uniformly random code grids.
    """
    was_training = model.training
    model.eval()
    with no_grad():
        if hasattr(model, "sample"):
            x = model.sample(n).data
            if model.scale == "symmetric":
                x = (x + 1) * 0.5
        else:
            k = model.quantizer.codebook.shape[0]
            grid = backend.from_numpy(backend.rng().integers(0, k, size=(n, 7, 7)))
            x = model.decode_indices(grid).data
    model.train(was_training)
    return backend.to_numpy(x).clip(0, 1)


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
    "sample_images",
    "GAN",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "VAE",
    "ELBO",
    "VQVAE",
    "VectorQuantizer",
    "VAEGAN",
]
