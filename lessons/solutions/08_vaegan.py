"""Worked solutions to the exercises at the end of lessons/08_vaegan.py.

One function per exercise; each prints what the exercise asks for, computed
(``_exercises.py`` says how to run them).
"""

from _exercises import run_exercises

from minigen import backend, data
from minigen.models import build
from minigen.models.gan import generator_loss
from minigen.train import train

np = backend.host


def exercise_1(args, images):
    """Move the gate's margin"""
    # the first 6,400 training images: 100 steps per run (128 and 2 steps with --quick)
    subset = images.train[: 128 if args.quick else 6400]
    margins = (0.0, 0.7) if args.quick else (0.0, 0.35, 0.7, 1.5)
    for margin in margins:
        _, _, history = train(
            "vae-gan", 1, images=subset, seed=args.seed, quiet=True, margin=margin
        )
        d_loss = np.asarray(history["d_loss"])
        last = max(1, len(d_loss) // 10)  # the last tenth of the steps
        print(
            f"   margin {margin:4.2f}: D paused on {(d_loss <= margin).mean():6.1%} of "
            f"{len(d_loss)} steps; over the last tenth, D's loss {d_loss[-last:].mean():.3f}, "
            f"the decoder's GAN term {np.mean(history['gan'][-last:]):.3f}"
        )


def decoder_gradient(model, loss):
    """|d loss / d decoder weights| (the decoder's grads cleared first; D stays frozen)."""
    model.decoder.zero_grad()
    loss.backward()
    return sum(float((p.grad * p.grad).sum()) for p in model.decoder.parameters()) ** 0.5


def exercise_2(args, images):
    """The two pulls on the decoder, and gamma"""
    backend.manual_seed(args.seed)
    model = build("vae-gan")  # untrained, the library's initialisation
    x = data.scale_pixels(images.train[: model.batch_size, None], "symmetric")
    dis = model.discriminator
    dis.requires_grad_(False)
    model.encoder.requires_grad_(False)
    mu, _ = model.encoder(x)
    terms = {
        "L_feat": lambda: model.feature_loss(x, model.decoder(mu)),
        "GAN term": lambda: generator_loss(dis(model.decoder(mu))),
    }
    sizes = {}
    for name, make in terms.items():
        loss = make()
        sizes[name] = (loss.item(), decoder_gradient(model, loss))
        print(
            f"   {name:8s}: value {sizes[name][0]:10.3f}, |gradient on the decoder| {sizes[name][1]:.3e}"
        )
    ratio = sizes["L_feat"][1] / sizes["GAN term"][1]
    print(
        f"   the feature loss pulls {ratio:.0f} times harder; gamma = {1 / ratio:.2g} would make "
        f"the two pulls equal (the library's gamma: {model.gamma})"
    )


def box_blur(x):
    """Each pixel replaced by the mean of its 3x3 neighbourhood (edges repeated), (N, 28, 28)."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
    return sum(padded[:, i : i + 28, j : j + 28] for i in range(3) for j in range(3)) / 9


def sharpness(images01):
    """Lesson 08's measure: mean absolute difference between neighbouring pixels."""
    x = images01.reshape(-1, 28, 28)
    return float((np.abs(np.diff(x, axis=1)).mean() + np.abs(np.diff(x, axis=2)).mean()) / 2)


def exercise_3(args, images):
    """What a sharpness of 0.05 looks like"""
    x = images.test[:500].astype(np.float64) / 255
    for times in range(4):
        print(
            f"   real test images blurred {times} time(s) by a 3x3 box: sharpness {sharpness(x):.4f}"
        )
        x = box_blur(x)


run_exercises("lesson 08", globals())
