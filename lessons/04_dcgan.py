# %% [markdown]
# # Lesson 04: DCGAN, convolutions in both players
#
# The MLP GAN of lesson 03 must learn every pixel's relation to every other.
# DCGAN (Radford et al. 2016) builds both networks from convolutions, with
# three habits that make GAN training far steadier:
#
# - **Transposed convolutions** in G upsample 7x7 -> 14x14 -> 28x28. A
#   transposed convolution is the adjoint (the backward pass) of a strided
#   convolution: each input pixel paints a 4x4 patch of the output, weighted by
#   a learned kernel (lesson 02).
# - **BatchNorm** in G (and in D's middle layer) keeps activations at a steady
#   scale, so neither network saturates while the other changes under it.
# - **LeakyReLU** (slope 0.2) in D keeps a gradient for negative inputs, so G
#   learns from every sample D rejects. D has no pooling: strided convolutions
#   learn their own downsampling. Weights start from N(0, 0.02).
#
# This lesson first writes both networks, their initialisation and one
# D-then-G training step from `minigen.nn` pieces, and checks the step against
# the library's reference dcgan; then it trains the library's model with
# `minigen.train.train`. Quality is measured after every epoch with a Fréchet
# distance, written out below: the distance between the Gaussians fitted to
# classifier features of real test images and of generated ones (the idea of
# FID, in the feature space of a small Fashion-MNIST classifier rather than
# Inception). Lower is better.
#
# The library code it relies on, to open alongside:
#
# - minigen/models/gan.py: `DCGANGenerator`, `DCGANDiscriminator`, `dcgan_init_`,
#   `discriminator_loss`, `generator_loss`, `GAN.train_step`
# - minigen/nn/losses.py: `binary_cross_entropy_with_logits`
# - minigen/metrics.py: `frechet_distance_gaussians`, `fid`, `class_coverage`, `accuracy`
# - minigen/classifier.py: `Classifier.features`, `load_classifier`
# - minigen/optim.py: `Adam`; minigen/train.py: `train`
#
# Full run (2 epochs): 5.6 minutes of wall time (5:38) and 5.6 of CPU time (336 s) on a
# 2-core Intel Xeon (AVX-512, OpenBLAS SkylakeX kernel) with one BLAS thread
# (OPENBLAS_NUM_THREADS=1), another lesson running on the other core. `--quick`: seconds.
#
# To reproduce the numbers marked "a full run": `OPENBLAS_NUM_THREADS=1
# python lessons/04_dcgan.py`. They are seed 0's; the spreads beside them are over
# seeds 0, 1 and 2 (`--seed`) on that machine. The digits repeat exactly only on
# the same CPU, BLAS kernel and thread count: another one sums the floats in
# another order, and training carries the difference on. On another machine your
# run should land inside the spread, and the lesson prints whether it does. (A
# 2-core AMD EPYC, OpenBLAS Haswell kernel, printed a Fréchet distance of 32.46
# for seed 0 after 2 epochs.)

# %%
import time

from _setup import against_full_runs, relative_gap, setup

from minigen import Tensor, backend, data, metrics, nn, optim, plots
from minigen.classifier import load_classifier
from minigen.models import build, to_unit_range
from minigen.nn import functional as F
from minigen.train import train

np = backend.host
start = time.perf_counter()
args, out, train_images, test_images, test_labels = setup("04_dcgan", "Lesson 04: DCGAN", epochs=2)
# What this lesson's full runs (default options, full Fashion-MNIST) printed, seeds 0, 1, 2:
FULL_RUN = {
    "fd_epoch1": (50.23, 55.11, 50.06),  # Fréchet distance after epoch 1, N = 5,000
    "fd": (33.97, 35.15, 32.07),  # Fréchet distance after epoch 2, N = 5,000
    "covered": (10, 10, 10),  # classes with >= 5% of the samples after epoch 2
    "minutes": 5.6,  # seed 0, on the machine the header names
}
# Reference points that do not depend on training (the full test set, N = 5,000 per side):
REAL_FD, ACCURACY = 0.88, 0.890

# %% [markdown]
# ## Build it: the two networks
#
# G maps z (64 numbers) to an image; D maps an image to one logit (real if
# high). The attribute names (`net`, `body`, `head`) are the library's, so the
# library's weights load into ours with `load_state_dict`. D's `features` is
# its last hidden map; lesson 08 measures reconstructions there.

