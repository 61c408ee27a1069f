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
# same fixed point and a gradient that is large exactly there. The lesson
# measures both gradients on a real discriminator.
#
# **Balancing D and G.** Each step updates D once on a real and a fake batch,
# then G once, through the *updated* D (a fresh forward pass). Adam with
# lr 2e-4 and beta1 = 0.5, as in DCGAN, keeps the two from running away.
#
# **Mode collapse.** G can win by producing a few kinds of images D currently
# accepts, dropping whole classes. We make it visible: a classifier trained on
# Fashion-MNIST labels 5,000 samples after every epoch, and we count the
# classes that get a fair share (at least 5%; 10% is equal). Then a remedy in
# two parts. PacGAN (Lin et al. 2018): D judges pairs of samples at once, so a
# G that repeats itself produces pairs that are easy to spot. And an average of
# G's weights over training (an exponential moving average, Yazici et al.
# 2019): G keeps circling between modes as D chases it; the average sits in the
# middle of that orbit, and we sample from it.
#
# The lesson first writes the MLP GAN out from `minigen.nn` pieces and checks
# one training step against the library's; then it trains that same step on a
# 2-D toy, where collapse and the remedy show in seconds; it measures the two
# generator gradients on a real discriminator; and it trains the library's
# model on Fashion-MNIST twice, plain and with the remedy.
#
# The library code it relies on, to open alongside:
#
# - minigen/models/gan.py: `MLPGenerator`, `MLPDiscriminator` (and its `pack`),
#   `dcgan_init_`, `real_loss`, `fake_loss`, `discriminator_loss`,
#   `generator_loss`, `GAN.train_step`, `GAN.update_average`, `GAN.sample`
# - minigen/nn/losses.py: `binary_cross_entropy_with_logits`
# - minigen/optim.py: `Adam`; minigen/train.py: `train`
# - minigen/classifier.py: `load_classifier`; minigen/metrics.py:
#   `class_coverage`, `accuracy`; minigen/models/base.py: `sample_images`
#
# Options of this lesson besides the common ones: `--remedy` picks what the
# second Fashion-MNIST run uses, `pac+ema` (default: PacGAN pairs and the
# averaged G), `pac` (PacGAN alone) or `ema` (the averaged G alone); the first
# run is always the plain GAN. So the four variants of the ablation are three
# runs of this lesson.
#
# Full run: 6.2 minutes of wall time (6:11) and 6.1 of CPU time (368 s) on a
# 2-core Intel Xeon (AVX-512, OpenBLAS SkylakeX kernel) with one BLAS thread
# (OPENBLAS_NUM_THREADS=1), another lesson running on the other core. The same
# machine took 8.0 to 10.3 minutes in an earlier session, when it was busier: a
# shared machine's times move. `--quick`: seconds.
#
# To reproduce the numbers marked "a full run": `OPENBLAS_NUM_THREADS=1
# python lessons/03_gan.py` (and `--remedy pac`, `--remedy ema`). They are seed
# 0's; the spreads beside them are over seeds 0, 1 and 2 (`--seed`) on that
# machine. The digits repeat exactly only on the same CPU, BLAS kernel and
# thread count: another one sums the floats in another order, and a GAN's
# training carries the difference far. On another machine your run should land
# inside the spread, and the lesson prints whether it does. Three seeds are few,
# and the counts here are small: a 2-core AMD EPYC (OpenBLAS Haswell kernel)
# printed an average covering all 10 classes in 6 of 12 epochs for seed 0,
# outside this spread.

# %%
import time

import matplotlib.pyplot as plt
from _setup import against_full_runs, relative_gap, setup

from minigen import Tensor, backend, data, metrics, nn, no_grad, optim, plots
from minigen.classifier import load_classifier
from minigen.models import build, sample_images, to_unit_range
from minigen.nn import functional as F
from minigen.train import train

REMEDIES = {"pac+ema": {"pack": 2, "ema": 0.999}, "pac": {"pack": 2}, "ema": {"ema": 0.999}}


def add_options(parser):
    parser.add_argument(
        "--remedy",
        choices=list(REMEDIES),
        default="pac+ema",
        help="the second run: PacGAN pairs and the averaged G (default), or one of them",
    )


