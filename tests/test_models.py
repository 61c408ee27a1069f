"""The reference models: shapes, dtypes, gradients of their special parts,
and checkpoint -> resume giving bit-identical parameters."""

import numpy as np
import pytest

import minigen as mg
from minigen import Tensor, backend, models, nn, train
from minigen.checkpoint import CheckpointError
from minigen.models.gan import dcgan_init_
from minigen.models.vqvae import VectorQuantizer


def to_float64(module):
    """Cast a module's parameters and buffers to float64, for gradient checks."""
    for p in module.parameters():
        p.data = p.data.astype("float64")
    for m in module.modules():
        for name in m.__dict__.get("_buffer_names", ()):
            value = getattr(m, name)
            if value is not None and value.dtype.kind == "f":
                setattr(m, name, value.astype("float64"))
    return module


def batch(model, n, seed=0):
    x = np.random.default_rng(seed).random((n, 1, 28, 28), dtype=np.float32)
    x = backend.from_numpy(x * 2 - 1 if model.scale == "symmetric" else x)
    return x


# WGAN-GP updates its generator after every n_critic-th step only: with 1, every step
ONE_STEP_UPDATES_ALL = {"wgan-gp": {"n_critic": 1}}


@pytest.mark.parametrize("name", list(models.MODELS))
def test_train_step_is_finite_and_float32(name):
    mg.manual_seed(0)
    model = models.build(name, **ONE_STEP_UPDATES_ALL.get(name, {}))
    optimizers = model.make_optimizers()
    before = [backend.to_numpy(p.data).copy() for p in model.parameters()]
    losses = model.train_step(batch(model, 16), optimizers)
    assert all(np.isfinite(v) for v in losses.values()), losses
    for p in model.parameters():
        assert p.dtype == np.float32, p.shape
        assert p.grad is None or p.grad.dtype == np.float32
    changed = sum(
        not np.array_equal(backend.to_numpy(p.data), old)
        for p, old in zip(model.parameters(), before)
    )
    assert changed >= len(before) - 1  # every network was updated


@pytest.mark.parametrize("name", list(models.MODELS))
def test_samples_have_image_shape_and_range(name):
    model = models.build(name).eval()
    with mg.no_grad():
        x = model.sample(5)
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32
    assert float(abs(x.data).max()) <= 1.0


def test_vq_losses_match_finite_differences():
    """The codebook loss trains only the codes, the commitment loss only the
    encoder output (the other side is detached), so each is checked against
    finite differences in the input it trains."""
    mg.manual_seed(1)
    vq = to_float64(VectorQuantizer(num_codes=6, code_dim=3))
    z_data = np.random.default_rng(0).standard_normal((2, 3, 2, 2)) * 0.05
    z_const = mg.tensor(z_data)
    assert mg.gradcheck(lambda codebook: vq(z_const)[1], vq.codebook) < 1e-5
    z = mg.tensor(z_data, requires_grad=True)
    assert mg.gradcheck(lambda z: vq(z)[2], z) < 1e-5


def test_vq_straight_through_copies_the_gradient_to_the_encoder():
    vq = to_float64(VectorQuantizer(num_codes=5, code_dim=4))
    z = mg.tensor(np.random.default_rng(1).standard_normal((2, 4, 3, 3)), requires_grad=True)
    upstream = np.random.default_rng(2).standard_normal((2, 4, 3, 3))
    z_q, _, _, indices = vq(z)
    z_q.backward(backend.from_numpy(upstream))
    np.testing.assert_allclose(backend.to_numpy(z.grad), upstream)  # identity to z_e
    assert vq.codebook.grad is None  # codes learn only from their own loss
    codes = backend.to_numpy(vq.codebook.data)[backend.to_numpy(indices)]  # (2, 3, 3, 4)
    np.testing.assert_allclose(backend.to_numpy(z_q.data), codes.transpose(0, 3, 1, 2))


