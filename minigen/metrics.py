"""How good is a generative model? Numbers to compare models and training runs.

Likelihood-based models (VAE, VQ-VAE), on images x with pixels in [0, 1]:

- ``negative_elbo``: the VAE's training loss on test data, nats per image,
  sum-pixel BCE + KL(q(z|x) || N(0, I)): an upper bound on -log p(x).
- ``importance_weighted_nll``: a tighter bound from k samples of q (IWAE,
  Burda et al. 2016); it approaches -log p(x) as k grows.
- ``reconstruction_bce``: sum-pixel BCE of the model's deterministic
  reconstruction (VAE: decoder(mu); VQ-VAE: its forward pass).
- ``code_usage`` and ``perplexity``: how many of a VQ-VAE's codes are used.

Sample-based, for any generator (GANs above all), in the feature space of a
small classifier trained on the same dataset (``minigen.classifier``):

- ``fid``: Frechet distance between Gaussians fitted to the features of real
  and generated images (lower is better; 0 for identical statistics).
- ``class_coverage``: the share of generated images per predicted class;
  a collapsed GAN covers few classes.

"BCE likelihood": with continuous targets x in [0, 1], -BCE(logits, x) is the
log of a Bernoulli mass evaluated at non-binary x. It is what the VAE trains
on, not a normalised density over [0, 1]^784, so these nats compare models
trained the same way, not with published numbers on binarised MNIST.

Everything runs in eval mode under ``no_grad``; the heavy maths stays on the
backend and only per-image sums and features come back to the host.
"""

import math
from contextlib import contextmanager

from minigen import backend
from minigen.autograd import Tensor, no_grad

# ------------------------------------------------------------------- helpers


@contextmanager
def _evaluating(model):
    """no_grad and eval mode (BatchNorm on running stats), every module's mode restored after."""
    modules = list(model.modules()) if hasattr(model, "modules") else []
    modes = [getattr(m, "training", False) for m in modules]
    if hasattr(model, "eval"):
        model.eval()
    try:
        with no_grad():
            yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.training = mode


def _unit_batches(images, batch_size, who, check_range=True):
    """Yield float32 backend batches (B, 1, H, W) of ``images`` with pixels in [0, 1].

    ``images``: host or backend array (or Tensor), (N, H, W) or (N, 1, H, W);
    uint8 is divided by 255, floats must already lie in [0, 1].
    """
    images = images.data if isinstance(images, Tensor) else images
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[1] != 1):
        raise ValueError(
            f"{who}: expected images of shape (N, H, W) or (N, 1, H, W), got {tuple(images.shape)}"
        )
    if images.dtype != backend.host.uint8 and images.dtype.kind != "f":
        raise TypeError(f"{who}: expected uint8 or float images, got dtype {images.dtype}")
    if batch_size < 1:
        raise ValueError(f"{who}: batch_size must be >= 1, got {batch_size}")
    on_host = isinstance(images, backend.host.ndarray)
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        if on_host:
            chunk = backend.from_numpy(chunk)  # the explicit transfer, still in its own dtype
        x = chunk.astype(backend.DEFAULT_DTYPE)
        if images.dtype == backend.host.uint8:
            x = x / 255.0
        elif check_range:
            _check_unit_range(x, who)
        yield x.reshape(len(x), 1, *x.shape[-2:])


def _check_unit_range(x, who):
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise ValueError(
            f"{who}: float images must have pixels in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; "
            "a generator with tanh output (in [-1, 1]) needs (x + 1) / 2 first"
        )


def _count(images, who):
    n = len(images)
    if n == 0:
        raise ValueError(f"{who}: no images given")
    return n


def _bce_per_image(logits, x):
    """sum over pixels of BCE-with-logits, one number per image: (B, ...) -> (B,).

    BCE(l, x) = softplus(l) - x l = max(l, 0) - x l + log(1 + exp(-|l|)), stable for any l.
    """
    xp = backend.xp()
    bce = xp.maximum(logits, 0) - logits * x + xp.log1p(xp.exp(-xp.abs(logits)))
    return bce.reshape(len(bce), -1).sum(axis=1)


def _data(t):
    return t.data if isinstance(t, Tensor) else t


def _encode(vae, x):
    mu, logvar = vae.encoder(Tensor(x))
    return _data(mu), _data(logvar)


def _decode(vae, z):
    return _data(vae.decoder(Tensor(z)))


# -------------------------------------------------------------- VAE bounds


