"""Worked solutions to the exercises at the end of lessons/10_stable_gans.py.

One function per exercise; each prints what the exercise asks for, computed
(``_exercises.py`` says how to run them).
"""

from _exercises import run_exercises

from minigen import backend, nn, no_grad, optim
from minigen.models.gan import discriminator_loss, generator_loss
from minigen.models.penalties import gradient_penalty, input_gradient, r1_penalty, squared_norms

np = backend.host

# The ring of 8 Gaussians of lessons 03 and 10, and lesson 10's toy networks
ANGLES = 2 * np.pi * np.arange(8) / 8
RING = 2.0 * np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1)
STD, BATCH, Z, HIDDEN = 0.02, 128, 16, 64


def ring_batch(n, rng):
    points = RING[rng.integers(0, 8, n)] + STD * rng.standard_normal((n, 2))
    return backend.from_numpy(points.astype(np.float32))


def toy_generator():
    return nn.Sequential(
        nn.Linear(Z, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 2)
    )


def toy_critic(batch_norm=False):
    norm = [nn.BatchNorm1d(HIDDEN)] if batch_norm else []
    return nn.Sequential(
        nn.Linear(2, HIDDEN), *norm, nn.LeakyReLU(0.2), nn.Linear(HIDDEN, HIDDEN), nn.LeakyReLU(0.2),
        nn.Linear(HIDDEN, 1),
    )  # fmt: skip


def exercise_1(args, images):
    """The penalty's weight lambda"""
    steps = 20 if args.quick else 500
    for weight in (0.0, 1.0, 10.0):
        backend.manual_seed(args.seed)
        rng = np.random.default_rng(args.seed)
        G, C = toy_generator(), toy_critic()  # G stays as it is: only the critic trains
        opt = optim.Adam(C.parameters(), lr=1e-3, betas=(0.5, 0.9))
        for _ in range(steps):
            x = ring_batch(BATCH, rng)
            with no_grad():
                fake = G(backend.randn(BATCH, Z)).data
            loss = -(C(x).mean() - C(fake).mean())
            if weight:
                loss = loss + weight * gradient_penalty(C, x, fake)
            opt.zero_grad()
            loss.backward()
            opt.step()
        x = ring_batch(1000, rng)
        with no_grad():
            fake = G(backend.randn(1000, Z)).data
            w_hat = (C(x).mean() - C(fake).mean()).item()
        eps = backend.from_numpy(rng.uniform(size=(1000, 1)).astype(np.float32))
        norms = (
            backend.to_numpy(squared_norms(input_gradient(C, eps * x + (1 - eps) * fake)).data)
            ** 0.5
        )
        print(
            f"   lambda {weight:4.1f}, {steps} critic steps: W-hat {w_hat:8.3f}; ||grad_x C|| on "
            f"interpolates: mean {norms.mean():7.3f}, from {norms.min():.3f} to {norms.max():.3f}"
        )


def exercise_2(args, images):
    """Why the critic has no BatchNorm"""
    rng = np.random.default_rng(args.seed)
    first = ring_batch(64, rng)
    second = backend.xp().concatenate([first[:1], ring_batch(63, rng)])  # the same sample 0
    for batch_norm in (False, True):
        backend.manual_seed(args.seed)
        C = toy_critic(batch_norm)  # training mode: BatchNorm uses the batch's statistics
        g_first = backend.to_numpy(input_gradient(C, first).data)[0]
        g_second = backend.to_numpy(input_gradient(C, second).data)[0]
        gap = float(np.abs(g_first - g_second).max() / np.abs(g_first).max())
        print(
            f"   {'with' if batch_norm else 'without'} BatchNorm: sample 0's input gradient "
            f"{g_first.round(4)} in one batch, {g_second.round(4)} in another; relative difference {gap:.1e}"
        )


def modes_and_quality(points):
    """(modes with >= 2% of the points within 0.2, share of points within 3 sigma of a centre)."""
    distance = np.linalg.norm(points[:, None, :] - RING[None], axis=2)
    near = distance.min(axis=1) < 0.2
    counts = np.bincount(distance.argmin(axis=1)[near], minlength=8)
    return int((counts >= 0.02 * len(points)).sum()), float((distance.min(axis=1) < 3 * STD).mean())


def exercise_3(args, images):
    """R1's weight gamma on the ring"""
    steps = 20 if args.quick else 600
    for gamma in (0.0, 1.0, 10.0):
        backend.manual_seed(args.seed)
        rng = np.random.default_rng(args.seed)
        G, D = toy_generator(), toy_critic()
        g_opt = optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
        d_opt = optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
        for _ in range(steps):  # lesson 10's toy step: one D update, then one G update
            x = ring_batch(BATCH, rng)
            with no_grad():
                fake = G(backend.randn(BATCH, Z)).data
            d_loss = discriminator_loss(D(x), D(fake))
            if gamma:
                d_loss = d_loss + gamma / 2 * r1_penalty(D, x)
            d_opt.zero_grad()
            d_loss.backward()
            d_opt.step()
            g_opt.zero_grad()
            D.requires_grad_(False)
            generator_loss(D(G(backend.randn(BATCH, Z)))).backward()
            D.requires_grad_(True)
            g_opt.step()
        with no_grad():
            samples = backend.to_numpy(G(backend.randn(2000, Z)).data)
        modes, good = modes_and_quality(samples)
        print(
            f"   R1 gamma {gamma:4.1f}, {steps} steps: {modes}/8 modes covered, {good:.1%} of "
            f"2,000 samples within 3 sigma of a centre"
        )


run_exercises("lesson 10", globals())