lesson_start = time.perf_counter()
args, out, train_images, test_images, test_labels = setup(
    "03_gan", "Lesson 03: GANs and mode collapse", epochs=12, add_options=add_options
)
np = backend.host
classes = data.CLASSES[args.dataset]
# What this lesson's full runs (default options, full Fashion-MNIST; "pac" and "ema" with
# --remedy pac and --remedy ema) printed, seeds 0, 1, 2. Toy: modes covered of 8 at the four
# snapshots, one tuple per seed. Per Fashion-MNIST series: classes covered after the last
# epoch, epochs (of 12) with all 10 covered, and where there is an average, classes covered
# after epochs 1 and 3 (the average's warm-up).
FULL_RUN = {
    "toy": {
        "plain GAN": ((0, 0, 1, 1), (0, 0, 1, 1), (1, 0, 1, 0)),
        "PacGAN pairs + averaged G": ((0, 0, 0, 7), (0, 0, 0, 5), (0, 0, 0, 7)),
    },
    "s(l) after D": (0.0077, 0.0063, 0.0072),  # D's mean s(l) on G's fakes after 200 steps
    "gradient ratio": (129.56, 160.27, 140.17),  # then: non-saturating / minimax, G's weights
    "plain": {"final": (8, 8, 8), "all ten": (0, 0, 0)},
    "pac+ema": {
        "final": (10, 10, 10),
        "all ten": (4, 1, 4),
        "epoch 1": (1, 1, 1),
        "epoch 3": (6, 6, 7),
    },
    "pac+ema, G itself": {
        "final": (10, 8, 10),
        "all ten": (2, 2, 3),
        "epoch 1": (7, 3, 5),
        "epoch 3": (8, 8, 9),
    },
    "pac": {"final": (9, 10, 9), "all ten": (3, 6, 4)},
    "ema": {"final": (9, 9, 9), "all ten": (0, 0, 0), "epoch 1": (1, 1, 1), "epoch 3": (5, 7, 5)},
    "ema, G itself": {
        "final": (9, 9, 9),
        "all ten": (0, 0, 0),
        "epoch 1": (4, 6, 4),
        "epoch 3": (7, 9, 5),
    },
    "minutes": 6.2,  # seed 0, on the machine the header names
}

# %% [markdown]
# ## What the game measures: the best D, and a Jensen-Shannon divergence
#
# Write D(x) = s(l(x)) in (0, 1) and p_g for the distribution of G(z). The
# value of the game is an integral over images x:
#
#     V(D, G) = E_{x~p_data}[log D(x)] + E_{x~p_g}[log(1 - D(x))]
#             = integral of  p_data(x) log D(x) + p_g(x) log(1 - D(x))  dx
#
# **The best D for a fixed G.** Each x can be treated on its own: a log y +
# b log(1 - y), with a, b >= 0, is concave in y in (0, 1) and its derivative
# a / y - b / (1 - y) is zero at y = a / (a + b). So
#
#     D*(x) = p_data(x) / (p_data(x) + p_g(x))
#
# the probability that x came from the data, when data and fakes are shown
# equally often.
#
# **The value at D*.** With the mixture m = (p_data + p_g) / 2,
# p_data / (p_data + p_g) = (p_data / m) / 2, and likewise for p_g, so
#
#     V(D*, G) = E_{p_data}[log(p_data / m)] + E_{p_g}[log(p_g / m)] - 2 log 2
#              = KL(p_data || m) + KL(p_g || m) - log 4
#              = 2 JSD(p_data, p_g) - log 4
#
# The Jensen-Shannon divergence is never negative and is zero only when
# p_g = p_data. So if D were always at its best, G minimising V would
# minimise the JSD: the game's minimum, -log 4, is reached exactly when G's
# samples follow the data, and there D* = 1/2 everywhere. D's loss below is
# -V on a batch, so a D at its best has loss log 4 - 2 JSD: log 4 = 1.386 when
# it cannot tell. Two cautions: a real D is a network trained a step at a
# time, not D*; and when p_data and p_g do not overlap the JSD is log 2
# whatever the distance between them, so V gives G nothing to follow (one
# reason for the non-saturating loss above, and for lesson 10's Wasserstein
# critic).
#
# A check on a toy with 6 possible "images", where every sum can be done:

# %%
p_data_toy = np.array([0.30, 0.25, 0.20, 0.15, 0.10, 0.00])
p_g_toy = np.array([0.05, 0.05, 0.10, 0.20, 0.30, 0.30])


