"""WGAN-GP and the gradient penalties: exact values on critics whose input
gradient is known, parameter gradients against finite differences, the
critic / generator schedule, and training with bit-identical resume."""

import numpy as np
import pytest

import minigen as mg
from minigen import Tensor, backend, models, nn, train
from minigen.models.wgan import Critic, gradient_penalty, r1_penalty


def t(array, requires_grad=False):
    return Tensor(backend.from_numpy(np.asarray(array)), requires_grad=requires_grad)


def host(x):
    return backend.to_numpy(x.data if isinstance(x, Tensor) else x)


def linear_critic(w):
    """D(x) = <w, x> + 0.5 over each flattened sample: its input gradient is w everywhere."""
    return lambda x: x.reshape(x.shape[0], -1) @ w.reshape(-1, 1) + 0.5


def float64(module):
    for p in module.parameters():
        p.data = p.data.astype("float64")
    return module


def tiny_critic():
    """A small float64 critic with a kink (LeakyReLU) and a convolution, for gradchecks."""
    mg.manual_seed(3)
    return float64(
        nn.Sequential(
            nn.Conv2d(1, 2, 2),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * 2 * 2, 1),
        )
    )


RNG = np.random.default_rng(0)
REAL, FAKE = RNG.uniform(-1, 1, (2, 4, 1, 3, 3))  # two batches of 4 images 1x3x3


@pytest.mark.parametrize("shape", [(5, 2), (3, 1, 2, 2)])  # 2-D points, images
def test_penalties_of_a_linear_critic_are_exact(shape):
    rng = np.random.default_rng(1)
    w = rng.standard_normal(int(np.prod(shape[1:])))
    real, fake = t(rng.standard_normal(shape)), t(rng.standard_normal(shape))
    critic = linear_critic(t(w))
    norm = np.linalg.norm(w)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((norm - 1) ** 2, rel=1e-12)
    assert r1_penalty(critic, real).item() == pytest.approx(norm**2, rel=1e-12)


def test_the_penalty_is_taken_at_the_interpolates_with_per_sample_norms():
    # D(x) = 1/2 ||x||^2 has input gradient x: the penalty reads xhat itself.
    critic = lambda x: (x * x).sum() * 0.5  # noqa: E731
    eps = RNG.random((4, 1, 1, 1))
    xhat = eps * REAL + (1 - eps) * FAKE
    want = np.mean((np.linalg.norm(xhat.reshape(4, -1), axis=1) - 1) ** 2)
    got = gradient_penalty(critic, t(REAL), t(FAKE), eps=t(eps)).item()
    assert got == pytest.approx(want, rel=1e-12)
    # without eps: one U[0, 1) per sample from minigen's generator, in the data's dtype
    mg.manual_seed(7)
    drawn = gradient_penalty(critic, t(REAL), t(FAKE)).item()
    mg.manual_seed(7)
    eps = host(backend.rand(4, 1, 1, 1, dtype=np.float64))
    xhat = eps * REAL + (1 - eps) * FAKE
    assert drawn == np.mean((np.linalg.norm(xhat.reshape(4, -1), axis=1) - 1) ** 2)
    real32 = t(REAL.astype(np.float32))
    assert gradient_penalty(critic, real32, real32).dtype == np.float32


def test_real_and_fake_are_constants_of_the_penalty():
    z = t(FAKE, requires_grad=True)
    fake = z * 2.0  # a fake with a graph back to "the generator's input" z
    critic = tiny_critic()
    gradient_penalty(critic, t(REAL), fake).backward()
    assert z.grad is None  # the penalty trains the critic only
    # its weights; the input gradient of this critic does not depend on its biases
    assert critic[0].weight.grad is not None and critic[3].weight.grad is not None


def test_penalty_gradients_match_finite_differences():
    critic = tiny_critic()
    eps = t(RNG.random((4, 1, 1, 1)))
    real, fake = t(REAL), t(FAKE)
    params = critic.parameters()
    assert mg.gradcheck(lambda *_: gradient_penalty(critic, real, fake, eps), *params) < 1e-5
    assert mg.gradcheck(lambda *_: r1_penalty(critic, real), *params) < 1e-5


def test_the_critic_is_the_dcgan_discriminator_without_batchnorm():
    critic = Critic()
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in critic.modules())
    shapes = [tuple(p.shape) for p in critic.parameters()]
    assert shapes == [(64, 1, 4, 4), (64,), (128, 64, 4, 4), (128,), (1, 6272), (1,)]
    assert critic(backend.zeros((3, 1, 28, 28))).shape == (3, 1)


