"""Worked solutions to the exercises at the end of lessons/03_gan.py.

One function per exercise; each prints what the exercise asks for, computed
(``_exercises.py`` says how to run them).
"""

from _exercises import run_exercises

from minigen import Tensor, backend, data, nn, no_grad, optim
from minigen.models import build
from minigen.models.gan import discriminator_loss, fake_loss, generator_loss

np = backend.host

# G's two losses, as functions of D's logits on fakes (lesson 03, "Two losses for G")
G_LOSSES = {
    "minimax": lambda logits: -fake_loss(logits),  # E log(1 - s(l)), minimised by G
    "non-saturating": generator_loss,  # E -log s(l)
}


def generator_gradient(model, z, loss_fn):
    """|dL/dtheta_G| for G's loss ``loss_fn`` on the fakes G(z), through D (D frozen)."""
    model.generator.zero_grad()
    model.discriminator.requires_grad_(False)
    loss_fn(model.discriminator(model.generator(z))).backward()
    model.discriminator.requires_grad_(True)
    return sum(float((p.grad * p.grad).sum()) for p in model.generator.parameters()) ** 0.5


def exercise_1(args, images):
    """The gradient ratio while D learns"""
    backend.manual_seed(args.seed)
    model = build("mlp-gan")  # the lesson's MLP GAN, from the library
    backend.manual_seed(7)
    z = backend.randn(256, model.z_dim)  # the same fakes at every moment
    first = data.scale_pixels(images.train[:512, None], "symmetric")
    d_opt = optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    marks = (0, 25, 50) if args.quick else (0, 25, 50, 100, 200, 400)
    for step in range(marks[-1] + 1):
        if step in marks:
            with no_grad():
                logits = backend.to_numpy(model.discriminator(model.generator(z)).data)
            norms = {k: generator_gradient(model, z, f) for k, f in G_LOSSES.items()}
            print(
                f"   after {step:3d} steps of D: mean s(l) on fakes "
                f"{float((1 / (1 + np.exp(-logits))).mean()):.4f}; |grad on G| minimax "
                f"{norms['minimax']:.2e}, non-saturating {norms['non-saturating']:.2e}, ratio "
                f"{norms['non-saturating'] / norms['minimax']:.1f}"
            )
        x = first[(step % 8) * 64 : (step % 8 + 1) * 64]
        with no_grad():
            fake = model.generator(backend.randn(64, model.z_dim))
        d_opt.zero_grad()
        discriminator_loss(model.discriminator(x), model.discriminator(fake)).backward()
        d_opt.step()


# The toy of lesson 03: eight Gaussians (std 0.02) on a circle of radius 2
ANGLES = 2 * np.pi * np.arange(8) / 8
CENTRES = 2.0 * np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1)


def modes_covered(points):
    """Modes with at least 2% of the points within 0.2 of their centre (lesson 03's rule)."""
    distance = np.linalg.norm(points[:, None, :] - CENTRES[None], axis=2)
    near = distance.min(axis=1) < 0.2
    counts = np.bincount(distance.argmin(axis=1)[near], minlength=8)
    return int((counts >= 0.02 * len(points)).sum())


def toy_gan(g_loss, steps, seed, pack=1):
    """Lesson 03's toy GAN with G's loss ``g_loss``; D judges ``pack`` points at once.
    Returns {step: (modes covered, mean s(l) of D on 2,000 fakes)} at four snapshots."""
    backend.manual_seed(seed)
    rng = np.random.default_rng(seed)
    G = nn.Sequential(
        nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 2)
    )
    net = nn.Sequential(nn.Linear(2 * pack, 128), nn.ReLU(), nn.Linear(128, 1))

    def D(x):
        return net(x.reshape(x.shape[0] // pack, 2 * pack))

    g_opt = optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    d_opt = optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999))
    snapshots = {}
    for step in range(1, steps + 1):
        points = CENTRES[rng.integers(0, 8, 256)] + 0.02 * rng.standard_normal((256, 2))
        x = backend.from_numpy(points.astype(np.float32))
        fake = G(backend.randn(256, 256))
        d_opt.zero_grad()
        discriminator_loss(D(x), D(fake.detach())).backward()
        d_opt.step()
        g_opt.zero_grad()
        net.requires_grad_(False)
        g_loss(D(fake)).backward()
        net.requires_grad_(True)
        g_opt.step()
        if step % (steps // 4) == 0:
            with no_grad():
                samples = G(backend.randn(2000, 256)).data
                s = D(Tensor(samples)).sigmoid().data
            snapshots[step] = (modes_covered(backend.to_numpy(samples)), float(s.mean()))
    return snapshots


def exercise_2(args, images):
    """The toy ring with G's minimax loss"""
    steps = 100 if args.quick else 1600
    for name, loss_fn in G_LOSSES.items():
        snapshots = toy_gan(loss_fn, steps, args.seed)
        print(
            f"   {name:15s}: "
            + ", ".join(
                f"step {s}: {m}/8 modes, D's mean s(l) {p:.3f}" for s, (m, p) in snapshots.items()
            )
        )


def exercise_3(args, images):
    """How long the averaged G remembers its start"""
    decays = (0.9, 0.99) if args.quick else (0.9, 0.99, 0.999)
    for ema in decays:
        backend.manual_seed(args.seed)
        model = build("mlp-gan", ema=ema)  # the average starts as a copy of G
        start = [p.data.copy() for p in model.generator_ema.parameters()]
        for p in model.generator.parameters():
            p.data += 1.0  # G moves away from its start and stays there
        t_predicted = int(np.ceil(np.log(0.01) / np.log(ema)))
        for _ in range(t_predicted):
            model.update_average()
        # the average is share * start + (1 - share) * G: read the share off one weight array
        a, g, s = (
            backend.to_numpy(t)
            for t in (
                model.generator_ema.parameters()[0].data,
                model.generator.parameters()[0].data,
                start[0],
            )
        )
        share = float(np.median((a - g) / (s - g)))
        print(
            f"   ema {ema}: below 1% after log(0.01) / log(ema) = {t_predicted} steps; "
            f"measured share of the start after them {share:.4f}"
        )


run_exercises("lesson 03", globals())