def game_value(d):
    """V(D, G) on the toy for D given as its probabilities of 'real' (..., 6); 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        real = np.where(p_data_toy > 0, p_data_toy * np.log(d), 0.0)
        fake = np.where(p_g_toy > 0, p_g_toy * np.log(1 - d), 0.0)
    return real.sum(axis=-1) + fake.sum(axis=-1)


d_star = p_data_toy / (p_data_toy + p_g_toy)
mix = (p_data_toy + p_g_toy) / 2
jsd = 0.5 * sum((p[p > 0] * np.log(p[p > 0] / mix[p > 0])).sum() for p in (p_data_toy, p_g_toy))
others = np.random.default_rng(0).uniform(0.001, 0.999, (10_000, 6))  # 10,000 other Ds
best_other = game_value(others).max()
print(
    f"toy: V(D*, G) {game_value(d_star):.6f}, 2 JSD - log 4 {2 * jsd - np.log(4):.6f}; "
    f"the best of 10,000 random Ds: {best_other:.6f}"
)
assert abs(game_value(d_star) - (2 * jsd - np.log(4))) < 1e-12 and best_other < game_value(d_star)

# %% [markdown]
# ## Build it: G, D, the two losses, one step
#
# The MLP GAN of docs/reference-models.md: G maps z (64) through Linear 256,
# Linear 512 (LeakyReLU 0.2 after each) to Linear 784 and tanh, an image in
# [-1, 1]; D maps an image (with PacGAN, `pack` images side by side) through
# Linear 512 and Linear 256 (LeakyReLU 0.2) to one logit. The attribute names
# are the library's (`MLPGenerator`, `MLPDiscriminator`), so that the
# library's weights load into ours with `load_state_dict`: the checks below
# start from its initialisation (`dcgan_init_`: weights N(0, 0.02), biases 0).
#
# With BCE(l, t) = -t log s(l) - (1 - t) log(1 - s(l)), computed from the
# logit l without forming s(l) (`binary_cross_entropy_with_logits`, stable for
# large |l|):
#
#     D's loss = BCE(l_real, 1) + BCE(l_fake, 0) = -log s(l_real) - log(1 - s(l_fake))
#     G's loss = BCE(l_fake, 1) = -log s(l_fake)          (non-saturating)
#
# each averaged over its batch.

# %%
Z_DIM = 64


def make_generator():
    """z (N, 64) -> (N, 1, 28, 28) in [-1, 1]."""
    return nn.Sequential(
        nn.Linear(Z_DIM, 256),
        nn.LeakyReLU(0.2),
        nn.Linear(256, 512),
        nn.LeakyReLU(0.2),
        nn.Linear(512, 784),
        nn.Tanh(),
        nn.Unflatten((1, 28, 28)),
    )


class Discriminator(nn.Module):
    """(N, 1, 28, 28) -> N / pack logits: ``pack`` images, flattened side by side, per logit."""

    def __init__(self, pack=1):
        super().__init__()
        self.pack = pack
        self.net = nn.Sequential(
            nn.Linear(784 * pack, 512),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 1),
        )

    def forward(self, x):
        return self.net(x.reshape(x.shape[0] // self.pack, 784 * self.pack))


def d_loss_fn(real_logits, fake_logits):
    """D's loss: BCE(l_real, 1) + BCE(l_fake, 0), each a mean over its batch."""
    real = F.binary_cross_entropy_with_logits(real_logits, backend.ones(real_logits.shape))
    fake = F.binary_cross_entropy_with_logits(fake_logits, backend.zeros(fake_logits.shape))
    return real + fake


def g_loss_fn(fake_logits):
    """G's non-saturating loss: BCE(l_fake, 1) = mean of -log s(l_fake)."""
    return F.binary_cross_entropy_with_logits(fake_logits, backend.ones(fake_logits.shape))


def update_average(average, G, ema):
    """G_avg <- ema * G_avg + (1 - ema) * G, parameter by parameter (in place)."""
    for a, p in zip(average.parameters(), G.parameters()):
        a.data *= ema
        a.data += (1 - ema) * p.data


def gan_step(G, D, x, z, d_opt, g_opt, average=None, ema=None):
    """One D update on real x and fakes G(z), then one G update through the updated D.

    With ``average`` (a copy of G's architecture) and ``ema``, the average then moves a
    share 1 - ema of the way to G. Returns the two losses (D's before its update).
    """
    fake = G(z)
    d_opt.zero_grad()
    d_loss = d_loss_fn(D(x), D(fake.detach()))  # detach: D's loss must not reach G
    d_loss.backward()
    d_opt.step()

    g_opt.zero_grad()
    D.requires_grad_(False)  # gradients flow *through* D to G; none are kept *for* D
    g_loss = g_loss_fn(D(fake))  # a fresh pass through the updated D
    g_loss.backward()
    D.requires_grad_(True)
    g_opt.step()
    if average is not None:
        update_average(average, G, ema)
    return {"d_loss": d_loss, "g_loss": g_loss}


def check_step(**options):
    """Our step against ``GAN.train_step`` of build("mlp-gan", **options): same weights,
    batch and noise; prints the largest relative differences."""
    backend.manual_seed(args.seed)
    reference = build("mlp-gan", **options)  # minigen/models/gan.py, the reference networks
    G, D = make_generator(), Discriminator(options.get("pack", 1))
    G.load_state_dict(reference.generator.net.state_dict())
    D.load_state_dict(reference.discriminator.state_dict())
    average = None
    if "ema" in options:  # the average starts as a copy of G, as in GAN.__init__
        average = make_generator()
        average.load_state_dict(G.state_dict())
    ours = {"G." + k: p for k, p in G.named_parameters()}
    ours.update({"D." + k: p for k, p in D.named_parameters()})
    theirs = {"G." + k: p for k, p in reference.generator.net.named_parameters()}
    theirs.update({"D." + k: p for k, p in reference.discriminator.named_parameters()})

    x = data.scale_pixels(train_images[: reference.batch_size, None], "symmetric")
    d_opt = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g_opt = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    backend.manual_seed(123)
    z = backend.randn(x.shape[0], Z_DIM)  # GAN.sample draws its noise the same way
    our_losses = gan_step(G, D, x, z, d_opt, g_opt, average, options.get("ema"))
    backend.manual_seed(123)
    their_losses = reference.train_step(x, reference.make_optimizers())

    for key in ("d_loss", "g_loss"):
        print(f"  {key}  ours {our_losses[key].item():.6f}   library {their_losses[key]:.6f}")
    gaps = {
        "losses": relative_gap(
            {k: v.data for k, v in our_losses.items()},
            {k: backend.xp().asarray(v) for k, v in their_losses.items()},
        ),
        "gradients (D's, then G's through the updated D)": relative_gap(
            {k: p.grad for k, p in ours.items()}, {k: p.grad for k, p in theirs.items()}
        ),
        "weights after Adam's step": relative_gap(
            {k: p.data for k, p in ours.items()}, {k: p.data for k, p in theirs.items()}
        ),
    }
    if average is not None:
        gaps["the averaged G's weights"] = relative_gap(
            {k: p.data for k, p in average.named_parameters()},
            {k: p.data for k, p in reference.generator_ema.net.named_parameters()},
        )
    for what, gap in gaps.items():
        print(f"  {what}: largest relative difference {gap:.1e}")
    assert max(gaps.values()) < 1e-5, "the step written here differs from the library's"


