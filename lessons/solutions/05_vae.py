"""Worked solutions to the exercises at the end of lessons/05_vae.py.

One function per exercise; each prints what the exercise asks for, computed
(``_exercises.py`` says how to run them).
"""

from _exercises import run_exercises

from minigen import Tensor, backend, data, nn, no_grad
from minigen.classifier import load_classifier
from minigen.models import build
from minigen.train import train

np = backend.host


def sharpness(images01):
    """Mean absolute difference between neighbouring pixels (lesson 08's measure), in [0, 1]."""
    x = backend.to_numpy(images01).reshape(-1, 28, 28)
    return float((np.abs(np.diff(x, axis=1)).mean() + np.abs(np.diff(x, axis=2)).mean()) / 2)


def test_terms(model, test):
    """Reconstruction term and KL of the test images, nats per image (one z per image)."""
    rec = kl = 0.0
    with no_grad(), nn.eval_mode(model):
        for i in range(0, len(test), 500):
            x = data.scale_pixels(test[i : i + 500, None])
            losses = model.losses(x)
            rec += losses["rec"].item() * len(x)
            kl += losses["kl"].item() * len(x)
    return rec / len(test), kl / len(test)


def exercise_1(args, images):
    """A beta-VAE: weigh the KL by beta"""
    epochs = 1 if args.quick else 5
    for beta in (0.5, 1.0, 4.0):
        backend.manual_seed(args.seed)
        model = build("mlp-vae")
        opt = model.make_optimizers()["adam"]
        for epoch in range(epochs):
            for x, _ in data.batches(
                images.train, batch_size=model.batch_size, seed=args.seed, epoch=epoch
            ):
                losses = model.losses(x)
                opt.zero_grad()
                (losses["rec"] + beta * losses["kl"]).backward()  # beta = 1: the ELBO
                opt.step()
        rec, kl = test_terms(model, images.test)
        backend.manual_seed(args.seed + 1)
        with no_grad(), nn.eval_mode(model):
            recon = model.reconstruct(data.scale_pixels(images.test[:500, None])).data
            samples = model.sample(500).data
        print(
            f"   beta {beta:3.1f}: test reconstruction {rec:6.1f} + KL {kl:5.1f} nats = -ELBO "
            f"{rec + kl:6.1f}; sharpness of reconstructions {sharpness(recon):.4f}, of samples "
            f"{sharpness(samples):.4f} ({epochs} epoch(s))"
        )
    print(f"   real test images: sharpness {sharpness(images.test[:500] / 255.0):.4f}")


TRAINED = {}  # exercises 2 and 3 look at the same trained model: train it once


def trained_vae(args, images):
    """The lesson's mlp-vae, trained as the lesson trains it (1 epoch with --quick, else 10)."""
    if "mlp-vae" in TRAINED:
        return TRAINED["mlp-vae"]
    model, _, _ = train(
        "mlp-vae", 1 if args.quick else 10, images=images.train, seed=args.seed, quiet=True
    )
    TRAINED["mlp-vae"] = model
    return model


def kl_per_dimension(model, test):
    """The KL of each latent dimension, averaged over the test images, (latent,)."""
    with no_grad(), nn.eval_mode(model):
        mu, logvar = model.encoder(data.scale_pixels(test[:, None]))
        per_entry = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar)  # (N, latent): the KL's summands
        return backend.to_numpy(per_entry.data).mean(axis=0)


def exercise_2(args, images):
    """How many latent dimensions carry information"""
    model = trained_vae(args, images)
    kl = kl_per_dimension(model, images.test)
    order = np.argsort(kl)[::-1]
    print(
        "   KL per dimension (nats, largest first): "
        + ", ".join(f"z[{j}] {kl[j]:.2f}" for j in order)
    )
    print(
        f"   dimensions with KL above 0.1 nat: {int((kl > 0.1).sum())} of {len(kl)}; "
        f"total KL {kl.sum():.1f} nats per image"
    )


def exercise_3(args, images):
    """Walk one latent axis"""
    model = trained_vae(args, images)
    classifier = load_classifier(images.dataset)
    classes = data.CLASSES[images.dataset]
    kl = kl_per_dimension(model, images.test)
    steps = np.linspace(-3, 3, 7, dtype=np.float32)
    with no_grad(), nn.eval_mode(model), nn.eval_mode(classifier):
        mu, _ = model.encoder(data.scale_pixels(images.test[:1, None]))
        start = backend.to_numpy(mu.data)[0]
        print(
            f"   from the posterior mean of test image 0 (class {classes[int(images.test_labels[0])]}):"
        )
        for label, j in (("most used", int(np.argmax(kl))), ("least used", int(np.argmin(kl)))):
            z = np.repeat(start[None], len(steps), axis=0)
            z[:, j] = steps  # walk z[j] alone, the others stay at the posterior mean
            decoded = model.decoder(Tensor(backend.from_numpy(z))).sigmoid().data
            pixels = backend.to_numpy(decoded)
            predicted = backend.to_numpy(classifier(Tensor(decoded)).data).argmax(axis=1)
            change = np.abs(np.diff(pixels, axis=0)).mean()
            print(
                f"   z[{j}] ({label}, KL {kl[j]:.2f}) from -3 to 3: classes "
                + ", ".join(classes[k] for k in predicted)
                + "; ink (mean pixel) "
                + " ".join(f"{v:.3f}" for v in pixels.mean(axis=(1, 2, 3)))
                + f"; mean pixel change per step {change:.4f}"
            )


run_exercises("lesson 05", globals())