def test_dcgan_init():
    net = nn.Sequential(
        nn.Linear(64, 512),
        nn.BatchNorm1d(512),
        nn.Conv2d(64, 128, 4),
        nn.ConvTranspose2d(64, 32, 4),
    )
    assert dcgan_init_(net) is net
    for layer in (net[0], net[2], net[3]):
        w = backend.to_numpy(layer.weight.data)
        assert w.dtype == np.float32
        assert abs(w.mean()) < 0.002 and abs(w.std() - 0.02) < 0.002
        np.testing.assert_array_equal(backend.to_numpy(layer.bias.data), 0)
    g = backend.to_numpy(net[1].weight.data)
    assert abs(g.mean() - 1) < 0.005 and abs(g.std() - 0.02) < 0.005
    np.testing.assert_array_equal(backend.to_numpy(net[1].bias.data), 0)


def test_vq_restart_moves_dead_codes_onto_encoder_outputs():
    vq = VectorQuantizer(num_codes=8, code_dim=2, restart_dead=True)
    z = mg.tensor(backend.from_numpy(np.full((1, 2, 2, 2), 5.0, dtype=np.float32)))
    _, _, _, indices = vq(z)
    restarted = vq.restart_dead_codes(indices, z)
    assert restarted == 7
    codebook = backend.to_numpy(vq.codebook.data)
    assert (np.all(codebook == 5.0, axis=1)).sum() == 7


def test_vaegan_feature_loss_gradient():
    mg.manual_seed(2)
    model = to_float64(models.build("vae-gan"))
    rng = np.random.default_rng(3)
    x = mg.tensor(rng.uniform(-1, 1, (2, 1, 28, 28)))
    x_rec = mg.tensor(rng.uniform(-1, 1, (2, 1, 28, 28)), requires_grad=True)
    # Spot-check a direction: the full finite-difference check of 1,568 inputs
    # costs too much; a directional derivative checks the same chain rule.
    direction = rng.standard_normal(x_rec.shape)
    loss = model.feature_loss(x, x_rec)
    loss.backward()
    analytic = float((backend.to_numpy(x_rec.grad) * direction).sum())
    h = 1e-6
    plus = model.feature_loss(x, mg.tensor(backend.to_numpy(x_rec.data) + h * direction)).item()
    minus = model.feature_loss(x, mg.tensor(backend.to_numpy(x_rec.data) - h * direction)).item()
    numeric = (plus - minus) / (2 * h)
    assert abs(analytic - numeric) <= 1e-6 * max(1.0, abs(numeric))
    assert abs(numeric) > 1e-3  # the check has something to compare


@pytest.mark.parametrize("name", ["mlp-vae", "dcgan", "vq-vae"])
def test_resume_is_bit_identical(name, tmp_path):
    images = (np.random.default_rng(0).random((256, 28, 28)) * 255).astype(np.uint8)
    options = {"restart_dead": True} if name == "vq-vae" else {}
    full, _, _ = train.train(name, 2, images=images, seed=5, quiet=True, **options)
    train.train(name, 1, images=images, seed=5, out=tmp_path, quiet=True, **options)
    resumed, _, history = train.train(
        name, 2, images=images, resume=tmp_path / "checkpoint.npz", quiet=True
    )
    for (key, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b), err_msg=key)
    assert len(next(iter(history.values()))) == 2 * (256 // models.MODELS[name][0].batch_size)


def test_checkpoint_of_the_wrong_model_is_refused(tmp_path):
    images = np.zeros((128, 28, 28), dtype=np.uint8)
    train.train("mlp-vae", 1, images=images, out=tmp_path, quiet=True)
    with pytest.raises(CheckpointError, match="mlp-vae.*not 'dcgan'"):
        train.load(tmp_path / "checkpoint.npz", name="dcgan")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="junk.npz"):
        train.load(tmp_path / "junk.npz")


def test_unknown_model_names_the_choices():
    with pytest.raises(ValueError, match="unknown model 'gan'.*mlp-gan"):
        models.build("gan")