print("one step of the plain MLP GAN, ours against GAN.train_step:")
check_step()

# %% [markdown]
# Everything agrees to the last bit (a relative difference of 0): our step runs
# the same operations in the same order as the library's. A step written
# differently (another order of the sums, say) would agree to float32 rounding,
# about 1e-7 of the values; the check allows 1e-5.
#
# ## First, a toy: eight Gaussians on a ring
#
# Mode collapse is easiest to see in two dimensions. The data are points from
# 8 Gaussians (standard deviation 0.02) whose centres sit on a circle of radius
# 2. G maps 256-dimensional noise to a point through two hidden layers of 128
# units; D, one hidden layer of 128 units, gives a point (with PacGAN, a pair of
# points) a logit. The training step is `gan_step` above, the step just checked
# against `GAN.train_step`: update D on a real and a fake batch, then G through
# the updated D; Adam, lr 1e-3, beta1 = 0.5.
#
# Every `TOY_STEPS / 4` steps we draw G's samples and count the modes they cover:
# a mode is covered when at least 2% of 2,000 samples land within 0.2 of its
# centre (neighbouring centres are 1.53 apart). Then the remedy this lesson
# uses on Fashion-MNIST, on the same toy: D judges pairs (PacGAN: the same
# reshape as `Discriminator` above with `pack=2`), and we sample from an average
# of G's weights (`update_average` above, the rule of `GAN.update_average`, here
# with ema = 0.99 for a short run).

# %%
RING_MODES, RING_RADIUS, RING_STD = 8, 2.0, 0.02
angles = 2 * np.pi * np.arange(RING_MODES) / RING_MODES
centres = RING_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
TOY_STEPS = 100 if args.quick else 1600
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
        x, z = ring_batch(batch, rng), backend.randn(batch, TOY_Z)
        gan_step(G, D, x, z, d_opt, g_opt, average, ema)
        if step % TOY_EVERY == 0:
            with no_grad():
                snapshots[step] = backend.to_numpy((average or G)(backend.randn(2000, TOY_Z)).data)
    return snapshots


toy_runs = {}
for label, options in (("plain GAN", {}), ("PacGAN pairs + averaged G", {"pack": 2, "ema": 0.99})):
    toy_start = time.perf_counter()
    toy_runs[label] = toy_gan(**options)
    covered = [modes_covered(x) for x in toy_runs[label].values()]
    print(
        f"toy, {label}: {TOY_STEPS} steps in {time.perf_counter() - toy_start:.1f} s; modes "
        "covered " + ", ".join(f"step {s}: {c}/8" for s, c in zip(toy_runs[label], covered))
    )
    full = FULL_RUN["toy"][label]
    print(
        f"  at the last step {covered[-1]}/8 "
        f"({against_full_runs(covered[-1], tuple(f[-1] for f in full), args.quick, 'd')}); "
        "full runs at the four steps, seeds 0, 1, 2: "
        + ", ".join("(" + " ".join(map(str, f)) + ")" for f in full)
    )

fig, axes = plt.subplots(2, 5, figsize=(13, 6), dpi=100)
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
fig.tight_layout(h_pad=1.5)
plots.save_figure(fig, out / "toy_ring.png")
print(f"saved {out / 'toy_ring.png'}")

# %% [markdown]
# On seed 0's full run (1,600 steps per GAN, one BLAS thread) the plain GAN
# covers 0, 0, 1 and 1 of the 8 modes at steps 400, 800, 1200 and 1600; seeds
# 1 and 2 give 0, 0, 1, 1 and 1, 0, 1, 0. On all 3 seeds, at no snapshot does it
# cover more than one mode: never the ring, at best one of its points. The
# numbers do not say where the samples are; `toy_ring.png` does, on each seed:
# a single elongated blob, far wider than a mode, in another place at each
# snapshot (between modes or off the ring; where it passes over a centre, that
# is the one mode counted). D learns to reject the place G currently makes, and
# G runs to another one. With pairs for D and the averaged G, the samples first
# spread over the whole square (0 of 8 at steps 400 and 800 on all 3 seeds:
# spread out, they put too few points near any centre), then gather towards the
# ring (at step 1200 the ring shows on seeds 0 and 2, less clearly on seed 1;
# still 0 of 8 on all 3: not yet on the modes) and at step 1600 sit on most of
# them: 7 of 8 (5-7 over 3 seeds). No seed covers all 8 in 1,600 steps; whether
# more steps do is not measured here. The plain GAN on Fashion-MNIST below
# shows a milder form of the same, with classes instead of modes.

