"""minigen's reference models against their PyTorch twins (benchmarks/twins.py).

From identical weights, on the same 8 real images and the same noise, one
training step of each model must report the same losses in minigen and in
PyTorch (to 1e-4 relative), and so must the second step, which starts from
weights both Adam updates changed. This guards both the twins, which the
step benchmark times, and minigen's models, layers, losses and optimizer.
The benchmark's GEMM FLOP count of a step must equal PyTorch's own count
(less the products PyTorch runs on all-zero operands: steps.counting_torch_flops),
and BatchNorm layers must have counted the same number of passes.
Skipped when PyTorch is not installed (it is never a dependency of minigen).
"""

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import steps  # noqa: E402
import twins  # noqa: E402

from minigen import backend, data, models  # noqa: E402

BATCH = 8
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def images():
    return data.load("fashion-mnist", split="test")[0]


def two_batches(images, model):
    source = data.batches(images, None, BATCH, scale=model.scale, seed=1)
    return [x for _, (x, _) in zip(range(2), source)]


@pytest.mark.parametrize("name", list(models.MODELS))
def test_same_losses_and_flops_as_the_twin(images, name):
    backend.manual_seed(0)
    model = models.build(name)
    # each counter sees only its own framework's work
    with steps.counting_gemm_flops() as ours_flops, steps.counting_torch_flops() as theirs:
        twin, _, _, results = twins.agreement(model, two_batches(images, model))
    for step, (ours, theirs_losses) in enumerate(results, 1):
        assert ours.keys() == theirs_losses.keys()
        difference = twins.relative_difference(ours, theirs_losses)
        assert difference < TOLERANCE, (name, step, ours, theirs_losses)
    assert ours_flops["flops"] == theirs["flops"] > 0
    if name != "wgan-gp":  # only a gradient penalty differentiates LeakyReLU twice
        assert theirs["zero"] == 0
    # BatchNorm counts its forward passes: the same number in both
    # (running means and variances drift apart with the Adam steps, so not those)
    theirs_state = twin.state_dict()
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            assert int(backend.to_numpy(value)) == int(theirs_state[key]) > 0, key


@pytest.mark.parametrize(
    "name, options, n_steps, zero_products",
    [
        ("wgan-gp", {"n_critic": 2}, 3, True),  # step 2 updates G; step 3 sees it
        ("mlp-gan", {"r1_gamma": 10.0}, 2, True),
        ("dcgan", {"r1_gamma": 10.0}, 2, False),
    ],
)
def test_generator_steps_and_r1_agree_with_the_twin(images, name, options, n_steps, zero_products):
    """The G step of WGAN-GP and the R1 option of the GANs, against their twins.

    PyTorch's products of zeros (LeakyReLU's second derivative sent back
    through the layers below it) happen where nothing else flows on that path:
    in the penalties of BatchNorm-free networks. Through the DCGAN
    discriminator's BatchNorm the same path carries a true gradient."""
    backend.manual_seed(0)
    model = models.build(name, **options)
    source = data.batches(images, None, BATCH, scale=model.scale, seed=1)
    batches = [x for _, (x, _) in zip(range(n_steps), source)]
    with steps.counting_gemm_flops() as ours_flops, steps.counting_torch_flops() as theirs:
        twin, _, _, results = twins.agreement(model, batches)
    for step, (ours, theirs_losses) in enumerate(results, 1):
        assert ours.keys() == theirs_losses.keys()
        assert twins.relative_difference(ours, theirs_losses) < TOLERANCE, (step, ours)
    assert ours_flops["flops"] == theirs["flops"] > 0
    assert (theirs["zero"] > 0) == zero_products
    theirs_state = twin.state_dict()  # the same count of critic steps and BatchNorm passes
    for key, value in model.state_dict().items():
        if value.dtype.kind == "i":
            assert int(backend.to_numpy(value)) == int(theirs_state[key]) > 0, key


def test_a_different_twin_is_caught(images):
    # The comparison can fail: a 1% change of one twin weight shows up.
    backend.manual_seed(0)
    model = models.build("mlp-vae")
    twin = twins.twin_of(model)
    with twins.torch.no_grad():
        twin.decoder.net[2].weight.mul_(1.01)
    _, _, _, results = twins.agreement(model, two_batches(images, model)[:1], twin=twin)
    assert twins.relative_difference(*results[0]) > TOLERANCE


def test_twin_has_minigens_state_dict_names():
    for name in models.MODELS:
        model = models.build(name)
        assert list(twins.twin_of(model).state_dict()) == list(model.state_dict()), name


def test_flop_counting_leaves_minigen_as_it_was():
    with steps.counting_gemm_flops():
        pass
    assert steps.LinearFunction.forward.__qualname__ == "LinearFunction.forward"
    assert steps.VectorQuantizer.nearest.__qualname__ == "VectorQuantizer.nearest"
