"""How good is a generative model? Numbers to compare models and training runs.

Likelihood-based models (VAE, VQ-VAE), on images x with pixels in [0, 1]:

- ``negative_elbo``: the VAE's training loss on test data, nats per image,
  sum-pixel BCE + KL(q(z|x) || N(0, I)): an upper bound on -log p(x).
- ``importance_weighted_nll``: a tighter bound from k samples of q (IWAE,
  Burda et al. 2016); it approaches -log p(x) as k grows.
- ``reconstruction_bce``: sum-pixel BCE of the model's deterministic
  reconstruction (``model.reconstruction_logits``: VAE decoder(mu), VQ-VAE
  its quantized grid).
- ``code_usage`` and ``perplexity``: how many of a VQ-VAE's codes are used.

Sample-based, for any generator (GANs above all), in the feature space of a
small classifier trained on the same dataset (``minigen.classifier``):

- ``fid``: Frechet distance between Gaussians fitted to the features of real
  and generated images (lower is better; 0 for identical statistics).
- ``class_coverage``: the share of generated images per predicted class;
  a collapsed GAN covers few classes.
- ``accuracy``: how often the classifier itself is right, on labelled images.

"BCE likelihood": with continuous targets x in [0, 1], -BCE(logits, x) is the
log of a Bernoulli mass evaluated at non-binary x. It is what the VAE trains
on, not a normalised density over [0, 1]^784, so these nats compare models
trained the same way, not with published numbers on binarised MNIST.

Everything runs under ``nn.eval_mode`` (eval mode, no graph); the heavy maths stays on the
backend and only per-image sums and features come back to the host.
"""

import math

from minigen import backend
from minigen.autograd import Tensor
from minigen.classifier import load_classifier
from minigen.data.batches import unit_batches
from minigen.models.vae import reparameterize
from minigen.nn import functional as F
from minigen.nn.module import eval_mode
from minigen.ops import logsumexp_array

# ------------------------------------------------------------------- helpers


def _count(images, who):
    n = len(images)
    if n == 0:
        raise ValueError(f"{who}: no images given")
    return n


def _bce_per_image(logits, x):
    """Sum over pixels of BCE-with-logits, one number per image: (B, ...) -> (B,) array."""
    bce = F.binary_cross_entropy_with_logits(logits, Tensor(x), reduction="none").data
    return bce.reshape(len(bce), -1).sum(axis=1)


# -------------------------------------------------------------- VAE bounds


def negative_elbo(vae, images, batch_size=500):
    """Mean negative ELBO in nats per image (one z sample per image).

    -ELBO(x) = sum_pixels BCE(decoder(z), x) + KL(q(z|x) || N(0, I)),
    z = mu + exp(logvar / 2) eps, eps ~ N(0, I) drawn with ``backend.randn``,
    KL = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j).

    ``images``: (N, 28, 28) uint8 (divided by 255) or floats in [0, 1].
    """
    n, total = _count(images, "negative_elbo"), 0.0
    with eval_mode(vae):
        for x in unit_batches(images, batch_size, "negative_elbo"):
            mu, logvar = vae.encoder(Tensor(x))
            logits = vae.decoder(reparameterize(mu, logvar))
            kl = F.gaussian_kl(mu, logvar, reduction="none").data
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
    n, total = _count(images, "importance_weighted_nll"), 0.0
    with eval_mode(vae):
        for x in unit_batches(images, batch_size, "importance_weighted_nll"):
            mu, logvar = vae.encoder(Tensor(x))
            log_w = []
            for _ in range(k):
                eps = backend.randn(*mu.shape, dtype=mu.dtype)
                z = reparameterize(mu, logvar, eps).data
                log_px = -_bce_per_image(vae.decoder(Tensor(z)), x)
                log_pz = -0.5 * (z * z).sum(axis=1)
                log_qz = -0.5 * (eps * eps + logvar.data).sum(axis=1)  # (z - mu) / sigma = eps
                log_w.append(log_px + log_pz - log_qz)
            log_mean_w = logsumexp_array(backend.xp().stack(log_w), axis=0) - math.log(k)
            total += float(log_mean_w.sum())
    return -total / n


def reconstruction_bce(model, images, batch_size=500):
    """Sum-pixel BCE per image (mean, nats) of the model's deterministic reconstruction.

    The model says what that is with ``reconstruction_logits(x)``: a VAE
    decodes the posterior mean (no sampling), a VQ-VAE its quantized code grid.
    """
    n, total = _count(images, "reconstruction_bce"), 0.0
    with eval_mode(model):
        for x in unit_batches(images, batch_size, "reconstruction_bce"):
            logits = model.reconstruction_logits(Tensor(x))
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
    with eval_mode(vqvae):
        for x in unit_batches(images, batch_size, "code_usage"):
            indices = vqvae(Tensor(x))[3]
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
    return load_classifier() if classifier is None else classifier


def _features(classifier, images, batch_size, who):
    parts = []
    with eval_mode(classifier):
        for x in unit_batches(images, batch_size, who):
            parts.append(backend.to_numpy(classifier.features(Tensor(x)).data))
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
    with eval_mode(classifier):
        for x in unit_batches(fake_images, batch_size, "class_coverage"):
            logits = classifier(Tensor(x)).data
            c = backend.to_numpy(logits.argmax(axis=1))
            c = np.bincount(c, minlength=logits.shape[1])
            counts = c if counts is None else counts + c
    fractions = counts / float(n)
    return fractions, int((fractions >= threshold).sum())


def accuracy(classifier, images, labels, batch_size=500):
    """Share of ``images`` (uint8 (N, 28, 28) or floats in [0, 1]) whose predicted class
    equals ``labels`` (host ints)."""
    correct = 0
    labels = backend.to_numpy(labels)
    if len(labels) != len(images):
        raise ValueError(f"accuracy: {len(images)} images but {len(labels)} labels")
    with eval_mode(classifier):
        for i, x in enumerate(unit_batches(images, batch_size, "accuracy")):
            predicted = backend.to_numpy(classifier(Tensor(x)).data.argmax(axis=1))
            correct += int((predicted == labels[i * batch_size : i * batch_size + len(x)]).sum())
    return correct / len(labels)