def test_generator_average_follows_the_generator():
    mg.manual_seed(4)
    model = models.build("mlp-gan", ema=0.9)
    optimizers = model.make_optimizers()
    start = [backend.to_numpy(p.data).copy() for p in model.generator_ema.parameters()]
    model.train_step(batch(model, 16), optimizers)
    for average, p, old in zip(
        model.generator_ema.parameters(), model.generator.parameters(), start
    ):
        want = np.float32(0.9) * old + np.float32(0.1) * backend.to_numpy(p.data)
        np.testing.assert_allclose(backend.to_numpy(average.data), want, rtol=1e-6, atol=1e-7)
    model.eval()
    mg.manual_seed(5)
    a = model.sample(2).data
    mg.manual_seed(5)
    b = model.generator_ema(backend.randn(2, 64)).data
    np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))


@pytest.mark.parametrize("name", list(models.MODELS))
def test_every_model_states_the_contract(name):
    model = models.build(name)
    assert isinstance(model, models.GenerativeModel)
    assert model.name == name and model.scale in ("unit", "symmetric")
    reference_batch = {"mlp-vae": 128, "conv-vae": 128, "vq-vae": 128}  # the others: 64
    assert model.batch_size == reference_batch.get(name, 64)
    again = models.build(model.name, **model.options)
    assert [tuple(p.shape) for p in again.parameters()] == [
        tuple(p.shape) for p in model.parameters()
    ]
    images = models.sample_images(model, 3)
    assert images.shape == (3, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert all(m.training for m in model.modules())  # sampling left the modes alone


def test_vqvae_samples_decode_random_code_grids():
    model = models.build("vq-vae").eval()
    assert model.grid_size == (7, 7)
    mg.manual_seed(3)
    a = model.sample(2).data
    mg.manual_seed(3)
    grid = backend.rng().integers(0, 64, size=(2, 7, 7))
    b = model.decode_indices(backend.from_numpy(grid)).data
    np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))


def test_vae_reconstructs_from_the_posterior_mean():
    mg.manual_seed(6)
    model = models.build("mlp-vae")
    x = batch(model, 3)
    logits = model.reconstruction_logits(x).data
    want = model.decoder(model.encoder(x)[0]).data
    np.testing.assert_array_equal(backend.to_numpy(logits), backend.to_numpy(want))
    np.testing.assert_allclose(
        backend.to_numpy(model.reconstruct(x).data),
        1 / (1 + np.exp(-backend.to_numpy(want))),
        rtol=1e-5,
    )
    terms = model.losses(x)
    assert set(terms) == {"loss", "rec", "kl"}
    assert terms["loss"].item() == pytest.approx(terms["rec"].item() + terms["kl"].item(), rel=1e-6)


def test_a_model_built_directly_trains_saves_and_loads(tmp_path):
    images = (np.random.default_rng(0).random((64, 28, 28)) * 255).astype(np.uint8)
    model = models.GAN(kind="dcgan", lr=1e-4)
    assert model.name == "dcgan" and model.options["lr"] == 1e-4
    trained, _, history = train.train(model, 1, images=images, out=tmp_path, quiet=True)
    assert trained is model and len(history["d_loss"]) == 1
    loaded, optimizers, meta = train.load(tmp_path / "checkpoint.npz")
    assert meta["model"] == "dcgan" and loaded.options["lr"] == 1e-4
    assert optimizers["g"].lr == 1e-4
    for (key, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b), err_msg=key)


def test_build_refuses_options_that_change_the_model():
    with pytest.raises(ValueError, match="'dcgan' has kind='dcgan', got kind='mlp'"):
        models.build("dcgan", kind="mlp")


def test_vaegan_reconstruction_logits_are_twice_the_pre_tanh_output():
    """In [0, 1] the VAE-GAN's reconstruction (tanh(a) + 1) / 2 is sigmoid(2a), so the logits
    metrics.reconstruction_bce reads are 2a, from the encoder's view of x * 2 - 1."""
    mg.manual_seed(7)
    model = models.build("vae-gan")
    model.eval()
    x = Tensor(
        backend.from_numpy(np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32))
    )
    via_logits = backend.to_numpy(model.reconstruction_logits(x).sigmoid().data)
    via_tanh = (backend.to_numpy(model.reconstruct(x * 2 - 1).data) + 1) / 2
    np.testing.assert_allclose(via_logits, via_tanh, atol=1e-6)