def test_critic_losses_add_up():
    mg.manual_seed(1)
    model = models.build("wgan-gp", gp_weight=3.0)
    real = backend.from_numpy(RNG.uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32))
    fake = model.sample(4).detach()
    eps = backend.rand(4, 1, 1, 1)
    losses = model.critic_losses(real, fake, eps)
    w = model.critic(real).mean().item() - model.critic(fake).mean().item()
    assert losses["wasserstein"].item() == pytest.approx(w, rel=1e-5)
    gp = gradient_penalty(model.critic, real, fake, eps).item()
    assert losses["penalty"].item() == pytest.approx(gp, rel=1e-6)
    assert losses["loss"].item() == pytest.approx(-w + 3.0 * gp, rel=1e-5)
    z = backend.randn(4, 64)
    want = -model.critic(model.generator(z)).mean().item()
    assert model.generator_loss(z).item() == pytest.approx(want, rel=1e-5)


def test_the_generator_moves_after_every_n_critic_th_critic_step():
    mg.manual_seed(2)
    model = models.build("wgan-gp", n_critic=3)
    optimizers = model.make_optimizers()
    x = backend.from_numpy(RNG.uniform(-1, 1, (8, 1, 28, 28)).astype(np.float32))

    def weights(net):
        return [host(p).copy() for p in net.parameters()]

    moved = []
    for step in range(1, 7):
        g_before, c_before = weights(model.generator), weights(model.critic)
        losses = model.train_step(x, optimizers)
        assert set(losses) == {"critic", "wasserstein", "penalty"}
        assert int(host(model.critic_steps)) == step
        changed = lambda net, old: any(  # noqa: E731
            not np.array_equal(a, b) for a, b in zip(weights(net), old)
        )
        assert changed(model.critic, c_before)
        moved.append(changed(model.generator, g_before))
    assert moved == [False, False, True, False, False, True]
    assert int(host(model.state_dict()["critic_steps"])) == 6  # a checkpoint keeps it


def test_trains_samples_and_resumes_bit_identically(tmp_path):
    """2 steps an epoch, a generator step every 3: the third step, the first of
    epoch 2, moves G only if the resumed model still knows it took two."""
    images = (np.random.default_rng(0).random((128, 28, 28)) * 255).astype(np.uint8)
    options = dict(images=images, seed=5, quiet=True, n_critic=3)
    full, _, _ = train.train("wgan-gp", 2, **options)
    train.train("wgan-gp", 1, out=tmp_path, **options)
    ckpt = tmp_path / "checkpoint.npz"
    resumed, _, history = train.train("wgan-gp", 2, images=images, resume=ckpt, quiet=True)
    for (key, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        np.testing.assert_array_equal(host(a), host(b), err_msg=key)
    assert int(host(resumed.critic_steps)) == 4
    assert {k: len(v) for k, v in history.items()} == dict.fromkeys(
        ("critic", "wasserstein", "penalty"), 4
    )
    images = models.sample_images(resumed, 3)
    assert images.shape == (3, 1, 28, 28) and 0 <= images.min() and images.max() <= 1


def test_r1_adds_gamma_over_two_times_the_penalty_to_the_discriminator_loss():
    x = backend.from_numpy(RNG.uniform(-1, 1, (8, 1, 28, 28)).astype(np.float32))
    losses = {}
    for gamma in (0.0, 4.0):
        mg.manual_seed(3)
        model = models.build("mlp-gan", r1_gamma=gamma)
        losses[gamma] = model.train_step(x, model.make_optimizers())
    assert "r1" not in losses[0.0] and losses[4.0]["r1"] > 0
    want = losses[0.0]["d_loss"] + 2.0 * losses[4.0]["r1"]
    assert losses[4.0]["d_loss"] == pytest.approx(want, rel=1e-6)


def test_gan_checkpoints_from_before_r1_still_load(tmp_path):
    images = (np.random.default_rng(0).random((64, 28, 28)) * 255).astype(np.uint8)
    model = models.build("mlp-gan")
    del model.options["r1_gamma"]  # the options an older minigen saved
    train.train(model, 1, images=images, out=tmp_path, quiet=True)
    loaded, _, meta = train.load(tmp_path / "checkpoint.npz")
    assert "r1_gamma" not in meta["options"] and loaded.r1_gamma == 0.0
    for (key, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        np.testing.assert_array_equal(host(a), host(b), err_msg=key)
