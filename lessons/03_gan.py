# %% [markdown]
# # Lesson 03: generative adversarial networks
#
# A GAN trains two networks against each other (Goodfellow et al. 2014). The
# generator G turns noise z ~ N(0, I) into an image; the discriminator D
# outputs a logit l, the log-odds that its input is real. The minimax game
#
#     min_G max_D  E_x[log s(D(x))] + E_z[log(1 - s(D(G(z))))]      (s = sigmoid)
#
# has its equilibrium where G's samples follow the data distribution.
#
# **The non-saturating loss.** Early on, G is bad and D rejects its samples
# with confidence, s(l) ~ 0. Then log(1 - s(l)) is flat in l: G gets almost no
# gradient. Minimising -log s(l) instead (the "non-saturating" loss) has the
# same fixed point and a gradient that is large exactly there. The first figure
# shows both gradients.
#
# **Balancing D and G.** Each step updates D once on a real and a fake batch,
# then G once, through the *updated* D (a fresh forward pass). Adam with
# lr 2e-4 and beta1 = 0.5, as in DCGAN, keeps the two from running away.
#
# **Mode collapse.** G can win by producing a few kinds of images D currently
# accepts, dropping whole classes. We make it visible: a classifier trained on
# Fashion-MNIST (minigen/classifier.py) labels 5,000 samples after every epoch,
# and we count the classes that get a fair share (at least 5%; 10% is equal).
# Then a remedy in two parts. PacGAN (Lin et al. 2018): D judges pairs of
# samples at once, so a G that repeats itself produces pairs that are easy to
# spot. And an average of G's weights over training (an exponential moving
# average, Yazici et al. 2019): G keeps circling between modes as D chases it;
# the average sits in the middle of that orbit, and we sample from it.
#
# Full run (two 20-epoch runs): 33 minutes measured on 2 busy CPU cores, one
# thread; less on an idle machine. `--quick`: seconds.

# %%
import matplotlib.pyplot as plt
from _setup import setup

from minigen import backend, data, metrics, plots
from minigen.classifier import load_classifier
from minigen.models import sample_images
from minigen.train import train

args, out, train_images, test_images, _ = setup(
    "03_gan", "Lesson 03: GANs and mode collapse", epochs=20
)
np = backend.host
classes = data.CLASSES[args.dataset]

# %% [markdown]
# ## First, a toy: eight Gaussians on a ring
#
# Mode collapse is easiest to see in two dimensions. The data are points from
# 8 Gaussians (standard deviation 0.02) whose centres sit on a circle of radius
# 2. G maps 256-dimensional noise to a point through two hidden layers of 128
# units; D, one hidden layer of 128 units, gives a point (with PacGAN, a pair of
# points) a logit. The training step is the one `GAN.train_step`
# (minigen/models/gan.py) takes: update D on a real and a fake batch, then G
# through the updated D, with the same losses, `discriminator_loss` and the
# non-saturating `generator_loss`; Adam, lr 1e-3, beta1 = 0.5.
#
# Every `TOY_STEPS / 4` steps we draw G's samples and count the modes they cover:
# a mode is covered when at least 2% of 2,000 samples land within 0.2 of its
# centre (neighbouring centres are 1.53 apart). Then the remedy this lesson
# uses on Fashion-MNIST, on the same toy: D judges pairs (PacGAN: the same
# reshape as `MLPDiscriminator` with `pack=2`), and we sample from an average of
# G's weights (`GAN.update_average`, here with ema = 0.99 for a short run).

# %%
import time  # noqa: E402

from minigen import nn, no_grad, optim  # noqa: E402
from minigen.models.gan import discriminator_loss, generator_loss  # noqa: E402

RING_MODES, RING_RADIUS, RING_STD = 8, 2.0, 0.02
angles = 2 * np.pi * np.arange(RING_MODES) / RING_MODES
centres = RING_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
TOY_STEPS = 200 if args.quick else 1600
TOY_EVERY = TOY_STEPS // 4
TOY_Z = 256


def ring_batch(n, rng):
    """n points from the mixture: a random centre plus Gaussian noise, (n, 2) float32."""
    points = centres[rng.integers(0, RING_MODES, n)] + RING_STD * rng.standard_normal((n, 2))
    return backend.from_numpy(points.astype(np.float32))


