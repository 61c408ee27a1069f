"""Each metric checked on a case whose answer is known independently.

- Frechet distance: closed forms in 1-D, for diagonal and for 2x2 covariances,
  a Denman-Beavers matrix square root for general non-commuting ones, a set
  against itself (0) and against a shifted copy (the squared shift).
- Perplexity: uniform use of K codes gives K, a single code gives 1.
- VAE bounds: a hand computation in float64 NumPy of the same random draws.
- Classifier metrics: real test images (balanced classes) and a single class.
"""

import math

import numpy as np
import pytest

import minigen
from minigen import backend, data, metrics, nn
from minigen.classifier import Classifier, load_classifier
from minigen.metrics import accuracy

# ------------------------------------------------------------ Frechet distance


def _random_spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def _sqrtm_denman_beavers(a, steps=60):
    """Principal square root of a matrix with positive eigenvalues (not symmetric)."""
    y, z = a.copy(), np.eye(len(a))
    for _ in range(steps):
        y, z = (y + np.linalg.inv(z)) / 2, (z + np.linalg.inv(y)) / 2
    return y


def test_fd_one_dimension():
    # (m1 - m2)^2 + (s1 - s2)^2 for N(1, 2^2) and N(-1, 3^2)
    fd = metrics.frechet_distance_gaussians(np.array([1.0]), [[4.0]], np.array([-1.0]), [[9.0]])
    assert fd == pytest.approx(4.0 + 1.0, abs=1e-12)


def test_fd_diagonal_covariances():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    fd = metrics.frechet_distance_gaussians(mu1, np.diag(v1), mu2, np.diag(v2))
    assert fd == pytest.approx(expected, abs=1e-12)


def test_fd_non_commuting_2x2_closed_form():
    # For a 2x2 matrix A with eigenvalues l1, l2 >= 0: tr sqrt(A) = sqrt(tr A + 2 sqrt(det A)).
    s1 = np.array([[2.0, 0.9], [0.9, 1.0]])
    s2 = np.array([[1.0, -0.4], [-0.4, 3.0]])
    assert not np.allclose(s1 @ s2, s2 @ s1)
    a = s1 @ s2
    tr_sqrt = math.sqrt(np.trace(a) + 2 * math.sqrt(np.linalg.det(a)))
    mu1, mu2 = np.array([0.5, -1.0]), np.array([0.0, 2.0])
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert metrics.frechet_distance_gaussians(mu1, s1, mu2, s2) == pytest.approx(
        expected, rel=1e-10
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fd_matches_definition_with_general_covariances(seed):
    rng = np.random.default_rng(seed)
    d = 6
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    root = _sqrtm_denman_beavers(s1 @ s2)
    assert np.allclose(root @ root, s1 @ s2)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root)
    fd = metrics.frechet_distance_gaussians(mu1, s1, mu2, s2)
    assert fd == pytest.approx(expected, rel=1e-8)
    assert metrics.frechet_distance_gaussians(mu2, s2, mu1, s1) == pytest.approx(fd, rel=1e-8)


def test_fd_of_a_set_with_itself_is_zero():
    feats = np.random.default_rng(0).standard_normal((400, 16)) @ np.diag(np.arange(1.0, 17.0))
    assert metrics.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-8)


def test_fd_of_a_shifted_set_is_the_squared_shift():
    rng = np.random.default_rng(1)
    feats = rng.standard_normal((300, 8)) @ rng.standard_normal((8, 8))
    shift = rng.standard_normal(8)
    assert metrics.frechet_distance(feats, feats + shift) == pytest.approx(shift @ shift, rel=1e-6)


def test_fd_of_samples_approaches_the_gaussians_distance():
    rng = np.random.default_rng(2)
    mu1, mu2 = np.array([0.0, 0.0, 1.0]), np.array([1.0, -1.0, 1.0])
    s1 = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]])
    s2 = np.diag([2.0, 0.5, 1.0])
    a = rng.multivariate_normal(mu1, s1, size=40_000)
    b = rng.multivariate_normal(mu2, s2, size=40_000)
    expected = metrics.frechet_distance_gaussians(mu1, s1, mu2, s2)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, abs=0.03)