# %% [markdown]
# ## Two losses for G, and their gradients, on a real discriminator
#
# G's minimax loss is E_z[log(1 - s(l))] = -BCE(l, 0); the non-saturating one is
# -log s(l) = BCE(l, 1). Their derivatives with respect to D's logit on a fake:
#
#     d/dl log(1 - s(l)) = -s(l)        d/dl -log s(l) = s(l) - 1
#
# Both are negative (both push l up, towards "real"), but the first vanishes
# when D is sure a fake is fake (l very negative, s(l) ~ 0) while the second
# tends to -1 there. We measure them on our MLP GAN twice: at initialisation
# (D has seen nothing; its logits are near 0, s(l) ~ 1/2, and the two losses
# give the same gradient), and after D has trained 200 steps (50 in a quick run)
# against the fresh, frozen G on batches of the first 512 training images, so
# that it rejects G's grey noise with confidence. For each loss: the
# mean of dL/dl per sample (autograd's gradient of the batch mean, times the
# batch size) and the size of the gradient that reaches G's weights.

# %%
backend.manual_seed(args.seed)
reference = build("mlp-gan")
G, D = make_generator(), Discriminator()
G.load_state_dict(reference.generator.net.state_dict())
D.load_state_dict(reference.discriminator.state_dict())
G_LOSSES = {
    "minimax": lambda l: -F.binary_cross_entropy_with_logits(l, backend.zeros(l.shape)),
    "non-saturating": g_loss_fn,
}
backend.manual_seed(7)
z_probe = backend.randn(256, Z_DIM)  # the same fakes at both moments


def measure(moment):
    """Per loss: the logits, dL/dl per sample, the norm of the gradient on G's weights, and
    the mean of s(l)."""
    results = {}
    for name, loss_fn in G_LOSSES.items():
        G.zero_grad()
        logits = D(G(z_probe))
        leaf = Tensor(logits.data, requires_grad=True)  # dL/dl, read off a leaf
        loss_fn(leaf).backward()
        D.requires_grad_(False)
        loss_fn(logits).backward()  # the same loss, now through D into G
        D.requires_grad_(True)
        grad_g = sum(float((p.grad * p.grad).sum()) for p in G.parameters()) ** 0.5
        l = backend.to_numpy(logits.data).ravel()
        per_sample = backend.to_numpy(leaf.grad).ravel() * len(l)
        mean_s = float((1 / (1 + np.exp(-l))).mean())  # D's mean probability that a fake is real
        results[name] = (l, per_sample, grad_g, mean_s)
        print(
            f"  {moment:28s} {name:15s} mean logit {l.mean():7.2f}  mean s(l) "
            f"{mean_s:.4f}  mean dL/dl {per_sample.mean():8.4f}  "
            f"|grad on G's weights| {grad_g:.2e}"
        )
    return results


print("G's two losses, measured on the MLP GAN's D:")
probes = {"at initialisation": measure("at initialisation")}
d_opt = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
first = data.scale_pixels(train_images[:512, None], "symmetric")
D_STEPS = 50 if args.quick else 200
for step in range(D_STEPS):
    x = first[(step % 8) * 64 : (step % 8 + 1) * 64]
    with no_grad():
        fake = G(backend.randn(64, Z_DIM))
    d_opt.zero_grad()
    d_loss_fn(D(x), D(fake)).backward()
    d_opt.step()
probes[f"after {D_STEPS} steps of D"] = measure(f"after {D_STEPS} steps of D")
early = probes["at initialisation"]
ratio = early["non-saturating"][2] / early["minimax"][2]
print(f"  at initialisation: non-saturating / minimax gradient on G's weights = {ratio:.2f}")
late = probes[f"after {D_STEPS} steps of D"]
late_s = late["minimax"][3]
late_ratio = late["non-saturating"][2] / late["minimax"][2]
print(
    f"  after {D_STEPS} steps of D: D's mean s(l) on the fakes {late_s:.4f} "
    f"({against_full_runs(late_s, FULL_RUN['s(l) after D'], args.quick, '.4f')})"
)
print(
    f"  after {D_STEPS} steps of D: non-saturating / minimax gradient on G's weights = "
    f"{late_ratio:.2f} "
    f"({against_full_runs(late_ratio, FULL_RUN['gradient ratio'], args.quick, '.0f')})"
)

logit = np.linspace(min(-10.0, min(r[0].min() for r in late.values()) - 1), 4, 300)
s = 1 / (1 + np.exp(-logit))
fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=100)
ax.plot(logit, -s, color="C0", label="minimax loss log(1 - s(l)): dL/dl = -s(l)")
ax.plot(logit, s - 1, color="C1", label="non-saturating loss -log s(l): dL/dl = s(l) - 1")
for (moment, results), marker in zip(probes.items(), ("o", "x")):
    for name, color in (("minimax", "C0"), ("non-saturating", "C1")):
        l, g, *_ = results[name]
        ax.scatter(l, g, s=12, marker=marker, color=color, label=f"{name}, measured {moment}")