# %%
Z_DIM = 64


class Generator(nn.Module):
    """z (N, 64) -> Linear 6272 -> BN -> ReLU -> (128, 7, 7) -> ConvT 64 (14x14) -> BN -> ReLU
    -> ConvT 1 (28x28) -> tanh: images (N, 1, 28, 28) in [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(Z_DIM, 128 * 7 * 7),
            nn.BatchNorm1d(128 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten((128, 7, 7)),
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z)


class Discriminator(nn.Module):
    """x (N, 1, 28, 28) -> Conv 64 (14x14) -> LeakyReLU -> Conv 128 (7x7) -> BN -> LeakyReLU
    -> flatten -> Linear 1: one logit per image."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 64, 4, stride=2, padding=1),
            nn.LeakyReLU(negative_slope=0.2),
            nn.Conv2d(64, 128, 4, stride=2, padding=1),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(negative_slope=0.2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(128 * 7 * 7, 1))

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


def dcgan_init(*networks):
    """The DCGAN recipe: Linear and (transposed) convolution weights N(0, 0.02),
    BatchNorm scales N(1, 0.02), all their biases 0."""
    for network in networks:
        for m in network.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.normal_(m.weight, 1.0, 0.02)
            else:
                continue
            nn.init.zeros_(m.bias)


# %% [markdown]
# The library builds the same pair in `GAN.__init__` (generator, then
# discriminator, then `dcgan_init_`). Built in the same order from the same
# seed, ours must come out with the very same numbers in every weight.

# %%
backend.manual_seed(args.seed)
G, D = Generator(), Discriminator()
dcgan_init(G, D)
backend.manual_seed(args.seed)
reference = build("dcgan")  # minigen/models/gan.py, the reference networks
ours = {**{f"G.{k}": v for k, v in G.state_dict().items()}}
ours.update({f"D.{k}": v for k, v in D.state_dict().items()})
theirs = {f"G.{k}": v for k, v in reference.generator.state_dict().items()}
theirs.update({f"D.{k}": v for k, v in reference.discriminator.state_dict().items()})
same = all(np.array_equal(backend.to_numpy(ours[k]), backend.to_numpy(theirs[k])) for k in theirs)
count_g = sum(p.size for p in G.parameters())
count_d = sum(p.size for p in D.parameters())
w = backend.to_numpy(G.net[4].weight.data)
print(
    f"G: {count_g:,} parameters, D: {count_d:,}; G's first ConvT weights: mean "
    f"{w.mean():+.4f}, std {w.std():.4f}; identical to the library's: {same}"
)
assert same, "the initialisation written here differs from dcgan_init_"

# %% [markdown]
# ## One training step: D, then G
#
# With D's logit l and s = sigmoid(l), D minimises BCE(l_real, 1) +
# BCE(l_fake, 0), and G the non-saturating loss BCE(l_fake, 1) =
# -log s(l_fake) (lesson 03 says why not the minimax one). The step:
#
# 1. draw z, make a fake batch G(z);
# 2. update D on the real batch and the fake one, *detached*: D's loss must
#    not reach into G;
# 3. update G through the freshly updated D, in a new forward pass (D's old
#    activations belong to the old D), with D frozen (`requires_grad_(False)`):
#    the gradient flows through D to the fake images, but D's weights do not
#    collect it.
#
# Both use Adam with lr 2e-4 and betas (0.5, 0.999), as DCGAN does: Radford
# et al. found that Adam's usual beta1 = 0.9 made training oscillate and 0.5
# steadied it (a shorter memory of past gradients, against an opponent that
# keeps moving).


# %%
def bce(logits, target):
    """BCE between D's logits and a constant label (1 real, 0 fake), batch mean."""
    labels = backend.ones(logits.shape) if target == 1 else backend.zeros(logits.shape)
    return F.binary_cross_entropy_with_logits(logits, labels)


def train_step(x, z, d_opt, g_opt):
    """One D update and one G update on the real batch x with noise z; returns the losses."""
    fake = G(z)

    d_opt.zero_grad()
    d_loss = bce(D(x), 1) + bce(D(fake.detach()), 0)
    d_loss.backward()
    d_opt.step()

    g_opt.zero_grad()
    D.requires_grad_(False)
    g_loss = bce(D(fake), 1)
    g_loss.backward()
    D.requires_grad_(True)
    g_opt.step()
    return {"d_loss": d_loss, "g_loss": g_loss}