def test_fd_accepts_backend_arrays():
    feats = np.random.default_rng(3).standard_normal((50, 4))
    on_device = backend.from_numpy(feats.astype(np.float32))
    assert metrics.frechet_distance(on_device, feats + 1.0) == pytest.approx(4.0, rel=1e-5)


def test_fd_rejects_mismatched_features():
    with pytest.raises(ValueError, match=r"\(10, 3\) and \(10, 4\)"):
        metrics.frechet_distance(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.frechet_distance(np.full((10, 3), np.nan), np.zeros((10, 3)))


# ------------------------------------------------------------------ perplexity


def test_perplexity_of_uniform_use_is_the_codebook_size():
    assert metrics.perplexity(np.full(64, 7)) == pytest.approx(64.0)


def test_perplexity_of_one_code_is_one():
    counts = np.zeros(64, dtype=np.int64)
    counts[5] = 100
    assert metrics.perplexity(counts) == pytest.approx(1.0)


def test_perplexity_ignores_unused_codes_and_weights_by_use():
    assert metrics.perplexity([4, 4, 0, 0]) == pytest.approx(2.0)
    p = np.array([0.75, 0.25])
    assert metrics.perplexity([3, 1]) == pytest.approx(np.exp(-(p * np.log(p)).sum()))


def test_perplexity_rejects_empty_counts():
    with pytest.raises(ValueError, match="not all 0"):
        metrics.perplexity(np.zeros(4))


class _CodeReader(nn.Module):
    """A stand-in VQ-VAE whose code at each of 7x7 positions is written in the image's
    pixel values (pixel value = code index), so the true counts are known."""

    def __init__(self, num_codes):
        super().__init__()
        self.quantizer = nn.Module()
        self.quantizer.codebook = nn.Parameter(backend.zeros((num_codes, 2)))

    def forward(self, x):
        indices = (x.data[:, 0, :7, :7] * 255.0 + 0.5).astype(backend.xp().int64)
        logits = minigen.Tensor(backend.zeros(x.shape))
        return logits, None, None, indices

    def reconstruction_logits(self, x):  # as the VQ-VAE: the logits of its forward pass
        return self(x)[0]


def test_code_usage_counts_codes_and_dead_ones():
    k = 8
    codes = np.arange(10 * 49) % 6  # codes 0..5 used equally often, 6 and 7 dead
    images = np.zeros((10, 28, 28), dtype=np.uint8)
    images[:, :7, :7] = codes.reshape(10, 7, 7)
    counts, ppl, dead = metrics.code_usage(_CodeReader(k), images, batch_size=3)
    assert counts.tolist() == [np.sum(codes == c) for c in range(k)]
    assert ppl == pytest.approx(6.0, rel=1e-3)  # 490 / 6 is not whole: nearly uniform
    assert dead == 2


def test_reconstruction_bce_of_zero_logits_is_log2_per_pixel():
    # BCE(0, x) = log 2 for every x: the VQ-VAE branch (model has a quantizer)
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    got = metrics.reconstruction_bce(_CodeReader(4), images, batch_size=2)
    assert got == pytest.approx(784 * math.log(2.0), rel=1e-6)


# ------------------------------------------------------------------ VAE bounds


class _TinyVAE(nn.Module):
    """A linear Gaussian encoder and linear Bernoulli decoder, small and random."""

    latent_dim = 3

    def __init__(self, scale=1.0):
        super().__init__()
        self.mu = nn.Linear(784, self.latent_dim)
        self.logvar = nn.Linear(784, self.latent_dim)
        self.dec = nn.Linear(self.latent_dim, 784)
        for p in self.parameters():
            p.data *= scale

    def encoder(self, x):
        h = x.reshape(x.shape[0], 784)
        return self.mu(h), self.logvar(h)

    def decoder(self, z):
        return self.dec(z).reshape(z.shape[0], 1, 28, 28)

    def reconstruction_logits(self, x):  # as the VAE: decode the posterior mean
        return self.decoder(self.encoder(x)[0])


def _weights(model):
    return {k: backend.to_numpy(v).astype(np.float64) for k, v in model.state_dict().items()}


def _hand_parts(w, x):
    """mu, logvar and a decoder for x (N, 784) in float64 NumPy."""
    mu = x @ w["mu.weight"].T + w["mu.bias"]
    logvar = x @ w["logvar.weight"].T + w["logvar.bias"]

    def bce(z):
        logits = z @ w["dec.weight"].T + w["dec.bias"]
        return (np.logaddexp(0.0, logits) - x * logits).sum(axis=1)

    return mu, logvar, bce


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def test_negative_elbo_matches_a_hand_computation():
    model, images = _TinyVAE(), _images(8)
    minigen.manual_seed(5)
    got = metrics.negative_elbo(model, images, batch_size=3)  # three batches: 3 + 3 + 2

    eps = np.random.default_rng(5).standard_normal((8, 3), dtype=np.float32).astype(np.float64)
    x = images.reshape(8, 784) / 255.0
    mu, logvar, bce = _hand_parts(_weights(model), x)
    kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(axis=1)
    expected = (bce(mu + np.exp(logvar / 2) * eps) + kl).mean()
    assert got == pytest.approx(expected, rel=1e-5)


def test_importance_weighted_nll_matches_a_hand_computation():
    model, images, k = _TinyVAE(), _images(4), 3
    minigen.manual_seed(7)
    got = metrics.importance_weighted_nll(model, images, k=k, batch_size=4)

    rng = np.random.default_rng(7)
    x = images.reshape(4, 784) / 255.0
    mu, logvar, bce = _hand_parts(_weights(model), x)
    log_w = []
    for _ in range(k):  # one draw of (batch, latent) per importance sample
        eps = rng.standard_normal((4, 3), dtype=np.float32).astype(np.float64)
        z = mu + np.exp(logvar / 2) * eps
        log_q = -0.5 * (eps**2 + logvar + np.log(2 * np.pi)).sum(axis=1)
        log_p = -0.5 * (z**2 + np.log(2 * np.pi)).sum(axis=1)
        log_w.append(-bce(z) + log_p - log_q)
    expected = -(np.logaddexp.reduce(np.array(log_w), axis=0) - np.log(k)).mean()
    assert got == pytest.approx(expected, rel=1e-5)


def test_importance_weighted_bound_is_below_the_elbo():
    model, images = _TinyVAE(), _images(64, seed=1)
    elbo = metrics.negative_elbo(model, images)
    iw = metrics.importance_weighted_nll(model, images, k=20, batch_size=32)
    assert iw < elbo
    assert elbo - iw < 0.2 * elbo  # a bound on the same quantity, not something else


def test_importance_weighted_nll_is_finite_when_weights_underflow():
    # Large weights make log w ~ -1e4: exp(log w) is 0 in float32, the logsumexp is not.
    model, images = _TinyVAE(scale=30.0), _images(6, seed=2)
    iw = metrics.importance_weighted_nll(model, images, k=5)
    assert math.isfinite(iw) and iw > 1e3


def test_reconstruction_bce_of_a_vae_decodes_the_mean():
    model, images = _TinyVAE(), _images(5, seed=3)
    x = images.reshape(5, 784) / 255.0
    mu, _, bce = _hand_parts(_weights(model), x)
    assert metrics.reconstruction_bce(model, images, batch_size=2) == pytest.approx(
        bce(mu).mean(), rel=1e-5
    )


def test_metrics_restore_training_mode():
    model = _TinyVAE()
    model.train()
    metrics.negative_elbo(model, _images(2))
    assert all(m.training for m in model.modules())


def test_bad_images_get_clear_errors():
    model = _TinyVAE()
    with pytest.raises(ValueError, match=r"negative_elbo: expected images of shape.*\(4, 784\)"):
        metrics.negative_elbo(model, np.zeros((4, 784), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\].*\(x \+ 1\) / 2"):
        metrics.reconstruction_bce(model, -np.ones((4, 28, 28), dtype=np.float32))
    with pytest.raises(TypeError, match="uint8 or float images, got dtype int32"):
        metrics.negative_elbo(model, np.zeros((4, 28, 28), dtype=np.int32))
    with pytest.raises(ValueError, match="no images"):
        metrics.negative_elbo(model, np.zeros((0, 28, 28), dtype=np.uint8))


# ------------------------------------------------------ classifier-based metrics


@pytest.fixture(scope="module")
def test_split():
    images, labels = data.load("fashion-mnist", split="test")
    return images[:2000], labels[:2000]


@pytest.fixture(scope="module")
def classifier():
    return load_classifier("fashion-mnist")


def test_shipped_classifier_is_accurate(test_split, classifier):
    images, labels = test_split
    assert accuracy(classifier, images, labels) > 0.85


def test_class_coverage_of_real_images_is_full(test_split, classifier):
    images, labels = test_split
    fractions, covered = metrics.class_coverage(images, classifier)
    assert covered == 10
    assert fractions.sum() == pytest.approx(1.0)
    true_shares = np.bincount(labels, minlength=10) / len(labels)
    assert np.abs(fractions - true_shares).max() < 0.04


def test_class_coverage_of_one_class_is_one(test_split, classifier):
    images, labels = test_split
    trousers = images[labels == 1].astype(np.float32) / 255.0  # floats in [0, 1] too
    fractions, covered = metrics.class_coverage(trousers, classifier)
    assert covered == 1
    assert fractions[1] > 0.9


def test_fid_orders_sets_by_similarity(test_split, classifier):
    images, labels = test_split
    real_a, real_b = images[:1000], images[1000:]
    same = metrics.fid(real_a, real_a, classifier)
    other_half = metrics.fid(real_a, real_b, classifier)
    one_class = metrics.fid(real_a, images[labels == 7], classifier)
    noise = metrics.fid(real_a, _images(1000), classifier)
    assert same == pytest.approx(0.0, abs=1e-6)
    # another real sample is close; one class only, or noise, is far away
    assert 0 < other_half < 0.1 * min(one_class, noise)


def test_fid_takes_uint8_and_float_in_either_shape(test_split, classifier):
    images = test_split[0][:300]
    as_float = backend.from_numpy((images.astype(np.float32) / 255.0)[:, None])
    assert metrics.fid(images, as_float, classifier) == pytest.approx(0.0, abs=1e-4)


def test_missing_weights_name_the_script(tmp_path, monkeypatch):
    from minigen import classifier as module

    monkeypatch.setattr(module, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="tools/train_classifier.py --dataset mnist"):
        load_classifier("mnist")


def test_classifier_features_have_the_penultimate_width():
    x = backend.from_numpy(np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32))
    model = Classifier()
    assert model.features(minigen.Tensor(x)).shape == (2, 128)
    assert model(minigen.Tensor(x)).shape == (2, 10)


def _training_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / "train_classifier.py"
    spec = importlib.util.spec_from_file_location("train_classifier", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_script_saves_weights_that_load_back(test_split, tmp_path, monkeypatch):
    from minigen import classifier as module

    script = _training_script()
    images, labels = test_split
    model = script.train(images[:256], labels[:256], epochs=1, log_every=10**9)
    script.save(model, tmp_path / "mnist-classifier.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist-classifier.npz"]  # no temp left

    monkeypatch.setattr(module, "WEIGHTS_DIR", tmp_path)
    loaded = load_classifier("mnist")
    for name, value in model.state_dict().items():
        assert np.array_equal(backend.to_numpy(loaded.state_dict()[name]), backend.to_numpy(value))
    assert not loaded.training


# --------------------------------------------------- the reference models


def test_vae_bounds_on_a_reference_model():
    from minigen.models import build

    model, images = build("mlp-vae"), _images(64, seed=4)
    elbo = metrics.negative_elbo(model, images)
    assert metrics.importance_weighted_nll(model, images, k=10) < elbo
    assert 0 < metrics.reconstruction_bce(model, images) < math.inf


def test_code_usage_of_a_reference_vqvae():
    from minigen.models import build

    model, images = build("vq-vae"), _images(6, seed=5)
    counts, ppl, dead = metrics.code_usage(model, images, batch_size=4)
    assert counts.shape == (64,) and counts.sum() == 6 * 49
    assert dead == int((counts == 0).sum()) and 1 <= ppl <= 64 - dead