ax.axhline(0, color="k", lw=0.5)
ax.set_xlabel("l = D's logit on a fake (s(l): D's probability that it is real)")
ax.set_ylabel("dL/dl, G's loss per sample")
ax.legend(fontsize=7, loc="center left")
ax.set_title("G's gradient per fake: the minimax one vanishes where D is sure (l << 0)")
fig.tight_layout()
plots.save_figure(fig, out / "generator_losses.png")
print(f"saved {out / 'generator_losses.png'}")

# %% [markdown]
# The measured points lie on the curves (autograd computes the derivatives
# above). At initialisation both losses give the same gradient (ratio 1.00).
# After 200 steps D gives G's noise a mean probability of 0.0077 (0.0063-0.0077
# over 3 seeds) of being real; the minimax gradient is all but gone, while the
# non-saturating one is near its largest, 130 times the minimax one on G's
# weights (130-160 over 3 seeds). (Both grow as D's weights grow; the ratio is
# what matters.) That is why `generator_loss`
# (minigen/models/gan.py) is BCE(l_fake, 1).
#
# ## Reference points: the classifier that judges the samples
#
# Class coverage relies on a small convnet (minigen/classifier.py,
# `load_classifier`) to say which class a sample belongs to. How often it is
# right on real test images (`metrics.accuracy`), and the coverage of real test
# images (`metrics.class_coverage`) tell what a perfect generator would score.

# %%
classifier = load_classifier(args.dataset)
test_accuracy = metrics.accuracy(classifier, test_images, test_labels)
real_shares, real_covered = metrics.class_coverage(test_images, classifier)
print(
    f"classifier accuracy on {len(test_images)} test images: {test_accuracy:.3f} (a full run: "
    f"0.890); real test images cover {real_covered}/10 classes (a full run: 10/10), "
    f"smallest share {100 * real_shares.min():.1f}%"
)

# %% [markdown]
# About one real test image in nine is put in the wrong class (three errors in
# four are shirts, coats, T-shirts and pullovers, classes that look alike), so
# a sample's class is the classifier's opinion, not a fact; but a class the
# classifier almost never sees among 5,000 samples is one G does not make.
#
# ## Scale up: train the library's MLP GAN, watching class coverage
#
# `train` (minigen/train.py) runs `GAN.train_step` over shuffled batches of 64
# (937 steps per epoch of 60,000 images: the last 32 of each epoch's shuffled order, short
# of a full batch, are skipped). After every epoch we draw 5,000
# samples (`sample_images`, minigen/models/base.py; the same noise every epoch,
# from its own seed, so the evaluation leaves the training's random numbers
# alone) and count the classes with at least 5% of them
# (`metrics.class_coverage`).

# %%
N_SAMPLES = 1000 if args.quick else 5000  # a quick run: fewer, for speed


def coverage_of(model, generator_itself=False):
    """(class shares, classes covered) of N_SAMPLES samples, from the same noise every time and
    without touching the random numbers training uses.

    ``sample_images`` samples in eval mode, where a GAN with ``ema`` uses its average;
    ``generator_itself`` asks for G itself instead.
    """
    state = backend.get_rng_state()
    backend.manual_seed(1000)
    if generator_itself:
        with nn.eval_mode(model):
            x = model.generator(backend.randn(N_SAMPLES, model.z_dim)).data
        images = backend.to_numpy(to_unit_range(x, model.scale)).clip(0, 1)
    else:
        images = sample_images(model, N_SAMPLES)
    shares, covered = metrics.class_coverage(images, classifier)
    backend.set_rng_state(state)
    return shares, covered


def run(label, **options):
    """Train mlp-gan with ``options``; return {series: classes covered per epoch}, the final
    class shares of its samples, and the model."""
    coverage = {label: []}
    if options.get("ema"):
        coverage[f"{label}, G itself"] = []

    def watch(model, epoch, history):
        coverage[label].append(coverage_of(model)[1])  # the average, if there is one
        line = f"  {label} epoch {epoch + 1}: {coverage[label][-1]}/10 classes get >= 5%"
        if options.get("ema"):
            coverage[f"{label}, G itself"].append(coverage_of(model, generator_itself=True)[1])
            line += f" (G itself: {coverage[f'{label}, G itself'][-1]}/10)"
        print(line)

    model, _, history = train(
        "mlp-gan", args.epochs, images=train_images, seed=args.seed, on_epoch_end=watch, **options
    )
    shares, _ = coverage_of(model)
    backend.manual_seed(1)
    source = "the averaged G" if options.get("ema") else "G"
    plots.image_grid(
        sample_images(model, 64),
        out / f"samples_{label}.png",
        title=f"mlp-gan, {label}: samples of {source}",
    )
    plots.loss_curves(
        {"D": history["d_loss"], "G": history["g_loss"]},
        out / f"losses_{label}.png",
        title=f"mlp-gan, {label}: losses per step",
    )
    return coverage, shares, model