def modes_covered(points):
    """How many modes get at least 2% of the points within 0.2 of their centre."""
    distance = np.linalg.norm(points[:, None, :] - centres[None], axis=2)
    near = distance.min(axis=1) < 0.2
    counts = np.bincount(distance.argmin(axis=1)[near], minlength=RING_MODES)
    return int((counts >= 0.02 * len(points)).sum())


def toy_generator():
    """(N, 256) noise -> (N, 2) points."""
    return nn.Sequential(
        nn.Linear(TOY_Z, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 2)
    )


class ToyDiscriminator(nn.Module):
    """(N, 2) points -> N / pack logits, each judging ``pack`` points at once."""

    def __init__(self, pack):
        super().__init__()
        self.pack = pack
        self.net = nn.Sequential(nn.Linear(2 * pack, 128), nn.ReLU(), nn.Linear(128, 1))

    def forward(self, x):
        return self.net(x.reshape(x.shape[0] // self.pack, 2 * self.pack))


def toy_gan(pack=1, ema=None, batch=256):
    """Train the toy GAN; return {step: 2,000 samples of G (of the average, with ema)}."""
    backend.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    G, D = toy_generator(), ToyDiscriminator(pack)
    average = None
    if ema:  # the average starts as a copy of G
        average = toy_generator()
        average.load_state_dict(G.state_dict())
    g_opt = optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    d_opt = optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    snapshots = {}
    for step in range(1, TOY_STEPS + 1):
        fake = G(backend.randn(batch, TOY_Z))
        d_opt.zero_grad()
        discriminator_loss(D(ring_batch(batch, rng)), D(fake.detach())).backward()
        d_opt.step()
        g_opt.zero_grad()
        D.requires_grad_(False)  # gradients through D, not for D
        generator_loss(D(fake)).backward()
        D.requires_grad_(True)
        g_opt.step()
        if ema:  # G_avg <- ema * G_avg + (1 - ema) * G
            for a, p in zip(average.parameters(), G.parameters()):
                a.data *= ema
                a.data += (1 - ema) * p.data
        if step % TOY_EVERY == 0:
            with no_grad():
                snapshots[step] = backend.to_numpy((average or G)(backend.randn(2000, TOY_Z)).data)
    return snapshots


toy_runs = {}
for label, options in (("plain GAN", {}), ("PacGAN pairs + averaged G", {"pack": 2, "ema": 0.99})):
    start = time.perf_counter()
    toy_runs[label] = toy_gan(**options)
    covered = [modes_covered(x) for x in toy_runs[label].values()]
    print(
        f"toy, {label}: {TOY_STEPS} steps in {time.perf_counter() - start:.1f} s; modes covered "
        + ", ".join(f"step {s}: {c}/8" for s, c in zip(toy_runs[label], covered))
    )

fig, axes = plt.subplots(2, 5, figsize=(13, 5.6), dpi=100)
target = backend.to_numpy(ring_batch(2000, np.random.default_rng(1)))
for row, (label, snapshots) in zip(axes, toy_runs.items()):
    panels = [("target", target)] + [(f"step {s}", x) for s, x in snapshots.items()]
    for ax, (title, points) in zip(row, panels):
        ax.scatter(points[:1000, 0], points[:1000, 1], s=2, alpha=0.5)
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", c="red", s=20, lw=1)
        if title != "target":
            title += f": {modes_covered(points)}/8 modes"
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    row[0].set_ylabel(label, fontsize=10)
fig.suptitle("8 Gaussians on a ring (red x: centres): samples of G during training")
fig.tight_layout()
fig.savefig(out / "toy_ring.png")
plt.close(fig)
print(f"saved {out / 'toy_ring.png'}")

# %% [markdown]
# Measured with seed 0 (the full run, 1,600 steps per GAN): the plain GAN's
# samples form a single blob at every snapshot, and the blob jumps from mode
# to mode (0, 1, 1 and 0 of 8 modes covered at steps 400, 800, 1200 and 1600):
# D learns to reject the mode G currently makes, and G runs to another one.
# With pairs for D and the averaged G, the samples spread over the whole ring
# and begin to settle on the modes (0, 0, 0 and 7 of 8 at the same steps). The plain
# GAN on Fashion-MNIST below does the same with classes instead of modes.

# %% [markdown]
# ## Two losses for G, and their gradients

# %%
logit = np.linspace(-8, 4, 200)
s = 1 / (1 + np.exp(-logit))
fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
ax.plot(s, s, label="minimax: d/dl log(1 - s(l)) = -s(l)")
ax.plot(s, s - 1, label="non-saturating: d/dl -log s(l) = s(l) - 1")
ax.set_xlabel("s(l) = D's probability that a fake is real")
ax.set_ylabel("gradient of G's loss w.r.t. the logit")
ax.legend(fontsize=8)
ax.set_title("early in training s(l) ~ 0: only the non-saturating loss pushes G")
fig.tight_layout()
fig.savefig(out / "generator_losses.png")
plt.close(fig)

# %% [markdown]
# ## Train the MLP GAN, watching class coverage

# %%
classifier = load_classifier(args.dataset)


def run(label, **options):
    coverage = []

    def watch(model, epoch, history):
        shares, covered = metrics.class_coverage(sample_images(model, 5000), classifier)
        coverage.append(covered)
        print(f"  {label} epoch {epoch + 1}: {covered} of 10 classes get >= 5% of samples")

    model, _, history = train(
        "mlp-gan", args.epochs, images=train_images, seed=args.seed, on_epoch_end=watch, **options
    )
    shares, covered = metrics.class_coverage(sample_images(model, 5000), classifier)
    print(
        f"{label}: class shares "
        + ", ".join(f"{c} {100 * p:.0f}%" for c, p in zip(classes, shares))
    )
    backend.manual_seed(1)
    plots.image_grid(
        sample_images(model, 64), out / f"samples_{label}.png", title=f"mlp-gan ({label})"
    )
    plots.loss_curves(
        {"D": history["d_loss"], "G": history["g_loss"]},
        out / f"losses_{label}.png",
        title=f"mlp-gan ({label}) losses per step",
    )
    return coverage, shares


coverage_plain, shares_plain = run("plain")

# %% [markdown]
# Some classes get far less than their 10%: the generator has settled on the
# modes that were easiest to pass off as real. Training longer does not bring
# them back; D keeps chasing whatever G currently makes, and G keeps moving
# between a few modes.
#
# ## The remedy: PacGAN (D judges pairs) and an averaged generator
#
# Measured with this seed: PacGAN alone covers all 10 classes in 9 of 20
# epochs but keeps oscillating and ends at 8; the average alone ends at 8
# (it smooths G, but the plain GAN's G has dropped a class for good). Together
# they cover all 10 classes in every epoch from the 10th on.

# %%
coverage_pac, shares_pac = run("remedy", pack=2, ema=0.999)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), dpi=100)
epochs = range(1, len(coverage_plain) + 1)
axes[0].plot(epochs, coverage_plain, "o-", label="plain")
axes[0].plot(epochs, coverage_pac, "o-", label="PacGAN + average")
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("classes with >= 5% of samples")
axes[0].set_ylim(0, 10.5)
axes[0].legend()
width = 0.4
axes[1].bar(np.arange(10) - width / 2, shares_plain, width, label="plain")
axes[1].bar(np.arange(10) + width / 2, shares_pac, width, label="PacGAN + average")
axes[1].axhline(0.05, color="k", lw=0.8, ls="--")
axes[1].set_xticks(range(10), classes, rotation=45, ha="right", fontsize=8)
axes[1].set_ylabel("share of samples")
axes[1].legend()
fig.tight_layout()
fig.savefig(out / "coverage.png")
plt.close(fig)
half = len(coverage_plain) // 2
for label, coverage in (("plain", coverage_plain), ("PacGAN + average", coverage_pac)):
    late = coverage[half:]
    print(
        f"{label}: final epoch {coverage[-1]}/10 classes; mean over the last {len(late)} epochs "
        f"{sum(late) / len(late):.1f}/10; all 10 classes covered in "
        f"{sum(c == 10 for c in coverage)} of {len(coverage)} epochs"
    )
print(f"figures in {out}/")

# %% [markdown]
# Read the coverage curve, not one epoch: a GAN's generator keeps moving, and
# the classes it covers change from epoch to epoch. The plain GAN keeps
# dropping the same class; with pairs for D and the averaged G, every class
# keeps its share.
