"""Worked solutions to the exercises at the end of lessons/06_conv_vae.py.

One function per exercise; each prints what the exercise asks for, computed
(``_exercises.py`` says how to run them).
"""

from _exercises import run_exercises

from minigen import Tensor, backend, metrics, nn
from minigen.models import build
from minigen.train import train

np = backend.host


def exercise_1(args, images):
    """Parameters against the latent size"""
    for name in ("conv-vae", "mlp-vae"):
        for latent in (2, 16, 64):
            model = build(name, latent_dim=latent)
            total = sum(p.size for p in model.parameters())
            # the layers that meet the latent: the encoder's two heads and the decoder's first layer
            at_latent = sum(
                p.size
                for key, p in model.named_parameters()
                if key.startswith(("encoder.mu.", "encoder.logvar.", "decoder.net.0."))
            )
            print(
                f"   {name}, latent {latent:2d}: {total:9,d} parameters, {at_latent:9,d} of them "
                f"({at_latent / total:.0%}) in the three layers at the latent"
            )


def exercise_2(args, images):
    """Move every test image two pixels"""
    epochs = 1 if args.quick else 2
    shifted = np.roll(images.test, 2, axis=2)  # 2 pixels to the right (the border is empty)
    for name, options in (("mlp-vae", {"latent_dim": 16}), ("conv-vae", {})):
        model, _, _ = train(
            name, epochs, images=images.train, seed=args.seed, quiet=True, **options
        )
        backend.manual_seed(args.seed)
        plain = metrics.negative_elbo(model, images.test)
        backend.manual_seed(args.seed)
        moved = metrics.negative_elbo(model, shifted)
        print(
            f"   {name} (latent 16, {epochs} epoch(s)): test -ELBO {plain:.1f}, shifted "
            f"{moved:.1f}: {moved - plain:+.1f} nats per image ({(moved - plain) / plain:+.1%})"
        )


def exercise_3(args, images):
    """The transposed convolution's output size"""
    x = Tensor(backend.from_numpy(np.zeros((1, 64, 7, 7), dtype=np.float32)))
    for kernel, stride, padding in ((4, 2, 1), (3, 2, 1), (5, 2, 2), (2, 2, 0), (3, 1, 1)):
        layer = nn.ConvTranspose2d(64, 32, kernel, stride=stride, padding=padding)
        out = layer(x)
        formula = (7 - 1) * stride - 2 * padding + kernel
        print(
            f"   ConvTranspose2d kernel {kernel}, stride {stride}, padding {padding} on 7x7: "
            f"{out.shape[2]}x{out.shape[3]} ((H - 1) s - 2 p + k = {formula})"
        )


run_exercises("lesson 06", globals())