coverage, shares = {}, {}
seconds = {}
run_start = time.process_time()
plain_coverage, shares["plain"], _ = run("plain")
seconds["plain"] = time.process_time() - run_start
coverage.update(plain_coverage)

# %% [markdown]
# On seed 0's full run the plain GAN covers all 10 classes in none of its 12
# epochs and ends at 8/10; so do seeds 1 and 2 (none of 12, 8/10 at the end).
# After epoch 12 trousers have all but vanished from its samples on all 3 seeds
# (under 2% of them; class_shares.png, drawn below), and one more class sits just
# under 5% (sneakers in the runs of seeds 0 and 2, coats in seed 1's). Where a
# class gets far less than its 10%, G has settled for the kinds of images that
# are easiest to pass off as real, and D, chasing them, pushes G on to others.
#
# ## The remedy: PacGAN (D judges pairs) and an averaged generator
#
# PacGAN changes nothing but D's input: `pack` = 2 images side by side, a
# (N/2, 1568) batch, the reshape in `Discriminator.forward` above (and in
# `MLPDiscriminator.forward`). The average follows `GAN.update_average`:
#
#     G_avg <- ema * G_avg + (1 - ema) * G      after every step, ema = 0.999
#
# **Its warm-up.** `GAN.__init__` starts the average as a copy of G at
# initialisation, and there is no correction for that start (Adam divides its
# averages by 1 - beta^t; this average does not). After t steps the random
# initial weights still make up a share ema^t of the average, and the rest is
# spread over the recent Gs with weights (1 - ema) ema^k, a memory of about
# 1 / (1 - ema) = 1,000 steps. The initial weights are small (N(0, 0.02),
# `dcgan_init_`), so mixing them in shrinks the average's weights towards 0:
# after one epoch (937 steps) they still make up 0.39 of it, after three 0.06,
# after five 0.01 (printed below). Early on, the average is a damped copy of
# recent Gs and lags behind G; only after a few epochs has the start washed
# out. The lesson therefore also measures G itself in the same run: on seed 0's
# full run, after epoch 1, the average covers 1/10 classes (1 on all 3 seeds)
# and G itself 7/10 (3-7 over 3 seeds); after epoch 3, 6/10 (6-7) and 8/10
# (8-9). The average is behind G at both epochs on every seed. With
# `--remedy ema` it is behind after epoch 1 on every seed, after epoch 3 on 2
# of 3 (level on seed 2).
#
# The same step as above, now with pairs for D and the average, checked
# against `GAN.train_step` of `build("mlp-gan", pack=2, ema=0.999)`:

# %%
print("one step with PacGAN pairs and the averaged G, ours against GAN.train_step:")
check_step(pack=2, ema=0.999)
ema = REMEDIES["pac+ema"]["ema"]
steps_per_epoch = len(train_images) // 64
print(
    "share of the initial random G in the average after each epoch (ema^t, "
    f"{steps_per_epoch} steps per epoch): "
    + ", ".join(
        f"{k}: {ema ** (k * steps_per_epoch):.3f}" for k in range(1, min(args.epochs, 6) + 1)
    )
)

# %% [markdown]
# Now the second run, with the remedy `--remedy` picks (default: both parts).

# %%
label = args.remedy
run_start = time.process_time()
remedy_coverage, shares[label], _ = run(label, **REMEDIES[label])
seconds[label] = time.process_time() - run_start
coverage.update(remedy_coverage)

reference_line = {f"real test images (all {len(test_images):,})": [real_covered] * args.epochs}
plots.epoch_curves(
    {**coverage, **reference_line},
    out / "coverage.png",
    f"classes with >= 5% of {N_SAMPLES:,} samples",
    title="mlp-gan: class coverage after each epoch (10 = every class)",
)
fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
width = 0.27
bars = {**shares, f"real test images (all {len(test_images):,})": real_shares}
for i, (name, values) in enumerate(bars.items()):
    ax.bar(np.arange(10) + (i - 1) * width, values, width, label=name)
ax.axhline(0.05, color="k", lw=0.8, ls="--", label="5%: a class counts as covered")
ax.axhline(0.10, color="k", lw=0.8, ls=":", label="10%: an equal share")
ax.set_xticks(range(10), classes, rotation=45, ha="right", fontsize=8)
ax.set_ylabel("share of the images")
ax.set_title(f"classes of {N_SAMPLES:,} samples after epoch {args.epochs}, and of real images")
ax.legend(fontsize=8)
fig.tight_layout()
plots.save_figure(fig, out / "class_shares.png")

for name, values in coverage.items():
    full = FULL_RUN[name]
    all_ten = sum(c == 10 for c in values)
    print(f"{name}: classes covered per epoch {' '.join(map(str, values))}")
    print(
        f"  epochs with all 10 classes: {all_ten} of {len(values)} "
        f"(of 12 epochs, {against_full_runs(all_ten, full['all ten'], args.quick, 'd')})"
    )
    print(
        f"  at the end: {values[-1]}/10 "
        f"({against_full_runs(values[-1], full['final'], args.quick, 'd')})"
    )
    for epoch in (1, 3):
        if f"epoch {epoch}" in full and len(values) >= epoch:
            then = values[epoch - 1]
            spread = against_full_runs(then, full[f"epoch {epoch}"], args.quick, "d")
            print(f"  after epoch {epoch}: {then}/10 ({spread})")