x = data.scale_pixels(train_images[: reference.batch_size, None], "symmetric")
adam = lambda m: optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999))  # noqa: E731
backend.manual_seed(123)
z = backend.randn(x.shape[0], Z_DIM)  # GAN.sample draws its z the same way
our_losses = train_step(x, z, adam(D), adam(G))
backend.manual_seed(123)
their_losses = reference.train_step(x, reference.make_optimizers())

for key in ("d_loss", "g_loss"):
    print(f"{key}  ours {our_losses[key].item():8.5f}   library {their_losses[key]:8.5f}")
loss_gap = relative_gap(
    {k: v.data for k, v in our_losses.items()},
    {k: backend.xp().asarray(v) for k, v in their_losses.items()},
)
pairs = [(G, reference.generator), (D, reference.discriminator)]
grad_gap = relative_gap(
    {f"{i}.{k}": p.grad for i, (a, _) in enumerate(pairs) for k, p in a.named_parameters()},
    {f"{i}.{k}": p.grad for i, (_, b) in enumerate(pairs) for k, p in b.named_parameters()},
)
weight_gap = relative_gap(
    {f"{i}.{k}": p.data for i, (a, _) in enumerate(pairs) for k, p in a.named_parameters()},
    {f"{i}.{k}": p.data for i, (_, b) in enumerate(pairs) for k, p in b.named_parameters()},
)
print(f"losses: largest relative difference {loss_gap:.1e}")
print(
    f"gradients (D's from its loss, G's from its own): largest relative difference {grad_gap:.1e}"
)
print(f"weights after both Adam steps: largest relative difference {weight_gap:.1e}")
assert max(loss_gap, grad_gap) < 1e-5, "the step written here differs from the library's"

# %% [markdown]
# ## The Fréchet distance, written out
#
# Pass real images and generated ones through the classifier's 128-d feature
# layer (`Classifier.features`), fit a Gaussian to each set (mean mu,
# covariance S, unbiased), and measure the distance between the Gaussians:
#
#     FD = ||mu_r - mu_g||^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2))
#
# The first term compares where the two clouds sit, the trace term their
# shapes. For two 1-D Gaussians it is (mu_r - mu_g)^2 + (sigma_r - sigma_g)^2.
# S_r S_g is not symmetric, but its eigenvalues are real and >= 0 (those of
# S_r^(1/2) S_g S_r^(1/2)), so tr (S_r S_g)^(1/2) is the sum of their square
# roots. `metrics.frechet_distance_gaussians` takes that symmetric route;
# below we take the eigenvalues of S_r S_g directly, and compare.

# %%
classifier = load_classifier(args.dataset)


def features(images01):
    """Classifier features (N, 128) of images in [0, 1] (host or backend), float64 on the host."""
    parts = []
    with nn.eval_mode(classifier):
        for i in range(0, len(images01), 500):
            x = backend.from_numpy(np.asarray(backend.to_numpy(images01[i : i + 500])))
            parts.append(backend.to_numpy(classifier.features(Tensor(x)).data))
    return np.concatenate(parts).astype(np.float64)


def frechet(feats_a, feats_b):
    """||mu_a - mu_b||^2 + tr S_a + tr S_b - 2 sum sqrt(eigenvalues of S_a S_b)."""
    mu_a, mu_b = feats_a.mean(axis=0), feats_b.mean(axis=0)
    s_a, s_b = np.cov(feats_a, rowvar=False), np.cov(feats_b, rowvar=False)
    eigenvalues = np.linalg.eigvals(s_a @ s_b).real.clip(0, None)  # round-off: tiny imag, -0
    distance = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b)
    return float(distance - 2 * np.sqrt(eigenvalues).sum())


