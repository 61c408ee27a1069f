"""Worked solutions to the exercises at the end of lessons/04_dcgan.py.

One function per exercise; each prints what the exercise asks for, computed
(``_exercises.py`` says how to run them).
"""

from _exercises import run_exercises

from minigen import Tensor, backend, data, metrics, nn
from minigen.classifier import load_classifier
from minigen.models import build
from minigen.models.gan import discriminator_loss, generator_loss

np = backend.host


def features(classifier, images01):
    """The classifier's 128-d features of images in [0, 1] (host (N, 1, 28, 28)), float64."""
    parts = []
    with nn.eval_mode(classifier):
        for i in range(0, len(images01), 500):
            x = backend.from_numpy(images01[i : i + 500].astype(np.float32))
            parts.append(backend.to_numpy(classifier.features(Tensor(x)).data))
    return np.concatenate(parts).astype(np.float64)


def exercise_1(args, images):
    """The floor of the Fréchet distance"""
    classifier = load_classifier(images.dataset)
    half = len(images.test) // 2
    pixels = images.test[:, None].astype(np.float64) / 255
    feats_a, feats_b = features(classifier, pixels[:half]), features(classifier, pixels[half:])
    sizes = (32, 64, 128) if args.quick else (250, 500, 1000, 2500, 5000)
    for n in sizes:
        fd = metrics.frechet_distance(feats_a[:n], feats_b[:n])
        print(f"   real vs real, N = {n:5d} per side: {fd:8.3f}   (N x distance {n * fd:9.1f})")


def two_terms(feats_a, feats_b):
    """(||mu_a - mu_b||^2, the trace term) of the Fréchet distance between two feature sets."""
    mean_term = float(((feats_a.mean(axis=0) - feats_b.mean(axis=0)) ** 2).sum())
    return mean_term, metrics.frechet_distance(feats_a, feats_b) - mean_term


def box_blur(x):
    """Each pixel replaced by the mean of its 3x3 neighbourhood (edges repeated), (N, 1, 28, 28)."""
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    return sum(padded[:, :, i : i + 28, j : j + 28] for i in range(3) for j in range(3)) / 9


def exercise_2(args, images):
    """Which term of the distance sees a change"""
    classifier = load_classifier(images.dataset)
    half = len(images.test) // 2
    pixels = images.test[:, None].astype(np.float64) / 255
    reference = features(classifier, pixels[:half])
    others = pixels[half : 2 * half]
    for label, changed in (
        ("the other half, unchanged", others),
        ("darkened to 70%", 0.7 * others),
        ("blurred (3x3 box)", box_blur(others)),
        ("shifted 3 pixels right", np.roll(others, 3, axis=3)),
    ):
        mean_term, trace_term = two_terms(reference, features(classifier, changed))
        print(
            f"   {label:26s}: distance {mean_term + trace_term:8.2f} = mean term {mean_term:8.2f}"
            f" + trace term {trace_term:8.2f}   (N = {half})"
        )


def gradient_norm(module):
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return sum(float((g * g).sum()) for g in grads) ** 0.5 if grads else 0.0


def exercise_3(args, images):
    """Forget the detach in D's step"""
    backend.manual_seed(args.seed)
    model = build("dcgan")
    G, D = model.generator, model.discriminator
    x = data.scale_pixels(images.train[:64, None], "symmetric")
    z = backend.randn(64, model.z_dim)
    for detach in (True, False):
        G.zero_grad()
        D.zero_grad()
        fake = G(z)
        discriminator_loss(D(x), D(fake.detach() if detach else fake)).backward()
        print(
            f"   {'with' if detach else 'without'} detach: |gradient on G's weights| from D's "
            f"loss {gradient_norm(G):.3e}"
        )
    from_d = {k: p.grad.copy() for k, p in G.named_parameters()}  # the run without detach
    G.zero_grad()
    D.requires_grad_(False)
    generator_loss(D(G(z))).backward()  # G's own loss, on the same fakes
    D.requires_grad_(True)
    dot = sum(float((from_d[k] * p.grad).sum()) for k, p in G.named_parameters())
    cosine = dot / (gradient_norm(G) * sum(float((g * g).sum()) for g in from_d.values()) ** 0.5)
    print(f"   cosine between that gradient and the gradient of G's own loss: {cosine:.3f}")


run_exercises("lesson 04", globals())