def negative_elbo(vae, images, batch_size=500):
    """Mean negative ELBO in nats per image (one z sample per image).

    -ELBO(x) = sum_pixels BCE(decoder(z), x) + KL(q(z|x) || N(0, I)),
    z = mu + exp(logvar / 2) eps, eps ~ N(0, I) drawn with ``backend.randn``,
    KL = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j).

    ``images``: (N, 28, 28) uint8 (divided by 255) or floats in [0, 1].
    """
    xp = backend.xp()
    n, total = _count(images, "negative_elbo"), 0.0
    with _evaluating(vae):
        for x in _unit_batches(images, batch_size, "negative_elbo"):
            mu, logvar = _encode(vae, x)
            eps = backend.randn(*mu.shape, dtype=mu.dtype)
            logits = _decode(vae, mu + xp.exp(0.5 * logvar) * eps)
            kl = 0.5 * (mu * mu + xp.exp(logvar) - 1.0 - logvar).sum(axis=1)
            total += float((_bce_per_image(logits, x) + kl).sum())
    return total / n


def importance_weighted_nll(vae, images, k=50, batch_size=100):
    """Importance-weighted bound on -log p(x) in nats per image (IWAE bound).

    With z_1..z_k ~ q(z|x) and weights w_i = p(x|z_i) p(z_i) / q(z_i|x),

        -log p(x) <= -log (1/k sum_i w_i) <= -ELBO(x)   (in expectation),

    the bound tightens as k grows and k = 1 gives the ELBO back. log w_i is
    -BCE(decoder(z_i), x) + log N(z_i; 0, I) - log N(z_i; mu, sigma^2) (the
    same BCE likelihood as ``negative_elbo``; the 2 pi terms cancel), and the
    average runs through a logsumexp so that w_i ~ exp(-300) does not underflow.
    """
    if k < 1:
        raise ValueError(f"importance_weighted_nll: k must be >= 1, got {k}")
    xp = backend.xp()
    n, total = _count(images, "importance_weighted_nll"), 0.0
    with _evaluating(vae):
        for x in _unit_batches(images, batch_size, "importance_weighted_nll"):
            mu, logvar = _encode(vae, x)
            std = xp.exp(0.5 * logvar)
            log_w = []
            for _ in range(k):
                eps = backend.randn(*mu.shape, dtype=mu.dtype)
                z = mu + std * eps
                log_px = -_bce_per_image(_decode(vae, z), x)
                log_pz = -0.5 * (z * z).sum(axis=1)
                log_qz = -0.5 * (eps * eps + logvar).sum(axis=1)  # (z - mu) / sigma = eps
                log_w.append(log_px + log_pz - log_qz)
            log_w = xp.stack(log_w)  # (k, B)
            m = log_w.max(axis=0)
            log_mean_w = m + xp.log(xp.exp(log_w - m).sum(axis=0)) - math.log(k)
            total += float(log_mean_w.sum())
    return -total / n


def reconstruction_bce(model, images, batch_size=500):
    """Sum-pixel BCE per image (mean, nats) of the model's deterministic reconstruction.

    A VQ-VAE (it has ``quantizer``) reconstructs with ``model(x)[0]``; a VAE
    with ``decoder(mu)``, the posterior mean, no sampling.
    """
    n, total = _count(images, "reconstruction_bce"), 0.0
    with _evaluating(model):
        for x in _unit_batches(images, batch_size, "reconstruction_bce"):
            if hasattr(model, "quantizer"):
                logits = _data(model(Tensor(x))[0])
            else:
                logits = _decode(model, _encode(model, x)[0])
            total += float(_bce_per_image(logits, x).sum())
    return total / n


# ------------------------------------------------------------- VQ-VAE codes


def perplexity(counts):
    """exp(entropy) of the code-use distribution p = counts / sum(counts).

    The "effective number of codes": K for uniform use of K codes, 1 when a
    single code takes everything (0 log 0 counts as 0).
    """
    np = backend.host
    counts = np.asarray(backend.to_numpy(counts), dtype=np.float64)
    if counts.ndim != 1 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(
            "perplexity: counts must be a 1-D array of non-negative numbers, not all 0"
        )
    p = counts / counts.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def code_usage(vqvae, images, batch_size=500):
    """How the VQ-VAE uses its codebook on ``images``.

    Returns (counts, perplexity, dead): counts (K,) host int64, how often each
    code is the nearest one over all positions of all images; its perplexity;
    and the number of dead codes (count 0, no gradient ever reaches them).
    """
    xp = backend.xp()
    num_codes = vqvae.quantizer.codebook.shape[0]
    counts = xp.zeros(num_codes, dtype=xp.int64)
    with _evaluating(vqvae):
        for x in _unit_batches(images, batch_size, "code_usage"):
            indices = _data(vqvae(Tensor(x))[3])
            counts += xp.bincount(indices.reshape(-1), minlength=num_codes)
    counts = backend.to_numpy(counts)
    return counts, perplexity(counts), int((counts == 0).sum())


# ----------------------------------------------------------- Frechet distance


