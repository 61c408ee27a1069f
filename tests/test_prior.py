"""The PixelCNN prior over VQ-VAE code grids (minigen/models/prior.py): the masked
convolution's gradient, the autoregressive property, learning, sampling, and how
the prior rides along with a VQ-VAE (sample, state dict, options)."""

import numpy as np
import pytest

import minigen as mg
from minigen import backend, models, optim
from minigen.models.prior import MaskedConv2d, PixelCNN, causal_mask, fit_prior
from tests.helpers import t


def host(a):
    return backend.to_numpy(a.data if isinstance(a, mg.Tensor) else a)


def grids(array):
    return backend.from_numpy(np.asarray(array, dtype=np.int64))


# --------------------------------------------------------------- masked layer


def test_masks_keep_the_rows_above_and_the_taps_left_of_the_centre():
    a = host(causal_mask((3, 5), "A"))
    b = host(causal_mask((3, 5), "B"))
    np.testing.assert_array_equal(a, [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(b, [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match="odd sides"):
        causal_mask((4, 4), "A")
    with pytest.raises(ValueError, match="'A' or 'B'"):
        causal_mask((3, 3), "C")


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_matches_finite_differences_and_masked_taps_get_no_gradient(mask_type):
    layer = MaskedConv2d(2, 3, 3, mask_type)
    rng = np.random.default_rng(1)
    x = t(rng.standard_normal((2, 2, 4, 5)))
    w = t(rng.standard_normal((3, 2, 3, 3)))
    b = t(rng.standard_normal(3))

    def f(x, w, b):
        layer.weight, layer.bias = w, b
        return layer(x)

    assert mg.gradcheck(f, x, w, b) < 1e-5
    w.grad = None
    f(x, w, b).sum().backward()
    mask = host(causal_mask((3, 3), mask_type))
    assert np.all(host(w.grad)[:, :, mask == 0] == 0)
    assert np.all(host(w.grad)[:, :, mask == 1] != 0)


def test_masked_conv_keeps_the_image_size_and_not_its_mask_in_the_state_dict():
    layer = MaskedConv2d(4, 6, 5, "A")
    assert layer(t(np.zeros((2, 4, 7, 7), np.float32), False)).shape == (2, 6, 7, 7)
    assert sorted(layer.state_dict()) == ["bias", "weight"]


# --------------------------------------------------------- autoregressive property


def logits_at_each_position(prior, seed):
    """For every raster position p of a random grid: the logits at p of two grids that
    agree before p and differ at p and (at random) after it. Returns both (49, K)."""
    h, w = prior.grid_size
    k, n = prior.num_codes, h * w
    rng = np.random.default_rng(seed)
    base = rng.integers(0, k, size=(h * w,))
    changed = np.tile(base, (n, 1))
    later = np.arange(n)[None, :] >= np.arange(n)[:, None]  # row p: positions >= p
    changed[later] = rng.integers(0, k, size=int(later.sum()))
    changed[np.arange(n), np.arange(n)] = (base + 1 + rng.integers(0, k - 1, n)) % k  # differs at p
    rows, cols = np.divmod(np.arange(n), w)
    with mg.no_grad():
        a = host(prior(grids(np.tile(base, (n, 1)).reshape(n, h, w))))[np.arange(n), :, rows, cols]
        b = host(prior(grids(changed.reshape(n, h, w))))[np.arange(n), :, rows, cols]
    return a, b


def test_the_logits_at_a_position_ignore_that_position_and_every_later_one():
    prior = PixelCNN(num_codes=8, grid_size=(5, 6), hidden=8, layers=2)
    a, b = logits_at_each_position(prior, seed=0)
    np.testing.assert_array_equal(a, b)


def test_the_same_check_fails_without_the_masks():
    prior = PixelCNN(num_codes=8, grid_size=(5, 6), hidden=8, layers=2)
    for layer in prior.modules():
        if isinstance(layer, MaskedConv2d):
            layer.mask = backend.xp().ones_like(layer.mask)
    a, b = logits_at_each_position(prior, seed=0)
    assert np.abs(a - b).max(axis=1).min() > 1e-6  # every position then sees itself


def test_the_logits_do_depend_on_the_previous_position():
    prior = PixelCNN(num_codes=8, grid_size=(4, 4), hidden=8, layers=2)
    g = np.zeros((2, 4, 4), dtype=np.int64)
    g[1, 1, 1] = 3  # differs only at raster position 5
    with mg.no_grad():
        z = host(prior(grids(g)))
    assert np.abs(z[0, :, 1, 2] - z[1, :, 1, 2]).max() > 1e-6  # position 6 sees position 5
    np.testing.assert_array_equal(z[0, :, 1, 1], z[1, :, 1, 1])  # position 5 does not


# ----------------------------------------------------------- learning, sampling


def train(prior, codes, steps, lr=1e-2):
    opt = optim.Adam(prior.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = prior.loss(codes)
        loss.backward()
        opt.step()
        losses.append(float(loss.data))
    return losses


def test_a_prior_trained_on_one_code_samples_that_code():
    prior = PixelCNN(num_codes=16, grid_size=(4, 4), hidden=8, layers=1)
    losses = train(prior, grids(np.full((32, 4, 4), 5)), steps=60)
    assert losses[0] > 2.0 and losses[-1] < 0.1  # log 16 = 2.77 at the start
    assert (host(prior.sample(100)) == 5).mean() > 0.95


def test_a_prior_learns_that_later_positions_copy_the_first():
    # half the grids are all 3, half all 9: p(first) = 1/2, then every code is fixed,
    # -log p(grid) = log 2 nats, which no prior without conditioning can reach
    codes = np.repeat(np.array([3, 9]), 16)[:, None, None] * np.ones((1, 3, 3), np.int64)
    prior = PixelCNN(num_codes=12, grid_size=(3, 3), hidden=16, layers=1)
    losses = train(prior, grids(codes), steps=150)
    with mg.no_grad():
        per_grid = float(prior.loss(grids(codes)).data) * 9
    assert per_grid < np.log(2) + 0.15 and losses[-1] < losses[0]
    sample = host(prior.sample(200)).reshape(200, -1)
    constant = (sample == sample[:, :1]).all(axis=1)
    assert constant.mean() > 0.9
    assert 0.3 < (sample[:, 0] == 3).mean() < 0.7 and set(sample[constant, 0]) == {3, 9}


def test_samples_have_the_grid_shape_integer_codes_and_follow_the_seed():
    prior = PixelCNN(num_codes=10, grid_size=(3, 4), hidden=8, layers=1)
    mg.manual_seed(7)
    a = prior.sample(6)
    mg.manual_seed(7)
    b = prior.sample(6)
    assert a.shape == (6, 3, 4) and a.dtype.kind == "i"
    assert 0 <= int(a.min()) and int(a.max()) < 10 and len(np.unique(host(a))) > 1
    np.testing.assert_array_equal(host(a), host(b))
    assert all(m.training for m in prior.modules())  # sampling left the modes alone


def test_bad_code_grids_are_refused_with_a_reason():
    prior = PixelCNN(num_codes=8, grid_size=(3, 3), hidden=4, layers=1)
    with pytest.raises(ValueError, match=r"shape \(N, 3, 3\)"):
        prior(grids(np.zeros((2, 3, 4))))
    with pytest.raises(TypeError, match="integers"):
        prior(backend.from_numpy(np.zeros((2, 3, 3), np.float32)))
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        prior.loss(grids(np.full((2, 3, 3), 8)))


# ------------------------------------------------------------- with a VQ-VAE


def small_images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def test_encode_indices_gives_the_codes_of_the_forward_pass():
    model = models.build("vq-vae")
    images = small_images(5)
    codes = model.encode_indices(images, batch_size=2)
    x = backend.from_numpy(images[:, None].astype(np.float32) / 255)
    with mg.no_grad():
        want = model(mg.Tensor(x))[3]
    assert codes.shape == (5, 7, 7) and codes.dtype == np.int64
    np.testing.assert_array_equal(host(codes), host(want))


def test_fit_prior_attaches_a_prior_that_sample_and_checkpoints_use():
    model = models.build("vq-vae")
    prior, losses = fit_prior(
        model, small_images(64), epochs=2, batch_size=32, prior=PixelCNN(hidden=8, layers=1)
    )
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert model.prior is prior
    assert (model.options["prior_hidden"], model.options["prior_layers"]) == (8, 1)
    assert any(name.startswith("prior.") for name in model.state_dict())
    own = sum(p.size for p in model.make_optimizers()["adam"].params)
    assert own == sum(p.size for n, p in model.named_parameters() if not n.startswith("prior."))

    mg.manual_seed(4)
    grid = prior.sample(3)
    mg.manual_seed(4)
    images = host(model.sample(3))
    np.testing.assert_array_equal(images, host(model.decode_indices(grid)))

    # what a checkpoint does: rebuild from the options, then load the weights
    again = models.build("vq-vae", **model.options)
    again.load_state_dict(model.state_dict())
    mg.manual_seed(4)
    np.testing.assert_array_equal(host(again.sample(3)), images)


def test_attach_prior_refuses_a_prior_of_another_size():
    model = models.build("vq-vae")
    assert model.prior is None and "prior_hidden" not in model.options  # old checkpoints fit
    built = models.build("vq-vae", prior_hidden=8)
    assert (built.prior.options["hidden"], built.prior.options["layers"]) == (8, 3)
    with pytest.raises(ValueError, match="PixelCNN over 64 codes"):
        model.attach_prior(PixelCNN(num_codes=32))


def test_a_checkpoint_saved_after_fit_prior_loads_with_its_prior(tmp_path):
    from minigen import train

    model = models.build("vq-vae")
    fit_prior(model, small_images(32), epochs=1, batch_size=32, prior=PixelCNN(hidden=4, layers=1))
    path = train.save(tmp_path / "checkpoint.npz", model, model.make_optimizers(), 1, {}, 0)
    again, _, meta = train.load(path)
    assert isinstance(again.prior, PixelCNN) and meta["options"]["prior_hidden"] == 4
    mg.manual_seed(2)
    want = host(model.sample(2))
    mg.manual_seed(2)
    np.testing.assert_array_equal(host(again.sample(2)), want)


def test_fit_prior_with_a_zero_budget_stops_after_one_step():
    model = models.build("vq-vae")
    prior = PixelCNN(hidden=4, layers=1)
    before = host(prior.net[0].weight).copy()
    _, losses = fit_prior(
        model, small_images(96), epochs=3, batch_size=32, prior=prior, max_seconds=0
    )
    assert len(losses) == 1 and np.isfinite(losses[0])
    assert not np.array_equal(host(prior.net[0].weight), before)  # it did take that step
    with pytest.raises(ValueError, match="max_seconds must be >= 0"):
        fit_prior(model, small_images(32), batch_size=32, max_seconds=-1)