print(
    "CPU time per run: "
    + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items())
    + f"; figures in {out}/"
)

# %% [markdown]
# Read the coverage curve, not one epoch: a GAN's generator keeps moving, and
# the classes it covers change from epoch to epoch. On seed 0's full run, with
# both parts of the remedy, the average covers all 10 classes in 4 of 12 epochs
# (1-4 over 3 seeds; in this run every epoch from the 9th on) and ends at 10/10,
# as on every seed; G itself (pairs for D, no averaging) covers all 10 in 2 of
# 12 (2-3) and ends at 10/10 (8-10). The ablation, each part alone, 3 seeds
# each: PacGAN alone (`--remedy pac`) covers all 10 classes in 3 of 12 epochs
# (3-6) and ends at 9/10 (9-10); the averaged G alone (`--remedy ema`) in none
# of 12 on any seed, ending at 9/10 on each, as its own G does. In that last run
# G itself is a plain GAN: the average only reads G's weights (building the
# average draws random numbers, so G's noise differs from the plain run's). So
# there are six plain runs (3 seeds, two streams of noise) and six runs of a G
# with pairs (`pac`, and G itself in `pac+ema`).
#
# What holds on all 3 seeds: no plain G covers all 10 classes in any epoch (in
# none of its 6 runs), and every G with pairs does, in 2 to 6 epochs of 12 (in
# all 6): in these runs the pairs are the part that brings the missing classes
# back. Averaging alone does not: the average of a G that drops a class drops
# it too. What the average adds to the pairs is a steadier curve: on all 3
# seeds its coverage never falls from one epoch to the next and ends at 10/10,
# while G's own curve with pairs goes up and down (in 5 of its 6 runs) and
# ends at 10/10 in 3 of 6. It does not cover all 10 in more epochs: 4, 1 and 4
# for the average against 3, 6 and 4 for PacGAN alone, and in the same run it
# beats its own G on 2 of 3 seeds (4 against 2, 1 against 2, 4 against 3). The
# plain runs end at 8/10 with one stream of noise and 9/10 with the other, on
# each seed: one class more or less at the end of one run is noise, which is
# why the ablation compares whole curves, over seeds.
#
# What more epochs give: `--epochs 24` (twice the time) shows whether the
# classes the plain GAN drops come back; this text states no number for it.

# %%
minutes = (time.perf_counter() - lesson_start) / 60
print(
    f"this run took {minutes:.1f} minutes "
    f"(a full run on the header's Xeon: {FULL_RUN['minutes']:.1f})"
)

# %% [markdown]
# ## Summary
#
# **Built:** the MLP GAN from `minigen.nn` pieces (G, D, D's loss, G's
# non-saturating loss, one step: D first, then G through the updated D),
# checked against `GAN.train_step` to the last bit; PacGAN pairs and a
# weight-averaged G. **Measured:** on the ring of 8 Gaussians, how many modes
# each GAN covers; on a real D, G's two losses' gradients (ratio 1.00 at
# initialisation; 130 after 200 steps of D, 130-160 over 3 seeds); on
# Fashion-MNIST, the classes a classifier finds among 5,000 samples after
# every epoch (the plain GAN never covers all 10, on all 3 seeds; with both
# parts of the remedy the average covers all 10 in 4 of 12 epochs, 1-4 over 3
# seeds, and ends at 10/10 on each).
# **The one idea to keep:** G learns only through D's gradient, so what G
# can learn depends on where D's loss is flat; and a GAN's state is a
# point on an orbit, to be read over many epochs, not one.
#
# ## Exercises
#
# Worked solutions: `lessons/solutions/03_gan.py` (`--exercise K` runs one).
#
# 1. **The gradient ratio while D learns.** Repeat the measurement of "Two
#    losses for G" after 0, 25, 50, 100, 200 and 400 steps of D against the
#    frozen G. Predict how D's mean s(l) on the fakes and the ratio
#    |grad on G| non-saturating / minimax change with the number of D steps
#    (from dL/dl = -s(l) and s(l) - 1), then look at both.
# 2. **The toy ring with G's minimax loss.** Train the toy GAN of this lesson
#    with G minimising E log(1 - s(D(G(z)))) instead of -log s(D(G(z))), for
#    the same 1,600 steps. Before running, say which you expect at the four
#    snapshots: the modes covered, and D's mean probability s(l) that G's
#    samples are real; compare with the non-saturating run.
# 3. **How long the averaged G remembers its start.** The average keeps a
#    share ema^t of G's initial weights after t steps. For ema = 0.9, 0.99
#    and 0.999, compute the number of steps after which that share is below
#    1%, then check it on `GAN.update_average` itself: hold G fixed away
#    from its start and read the share off the averaged weights.