def _host64(a, who):
    a = backend.host.asarray(backend.to_numpy(a), dtype=backend.host.float64)
    if not backend.host.isfinite(a).all():
        raise ValueError(f"{who}: input contains NaN or infinity")
    return a


def _sqrt_psd(s):
    """Square root of a symmetric positive semi-definite matrix: V diag(sqrt(w)) V^T."""
    np = backend.host
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_gaussians(mu1, cov1, mu2, cov2):
    """Frechet (2-Wasserstein squared) distance between N(mu1, S1) and N(mu2, S2):

        ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    S1 S2 is not symmetric, but it has the eigenvalues of the symmetric PSD
    matrix A = S1^(1/2) S2 S1^(1/2), so tr (S1 S2)^(1/2) = sum_i sqrt(lambda_i(A))
    (eigenvalues clipped at 0 against round-off). Host NumPy, float64.
    """
    np = backend.host
    mu1, mu2 = _host64(mu1, "frechet_distance"), _host64(mu2, "frechet_distance")
    cov1, cov2 = _host64(cov1, "frechet_distance"), _host64(cov2, "frechet_distance")
    d = mu1.shape[-1] if mu1.ndim else 0
    if mu1.shape != (d,) or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(
            "frechet_distance_gaussians: expected means (d,) and covariances (d, d), got "
            f"{mu1.shape}, {cov1.shape}, {mu2.shape}, {cov2.shape}"
        )
    root1 = _sqrt_psd(cov1)
    a = root1 @ cov2 @ root1
    a = (a + a.T) / 2  # symmetric up to round-off; eigvalsh wants it exactly
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(a), 0.0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_sqrt
    return max(float(value), 0.0)  # never below 0; round-off can make it -1e-12


def frechet_distance(feats_a, feats_b):
    """Frechet distance between Gaussians fitted to two feature sets (N, d) and (M, d).

    Fits each set's mean and (unbiased) covariance, then
    ``frechet_distance_gaussians``. A set against itself gives 0.
    """
    a, b = _host64(feats_a, "frechet_distance"), _host64(feats_b, "frechet_distance")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            "frechet_distance: expected two feature arrays (N, d) and (M, d) with N, M >= 2, "
            f"got {a.shape} and {b.shape}"
        )
    np = backend.host
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return frechet_distance_gaussians(
        a.mean(axis=0), np.atleast_2d(cov_a), b.mean(axis=0), np.atleast_2d(cov_b)
    )


# ----------------------------------------------- classifier-based GAN metrics


def _classifier(classifier):
    if classifier is None:
        from minigen.classifier import load_classifier

        classifier = load_classifier()
    return classifier


def _features(classifier, images, batch_size, who):
    parts = []
    with _evaluating(classifier):
        for x in _unit_batches(images, batch_size, who):
            parts.append(backend.to_numpy(_data(classifier.features(Tensor(x)))))
    return backend.host.concatenate(parts).astype(backend.host.float64)


def fid(real_images, fake_images, classifier=None, batch_size=500):
    """Frechet distance between real and generated images in a classifier's feature space.

    Like FID (Heusel et al. 2017), but with a small convnet trained on the same
    dataset (its 128-d penultimate layer) instead of Inception, so the numbers
    compare minigen models with each other, not with published FIDs. Images: (N,
    28, 28) or (N, 1, 28, 28), uint8 or floats in [0, 1], host or backend. Use
    several thousand images per side: with few, the covariance estimate adds a
    positive bias. ``classifier`` defaults to ``load_classifier()``.
    """
    _count(real_images, "fid")
    _count(fake_images, "fid")
    classifier = _classifier(classifier)
    real = _features(classifier, real_images, batch_size, "fid")
    fake = _features(classifier, fake_images, batch_size, "fid")
    return frechet_distance(real, fake)


def class_coverage(fake_images, classifier=None, threshold=0.05, batch_size=500):
    """Share of generated images per predicted class, and how many classes are covered.

    Returns (fractions, covered): fractions (num_classes,) host float64 sums to
    1; covered counts the classes with a share >= ``threshold``. With 10
    balanced classes a fair share is 10%; below 5% (the default) a class
    counts as dropped, which makes mode collapse visible as covered < 10.
    """
    np = backend.host
    n = _count(fake_images, "class_coverage")
    classifier = _classifier(classifier)
    counts = None
    with _evaluating(classifier):
        for x in _unit_batches(fake_images, batch_size, "class_coverage"):
            logits = _data(classifier(Tensor(x)))
            c = backend.to_numpy(logits.argmax(axis=1))
            c = np.bincount(c, minlength=logits.shape[1])
            counts = c if counts is None else counts + c
    fractions = counts / float(n)
    return fractions, int((fractions >= threshold).sum())
