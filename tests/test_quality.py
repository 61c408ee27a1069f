"""Full training runs against the quality bar of the reference models.

Marked slow (minutes each): the default suite skips them; CI runs them once,
under the NumPy backend, when the full Fashion-MNIST is installed.
"""

import pytest

from minigen import data, metrics
from minigen.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fashion():
    train_images, _ = data.load("fashion-mnist", split="train")
    test_images, _ = data.load("fashion-mnist", split="test")
    if len(train_images) != 60000:
        pytest.skip("the full Fashion-MNIST is not installed (apt install dataset-fashion-mnist)")
    return train_images, test_images


def test_mlp_vae_reaches_the_reference_elbo(fashion):
    train_images, test_images = fashion
    model, _, _ = train("mlp-vae", 10, images=train_images, seed=0, quiet=True)
    assert metrics.negative_elbo(model, test_images) <= 245.5  # PyTorch twin: 244.1, 244.3


def test_vq_vae_restarts_keep_the_codebook_alive(fashion):
    train_images, test_images = fashion
    model, _, _ = train("vq-vae", 2, images=train_images, seed=0, quiet=True, restart_dead=True)
    _, perplexity, dead = metrics.code_usage(model, test_images)
    assert perplexity >= 32 and dead <= 4