n_eval = min(5000, len(test_images) // 2)
real_a = data.scale_pixels(test_images[:n_eval, None])
real_b = data.scale_pixels(test_images[n_eval : 2 * n_eval, None])
feats_a, feats_b = features(real_a), features(real_b)
ours_fd = frechet(feats_a, feats_b)
library_fd = metrics.fid(real_a, real_b, classifier)
print(
    f"test images 1-{n_eval} against {n_eval + 1}-{2 * n_eval}: Fréchet distance {ours_fd:.4f} "
    f"written out, {library_fd:.4f} from metrics.fid (relative difference "
    f"{abs(ours_fd - library_fd) / library_fd:.1e})"
)
# The distance is a small difference of large traces, and the library computes the features in
# float32 batches of its own: so the two routes agree to round-off on the scale of the traces.
scale = sum(np.trace(np.cov(f, rowvar=False)) for f in (feats_a, feats_b))
assert abs(ours_fd - library_fd) <= 1e-6 * scale, (
    f"the Fréchet distance differs from metrics.fid by {abs(ours_fd - library_fd):.2e}, "
    f"more than 1e-6 of tr S_a + tr S_b = {scale:.1f}"
)

# %% [markdown]
# That distance is between two *disjoint halves of the real test set*: the
# same distribution, yet not 0. Each Gaussian is fitted to a finite sample,
# and the estimation noise of 128 means and 128x128 covariance entries adds a
# positive bias to every Fréchet distance, one that shrinks as the number N of
# images per side grows (and is large while N is not far above the 128
# feature dimensions). So Fréchet distances compare only at the same N, and
# the real-vs-real value at that N is the floor a perfect generator would
# reach. At N = 5,000 (the full run's N) it is 0.88; at 500 per side it is
# 11.8, more than thirteen times as much. Below, the same at several N.

# %%
for n in sorted({n_eval // 10, n_eval // 4, n_eval // 2, n_eval}):
    print(f"  real vs real, N = {n:5d} per side: {frechet(feats_a[:n], feats_b[:n]):8.3f}")
real_fd = ours_fd
shares, real_covered = metrics.class_coverage(real_a, classifier)
acc = metrics.accuracy(classifier, test_images, test_labels)
print(
    f"reference points at N = {n_eval}: real vs real Fréchet distance {real_fd:.2f} (a full run: "
    f"{REAL_FD}); real test images cover {real_covered} of 10 classes at >= 5% (a full run: "
    f"10); the classifier's test accuracy {acc:.3f} (a full run: {ACCURACY:.3f})"
)

# %% [markdown]
# ## Scale up: train the library's model, measure after every epoch
#
# `train` (minigen/train.py) runs `GAN.train_step` over shuffled batches of
# 64. After each epoch we draw images from *fixed* noise: one batch of z for
# the grid, so the pictures show the same z improving epoch by epoch, and
# n_eval more for the Fréchet distance and the class coverage, all drawn once
# from a generator of their own. The training's own random numbers (minigen's
# generator, `backend.rng`) are never touched, so evaluating changes nothing
# in training.

# %%
noise = np.random.default_rng(args.seed + 1)
z_grid = backend.from_numpy(noise.standard_normal((64, Z_DIM), dtype=np.float32))
z_eval = backend.from_numpy(noise.standard_normal((n_eval, Z_DIM), dtype=np.float32))


def generate(model, z):
    """G(z) in eval mode (BatchNorm on its running statistics), in [0, 1], on the host."""
    with nn.eval_mode(model):
        parts = [model.generator(z[i : i + 500]).data for i in range(0, len(z), 500)]
    return np.concatenate([backend.to_numpy(to_unit_range(p, model.scale)) for p in parts])


fd, coverage, class_shares = [], [], []


def watch(model, epoch, history):
    fake = generate(model, z_eval)
    fd.append(frechet(feats_a, features(fake)))
    shares, covered = metrics.class_coverage(fake, classifier)
    coverage.append(covered)
    class_shares.append(shares)
    plots.image_grid(
        generate(model, z_grid),
        out / f"samples_epoch{epoch + 1}.png",
        title=f"dcgan, epoch {epoch + 1}: the same 64 z every epoch",
    )
    print(
        f"  epoch {epoch + 1}: Fréchet distance {fd[-1]:.2f} (real vs real {real_fd:.2f}), "
        f"{coverage[-1]} of 10 classes >= 5%"
    )


model, _, history = train(
    "dcgan", args.epochs, images=train_images, seed=args.seed, on_epoch_end=watch
)
print(
    "class shares of the last epoch's samples: "
    + ", ".join(f"{c} {100 * p:.0f}%" for c, p in zip(data.CLASSES[args.dataset], class_shares[-1]))
)
if args.epochs > 1:
    print(
        f"after epoch 1: Fréchet distance {fd[0]:.2f} "
        f"({against_full_runs(fd[0], FULL_RUN['fd_epoch1'], args.quick, '.2f')})"
    )
print(
    f"after {args.epochs} epochs: Fréchet distance {fd[-1]:.2f} "
    f"({against_full_runs(fd[-1], FULL_RUN['fd'], args.quick, '.2f')}; "
    f"real vs real at N = {n_eval}: {real_fd:.2f})"
)
print(
    f"  {coverage[-1]} of 10 classes covered "
    f"({against_full_runs(coverage[-1], FULL_RUN['covered'], args.quick, 'd')}; "
    f"real images: {real_covered})"
)

plots.epoch_curves(
    {"dcgan samples": fd, "real vs real (the floor)": [real_fd] * len(fd)},
    out / "frechet.png",
    f"Fréchet distance to real test images, N = {n_eval}",
    title="dcgan: Fréchet distance after each epoch (lower is better)",
)
plots.loss_curves(
    {"D": history["d_loss"], "G": history["g_loss"]},
    out / "losses.png",
    title="dcgan: D and G losses per step",
)
print(f"saved samples_epoch*.png, frechet.png and losses.png in {out}/")

# %% [markdown]
# Compare `samples_epoch1.png` with the last epoch: the same z, shapes first,
# then textures. The D and G losses do not fall together: on each of the 3
# seeds' full runs, after the first hundred steps D's loss drifts up and G's
# drifts down, while the samples get better. In a GAN the losses measure
# the balance of the game, not the quality of the samples. That is why we
# keep a separate measure, the Fréchet distance, and the class coverage. On a
# full run the distance is 50.23 (50.06-55.11 over 3 seeds) after epoch 1 and
# 33.97 (32.07-35.15) after epoch 2, about 39 times the real-vs-real floor
# (36-40 times), with all 10 classes covered after epoch 2 (9 of 10 after
# epoch 1), on every seed. Whether more epochs keep lowering it is not
# measured here: `--epochs 3` measures it (its first two epochs are the same
# as here, since the run does not depend on how many epochs follow).

# %%
minutes = (time.perf_counter() - start) / 60
print(
    f"this run took {minutes:.1f} minutes "
    f"(a full run on the header's Xeon: {FULL_RUN['minutes']:.1f})"
)

# %% [markdown]
# ## Summary
#
# **Built:** the DCGAN's generator (transposed convolutions with BatchNorm)
# and discriminator, one training step (D on real and detached fakes, then G
# through the updated D) checked against the library's; the Fréchet distance
# written out and checked against `metrics.fid`. **Measured:** the
# distance's floor between two halves of the real test set (0.88 at N =
# 5,000 per side, 11.8 at 500), and the trained DCGAN's distance and class
# coverage after every epoch (a full run: 33.97 after 2 epochs, 32.07-35.15
# over 3 seeds, 10 of 10 classes on each). **The one idea to keep:** a GAN's
# losses measure the balance of its game, not the quality of its samples;
# judge samples with a separate measure, and compare such measures only at
# the same sample count.
#
# ## Exercises
#
# Worked solutions: `lessons/solutions/04_dcgan.py` (`--exercise K` runs one).
#
# 1. **The floor of the Fréchet distance.** Compute the real-vs-real
#    distance between the two halves of the test set at N = 250, 500, 1,000,
#    2,500 and 5,000 per side. Predict how it scales with N (look at N times
#    the distance), and so what N a comparison of two good generators needs.
# 2. **Which term of the distance sees a change.** Compare the first half
#    of the test set with the second half as it is, darkened to 70%, blurred
#    by a 3x3 box filter, and shifted 3 pixels to the right. For each, split
#    the distance into the mean term ||mu_r - mu_g||^2 and the trace term.
#    Predict the order of the four distances and which term grows most.
# 3. **Forget the detach in D's step.** In `train_step`, compute D's loss on
#    `fake` instead of `fake.detach()`. Predict whether G's weights then get a
#    gradient from D's loss, and the sign of the cosine between that gradient
#    and the gradient of G's own loss on the same fakes; measure both on the
#    library's DCGAN.
