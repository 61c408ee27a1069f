# %% [markdown]
# # Lesson 07: VQ-VAE, a discrete latent code
#
# A VQ-VAE (van den Oord et al. 2017) replaces the Gaussian latent of a VAE by
# a grid of symbols. The encoder makes z_e, a 7x7 grid of 16-d vectors; each
# vector snaps to the nearest of 64 learned codebook vectors; the decoder sees
# only the snapped grid z_q. An image becomes 49 numbers in 0..63.
#
# Three ideas make it train:
#
# - **Straight-through estimator.** argmin has no gradient. The decoder's
#   gradient at z_q is copied to z_e unchanged: z_q_st = z_e + sg[z_q - z_e]
#   (sg = stop gradient, `detach`), which equals z_q going forward and has
#   d z_q_st / d z_e = I going back.
# - **Codebook loss** ||sg[z_e] - e||^2 pulls each used code towards the
#   encoder outputs that chose it. Nothing else trains the codebook: the
#   reconstruction's gradient goes straight through to the encoder, past it.
# - **Commitment loss** 0.25 ||z_e - sg[e]||^2 keeps the encoder near its codes,
#   so its outputs cannot drift away from the codebook.
#
# The loss per image is the sum-pixel BCE of the reconstruction plus both
# terms (each summed over the 49 positions and 16 channels).
#
# Codebook health is measured by the **perplexity** exp(H(p)) of code use p
# (64 if all codes are used equally, 1 if one code does everything) and the
# number of **dead codes** that no test image uses. A dead code gets no
# gradient, so it stays dead. The remedy here: after each step, move every code
# the batch did not use onto a random encoder output of that batch.
#
# The library code it relies on, to open alongside:
#
# - minigen/models/vqvae.py: `VectorQuantizer.nearest`, `VectorQuantizer.lookup`,
#   `VectorQuantizer.forward`, `VectorQuantizer.restart_dead_codes`,
#   `VQVAE.losses`, `VQVAE.train_step`
# - minigen/nn/losses.py: `binary_cross_entropy_with_logits`
# - minigen/train.py: `train`; minigen/metrics.py: `code_usage`, `perplexity`,
#   `reconstruction_bce`, `fid`, `class_coverage`
# - minigen/models/vqvae.py: `VQVAE.encode_indices`, `VQVAE.attach_prior`,
#   `VQVAE.sample`; minigen/models/prior.py: `causal_mask`, `MaskedConv2d`,
#   `PixelCNN.loss`, `PixelCNN.sample`, `fit_prior` (the prior, the last sections)
#
# Full run (two 5-epoch runs, then a 2-epoch prior and 2,000 samples of each
# kind): 6.4 minutes of wall time (6:24) and 6.4 of CPU time (381 s) on a 2-core
# Intel Xeon (AVX-512, OpenBLAS SkylakeX kernel) with one BLAS thread
# (OPENBLAS_NUM_THREADS=1), another lesson running on the other core. `--quick`: seconds.
#
# To reproduce the numbers marked "a full run": `OPENBLAS_NUM_THREADS=1
# python lessons/07_vqvae.py`. They are seed 0's; the spreads beside them are over
# seeds 0, 1 and 2 (`--seed`) on that machine. The digits repeat exactly only on
# the same CPU, BLAS kernel and thread count: another one sums the floats in
# another order, and training carries the difference on. On another machine your
# run should land inside the spread, and the lesson prints whether it does. Three
# seeds are few, though: a 2-core AMD EPYC (OpenBLAS Haswell kernel) printed a
# Fréchet distance of 98.3 for seed 0's PixelCNN samples, outside this narrow spread.

# %%
import time

from _setup import against_full_runs, relative_gap, setup

from minigen import backend, data, metrics, nn, optim, plots
from minigen.autograd import Tensor
from minigen.classifier import load_classifier
from minigen.models import PixelCNN as LibraryPixelCNN
from minigen.models import build, fit_prior, sample_images
from minigen.nn import functional as F
from minigen.train import train

np = backend.host
start = time.perf_counter()
args, out, train_images, test_images, test_labels = setup("07_vqvae", "Lesson 07: VQ-VAE", epochs=5)
PRIOR_EPOCHS = 2  # over all training code grids: about a minute of one-thread CPU
# samples per Fréchet distance; 49 prior passes each (quick: fewer)
N_EVAL = 128 if args.quick else 2000
# What this lesson's full runs (default options, full Fashion-MNIST) printed, seeds 0, 1, 2:
FULL_RUN = {
    "no remedy": {
        "rec": (214.9, 211.3, 217.8),  # test reconstruction BCE, nats per image
        "perplexity": (19.4, 31.4, 15.3),  # of code use on the test images
        "used": (30, 58, 24),  # codes of 64 that some test image uses
    },
    "with restarts": {
        "rec": (208.5, 208.5, 208.7),
        "perplexity": (47.3, 45.7, 49.4),
        "used": (64, 64, 64),
    },
    "top code share": (12, 15, 10),  # % of test positions on the most used code (restarts)
    "prior test loss": (2.399, 2.378, 2.408),  # nats per position
    "prior -elbo": (326.0, 325.0, 326.7),  # test -ELBO with the prior, nats per image
    "uniform codes": {"fd": (337.4, 331.2, 328.8), "covered": (4, 4, 4)},  # N = 2,000
    "PixelCNN prior": {"fd": (95.9, 94.1, 95.6), "covered": (7, 7, 8)},  # N = 2,000
    "prior seconds": 51,  # seed 0's CPU time for the prior, on the machine the header names
    "minutes": 6.4,  # seed 0, on the machine the header names
}

# %% [markdown]
# ## Build it: the quantizer, the loss, one step
#
# The encoder and decoder are lesson 06's convolutions, with 1x1 convolutions
# in and out of the 16-d code space. The new part is the quantizer.
# "Nearest" is an argmin of squared distances, computed for all positions and
# codes at once as ||z||^2 - 2 z.e + ||e||^2: one matrix product instead of
# an (M, K, D) array of differences. It runs on arrays (`.data`): the choice
# of code has no gradient. The lookup of the chosen codes is plain indexing
# here; the library writes it as a one-hot (M, K) matrix times the codebook
# (`VectorQuantizer.lookup`), the same values, whose gradient is summed in a
# fixed order also on a GPU. So the two gradients agree to float32 rounding,
# not bit for bit.

# %%
K, D, BETA = 64, 16, 0.25


class Quantizer(nn.Module):
    """z_e (N, D, H, W) -> z_q_st (N, D, H, W), codebook and commitment losses, codes (M,)."""

    def __init__(self):
        super().__init__()
        self.codebook = nn.Parameter(backend.uniform(-1.0 / K, 1.0 / K, (K, D)))

    def forward(self, z_e):
        n, c, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(n * h * w, c)  # one row per position
        z, e = flat.data, self.codebook.data
        distances = (z * z).sum(axis=1, keepdims=True) - 2 * z @ e.T + (e * e).sum(axis=1)
        codes = distances.argmin(axis=1)
        z_q = self.codebook[codes]  # a differentiable lookup: gradients reach the rows used
        codebook_loss = ((flat.detach() - z_q) ** 2).sum() / n  # moves the codes
        commitment_loss = BETA * ((flat - z_q.detach()) ** 2).sum() / n  # moves the encoder
        z_q_st = flat + (z_q - flat).detach()  # forward: z_q; backward: identity to z_e
        z_q_st = z_q_st.reshape(n, h, w, c).permute(0, 3, 1, 2)
        return z_q_st, codebook_loss, commitment_loss, codes


class VQVAE(nn.Module):
    """Encoder -> Quantizer -> decoder; attribute names as the library's VQVAE."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1),  # 28 -> 14
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),  # 14 -> 7
            nn.ReLU(),
            nn.Conv2d(64, D, 1),  # z_e: (N, 16, 7, 7)
        )
        self.quantizer = Quantizer()
        self.decoder = nn.Sequential(
            nn.Conv2d(D, 64, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),  # 7 -> 14
            nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),  # 14 -> 28, logits
        )

    def losses(self, x):
        z_q_st, codebook_loss, commitment_loss, _ = self.quantizer(self.encoder(x))
        logits = self.decoder(z_q_st)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        vq = codebook_loss + commitment_loss
        return {"loss": rec + vq, "rec": rec, "vq": vq}


# %% [markdown]
# One training step of ours against the library's `VQVAE.train_step`, from
# the same weights on the same batch (no noise here: the VQ-VAE is
# deterministic): the same losses and gradients up to float32 rounding.

# %%
backend.manual_seed(args.seed)
reference = build("vq-vae")
model = VQVAE()
model.load_state_dict(reference.state_dict())
ours, theirs = dict(model.named_parameters()), dict(reference.named_parameters())


x = data.scale_pixels(train_images[: reference.batch_size, None])
opt = optim.Adam(model.parameters(), lr=1e-3)
opt.zero_grad()
our_losses = model.losses(x)
our_losses["loss"].backward()
opt.step()
their_losses = reference.train_step(x, reference.make_optimizers())
for key in ("loss", "rec", "vq"):
    print(f"{key:4s}  ours {our_losses[key].item():10.4f}   library {their_losses[key]:10.4f}")
loss_gap = relative_gap(
    {k: v.data for k, v in our_losses.items()},
    {k: backend.xp().asarray(their_losses[k]) for k in our_losses},
)
grad_gap = relative_gap(
    {k: p.grad for k, p in ours.items()}, {k: p.grad for k, p in theirs.items()}
)
print(f"losses: largest relative difference {loss_gap:.1e}")
print(f"gradients: largest relative difference {grad_gap:.1e}")
assert max(loss_gap, grad_gap) < 1e-5, "the step written here differs from the library's"

# %% [markdown]
# ## Check: the straight-through gradient is the upstream gradient
#
# Cut the graph on both sides of the quantizer: z_e as a leaf (the encoder's
# output) and z_q as a leaf fed to the decoder. The reconstruction loss's
# gradient at z_q (upstream) must arrive at z_e unchanged.

# %%
model.zero_grad()
z_e = Tensor(model.encoder(x).data, requires_grad=True)
z_q_st, _, _, _ = model.quantizer(z_e)
rec = F.binary_cross_entropy_with_logits(model.decoder(z_q_st), x, reduction="sum") / len(x)
rec.backward()
z_q = Tensor(z_q_st.data, requires_grad=True)
rec_again = F.binary_cross_entropy_with_logits(model.decoder(z_q), x, reduction="sum") / len(x)
rec_again.backward()
same = bool((backend.to_numpy(z_e.grad) == backend.to_numpy(z_q.grad)).all())
print(f"gradient at z_e equals the upstream gradient at z_q, entry for entry: {same}")
print(f"and it is not zero: largest entry {float(np.abs(backend.to_numpy(z_e.grad)).max()):.2e}")
assert same, "the straight-through estimator changed the gradient"

# %% [markdown]
# ## Check: each loss moves what it should
#
# Backward one loss at a time and look at the size of the gradient that
# reaches each part. The codebook loss must move only the codebook, the
# commitment loss only the encoder, the reconstruction loss the encoder
# (straight through) and decoder but never the codebook.

# %%
parts = {"encoder": model.encoder, "codebook": model.quantizer, "decoder": model.decoder}


def grad_norms():
    """The gradient's norm on each part's parameters (0 where none arrived)."""
    return {
        part: sum(
            float((backend.to_numpy(p.grad) ** 2).sum())
            for p in m.parameters()
            if p.grad is not None
        )
        ** 0.5
        for part, m in parts.items()
    }


moves = {}
print(f"{'loss':12s}" + "".join(f"{part:>12s}" for part in parts))
for term in ("rec", "codebook", "commitment"):
    model.zero_grad()
    z_q_st, codebook_loss, commitment_loss, _ = model.quantizer(model.encoder(x))
    rec = F.binary_cross_entropy_with_logits(model.decoder(z_q_st), x, reduction="sum") / len(x)
    {"rec": rec, "codebook": codebook_loss, "commitment": commitment_loss}[term].backward()
    moves[term] = grad_norms()
    print(f"{term:12s}" + "".join(f"{moves[term][part]:12.3g}" for part in parts))
assert (
    moves["codebook"]["encoder"]
    == moves["codebook"]["decoder"]
    == 0
    < moves["codebook"]["codebook"]
)
assert moves["commitment"]["codebook"] == moves["commitment"]["decoder"] == 0
assert moves["commitment"]["encoder"] > 0 and moves["rec"]["codebook"] == 0
assert moves["rec"]["encoder"] > 0 and moves["rec"]["decoder"] > 0

# %% [markdown]
# ## Scale up: train the library's model without and with the dead-code remedy
#
# `train` (minigen/train.py) runs `VQVAE.train_step`; with
# `restart_dead=True` that step ends with `VectorQuantizer.restart_dead_codes`.

# %%
results, models = {}, {}
for remedy in (False, True):
    label = "with restarts" if remedy else "no remedy"
    trained, _, history = train(
        "vq-vae", args.epochs, images=train_images, seed=args.seed, restart_dead=remedy
    )
    counts, perplexity, dead = metrics.code_usage(trained, test_images)
    rec = metrics.reconstruction_bce(trained, test_images)
    results[label] = (rec, perplexity, dead, counts)
    models[label] = trained
    full = FULL_RUN[label]
    print(
        f"{label}: test reconstruction BCE {rec:.1f} nats/image "
        f"({against_full_runs(rec, full['rec'], args.quick)})"
    )
    print(
        f"  perplexity {perplexity:.1f} "
        f"({against_full_runs(perplexity, full['perplexity'], args.quick)})"
    )
    print(
        f"  {K - dead} of {K} codes used "
        f"({against_full_runs(K - dead, full['used'], args.quick, 'd')}); "
        f"codes restarted during training: {int(sum(history['restarted']))}"
    )
    plots.loss_curves(
        {"reconstruction (BCE)": history["rec"], "codebook + commitment": history["vq"]},
        out / f"losses_{label.replace(' ', '_')}.png",
        title=f"vq-vae, {label}: training loss per step (nats per image)",
        logy=True,
    )

# %% [markdown]
# On seed 0's full run, without the remedy 34 of the 64 codes are dead after 5
# epochs: 30 are used, with perplexity 19.4, and the test reconstruction BCE is
# 214.9 nats per image. How many codes die is the run's own: 30 used (24-58 over
# 3 seeds), perplexity 19.4 (15.3-31.4); seed 1 lost only 6 codes, seed 2 lost 40.
# With restarts (433 code moves over the run, 337-433 over 3 seeds) all 64 are
# used on every seed, perplexity 47.3 (45.7-49.4), and the BCE is 208.5
# (208.5-208.7): 6.4 nats better on seed 0, and better on all 3 seeds, by 2.8 to
# 9.1 nats (least on seed 1, which lost the fewest codes), since more symbols in
# use carry more information. Restarts also make the result steadier: their BCE
# spans 0.2 nats over the seeds, the no-remedy run's 6.5. In seed 0's
# reconstructions the checks of the last test image (and, less clearly, the logo
# on the second) survive better with restarts; so on seed 2, while on seed 1 the
# two look alike. For reference, lesson 05 measured the floor no reconstruction
# can go below, the pixel entropy of the test images: 189.9.
#
# The loss curves (log scale) show how codes die. The codebook starts within
# +-1/64 of zero; without the remedy the codebook + commitment term jumps to
# about 10^4 nats in the first hundred steps (on all 3 seeds): the encoder's
# outputs move far from the codebook, only the codes that get chosen follow
# them, and codes never chosen are left behind for good. With restarts the term
# stays at a few tens at most throughout: unused codes are moved to where the
# encoder's outputs are. In `code_usage.png` a few of the no-remedy run's codes
# in use are used so rarely that their bars do not show (on all 3 seeds).
#
# For scale: the code grid can say at most 49 * ln 64 = 204 nats per image
# (49 positions, 64 choices each), a hard ceiling on what z_q can carry, and
# only when all 64 codes are used equally often (perplexity 64).

# %%
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 2, figsize=(10, 3), dpi=100, sharey=True)
for ax, (label, (_, perplexity, dead, counts)) in zip(axes, results.items()):
    ax.bar(range(K), np.sort(counts)[::-1] / counts.sum())
    ax.set_title(f"{label}: perplexity {perplexity:.1f}, {K - dead} codes used")
    ax.set_xlabel("code (sorted by use)")
axes[0].set_ylabel("share of test positions")
fig.tight_layout()
plots.save_figure(fig, out / "code_usage.png")

x = data.scale_pixels(test_images[:8, None])
for label, trained in models.items():
    with nn.eval_mode(trained):
        recon = trained.reconstruct(x).data
    plots.reconstructions(
        x, recon, out / f"reconstructions_{label.replace(' ', '_')}.png", title=f"vq-vae, {label}"
    )
print(f"saved losses_*.png, code_usage.png and reconstructions_*.png in {out}/")

# %% [markdown]
# ## What the code grid says: code maps and per-code usage
#
# From here on, the model with restarts. `VQVAE.encode_indices`
# (minigen/models/vqvae.py) turns images into their 7x7 grids of code
# indices, in batches without a graph: the codes the forward pass picks.
# `code_maps.png` shows a few test images above their grids (each cell names
# its code, coloured by code), and below them how often each code is used over
# all test positions, in code order with the same colours. On seed 0's full
# run one code, 34, takes most of the empty background: it fills the side
# columns of the trousers' maps and the top of the boot's, and its bar (12% of
# the test positions) towers over the next ones (codes 31 and 44, 5% and 4%);
# the bottom row of the maps uses other codes. On each of the 3 seeds one code
# fills the trousers' side columns and takes the largest share, 12% (10-15% over
# 3 seeds), but a different index each time (34, 24 and 11 for seeds 0, 1, 2),
# and on seed 2 the top row went to a second code. Which index plays which part
# is a run's accident (the codebook starts random and restarts move codes
# around), not a property of the model.
# Inside a garment neighbouring positions use codes that go together (the
# same few codes along a trouser leg): that dependence is what a prior must
# learn, and what uniformly random codes ignore.

# %%
vq = models["with restarts"]
shown = test_images[:6]
maps = backend.to_numpy(vq.encode_indices(shown))  # (6, 7, 7) ints in 0..63
with nn.eval_mode(vq):
    forward_codes = backend.to_numpy(vq(data.scale_pixels(shown[:, None]))[3])
assert (maps == forward_codes).all(), "encode_indices differs from the forward pass"
counts = results["with restarts"][3]
share = counts / counts.sum()
top = np.argsort(share)[::-1][:3]
print(
    "the most used codes: "
    + ", ".join(f"code {c} on {share[c]:.0%} of test positions" for c in top)
)
top_share = 100 * share[top[0]]
print(
    f"the most used code's share, in %: {top_share:.0f} "
    f"({against_full_runs(top_share, FULL_RUN['top code share'], args.quick, '.0f')}; "
    "the index is an accident of the run)"
)
print(f"codes of test image 0 (a {data.CLASSES[args.dataset][int(test_labels[0])]}):\n{maps[0]}")

colours = plt.get_cmap("nipy_spectral")
fig = plt.figure(figsize=(12, 6), dpi=100)
grid = fig.add_gridspec(3, len(shown), height_ratios=[1, 1, 0.9])
for i in range(len(shown)):
    ax = fig.add_subplot(grid[0, i])
    ax.imshow(shown[i], cmap="gray")
    ax.set_axis_off()
    ax.set_title(f"test image {i}", fontsize=9)
    ax = fig.add_subplot(grid[1, i])
    ax.imshow(maps[i], cmap=colours, vmin=0, vmax=K - 1)
    for (r, c), code in np.ndenumerate(maps[i]):
        rgb = colours(code / (K - 1))[:3]  # dark text on light cells, light on dark
        ink = "black" if 0.3 * rgb[0] + 0.6 * rgb[1] + 0.1 * rgb[2] > 0.5 else "white"
        ax.text(c, r, str(code), ha="center", va="center", fontsize=6, color=ink)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("its 7x7 codes", fontsize=9)
ax = fig.add_subplot(grid[2, :])
ax.bar(range(K), share, color=colours(np.arange(K) / (K - 1)))
ax.set_xlabel("code index")
ax.set_ylabel("share of test positions")
ax.set_xlim(-0.5, K - 0.5)
ax.set_title("per-code usage over all test images (with restarts)", fontsize=9)
fig.tight_layout()
plots.save_figure(fig, out / "code_maps.png")

# %% [markdown]
# ## The ELBO view, and why a prior is needed to sample
#
# Read as a VAE, the VQ-VAE's posterior q(c | x) puts all its mass on one grid
# c(x) (the nearest codes), so its entropy is 0 and the KL term of the ELBO is
# KL(q || p) = -log p(c(x)). Training assumes a **uniform prior**, p(c) = 1/K
# at each of the 49 positions: then the KL is the constant 49 log K = 49 ln 64
# = 203.8 nats for every image, whatever the weights, and drops out of the
# gradient. That is why the loss above has no KL term, and why
# `VQVAE.sample` without a prior decodes uniformly random grids: each
# position's code drawn on its own, ignoring which codes go together (a
# sleeve's codes next to a sole's). Those samples look like nothing.
#
# A learned prior replaces log K per position by -log p(c_p | c_<p) from an
# autoregressive model over the grid, built next on the page, checked
# against the library's and then trained. Its test loss times 49 is the new KL
# term, so the test -ELBO (BCE on continuous pixels: lesson 05's caveat, it is
# no bound on a normalised density, but it compares models) drops by what the
# prior learned.

# %%
log_k = float(np.log(K))
print(f"uniform prior: KL = 49 log {K} = 49 x {log_k:.4f} = {49 * log_k:.1f} nats per image")
rec_restart = results["with restarts"][0]
print(
    f"test -ELBO with the uniform prior: {rec_restart:.1f} + {49 * log_k:.1f} = "
    f"{rec_restart + 49 * log_k:.1f} nats per image"
)

# uniform-code samples first (no prior attached yet), from their own seed
classifier = load_classifier(args.dataset)
n_eval = min(N_EVAL, len(test_images))
backend.manual_seed(args.seed + 1)
uniform = sample_images(vq, n_eval)

# %% [markdown]
# ## Build it: a PixelCNN prior over the code grid
#
# A prior over grids factorises in raster order (row by row, left to right):
# p(c) = prod_p p(c_p | c_0, ..., c_{p-1}), one softmax over the 64 codes at
# each of the 49 positions. One network computes all 49 in one pass if its
# logits at position p never depend on a code at p or after it. PixelCNN
# (van den Oord et al. 2016) gets that from **masked convolutions**: each 3x3
# kernel is multiplied by a fixed 0/1 mask that keeps the row above the centre
# and the tap left of it. Type A, in the first layer, also hides the centre,
# since there the centre is the code to predict; type B, in the later layers,
# keeps it, since after layer A the centre holds only what earlier positions
# said. The input is the grid as 64 one-hot channels; a 1x1 convolution at the
# end (its own centre, so causal) gives 64 logits per position.
#
# Keras's VQ-VAE example builds the same layer by wrapping a Conv2D and
# writing its kernel times the mask back into it at each call. Here the
# product is part of the graph, so a masked weight also gets zero gradient:
# training cannot bring it back. The attribute names are the library's, so
# its weights load into ours.


# %%
def causal_mask(mask_type):
    """The 3x3 0/1 mask: the row above the centre, the tap left of it, the centre if "B"."""
    mask = np.zeros((3, 3), dtype=np.float32)
    mask[0] = 1
    mask[1, 0] = 1
    mask[1, 1] = mask_type == "B"
    return mask


class MaskedConv2d(nn.Conv2d):
    """A same-size 3x3 Conv2d whose kernel is multiplied by causal_mask(mask_type)."""

    def __init__(self, in_channels, out_channels, mask_type):
        super().__init__(in_channels, out_channels, 3, padding=1)
        self.mask = backend.from_numpy(causal_mask(mask_type))

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding)


def one_hot(codes):
    """(N, 7, 7) host ints -> (N, K, 7, 7) float32 Tensor, one channel per code."""
    k = backend.xp().arange(K).reshape(1, K, 1, 1)
    return Tensor((backend.from_numpy(codes)[:, None] == k).astype(np.float32))


class PixelCNN(nn.Module):
    """Code grids (N, 7, 7) -> logits (N, K, 7, 7): mask A, then `layers` mask B, then 1x1."""

    def __init__(self, hidden=32, layers=3):
        super().__init__()
        parts = [MaskedConv2d(K, hidden, "A"), nn.ReLU()]
        for _ in range(layers):
            parts += [MaskedConv2d(hidden, hidden, "B"), nn.ReLU()]
        parts.append(nn.Conv2d(hidden, K, 1))
        self.net = nn.Sequential(*parts)

    def forward(self, codes):
        return self.net(one_hot(codes))


fig, axes = plt.subplots(1, 2, figsize=(6, 3.2), dpi=100)
for ax, mask_type in zip(axes, "AB"):
    mask = causal_mask(mask_type)
    ax.imshow(mask, cmap="Blues", vmin=0, vmax=1.5)
    for (r, c), v in np.ndenumerate(mask):
        ax.text(
            c, r, f"{v:.0f}", ha="center", va="center", fontsize=16, color="white" if v else "black"
        )
    ax.add_patch(plt.Rectangle((0.5, 0.5), 1, 1, fill=False, edgecolor="red", linewidth=3))
    ax.set_xticks([])
    ax.set_yticks([])
    layers_of = "first layer" if mask_type == "A" else "later layers"
    ax.set_title(f"type {mask_type} ({layers_of})")
fig.suptitle(
    "3x3 causal masks (1: tap kept); red: the centre, the output's own position", fontsize=10
)
fig.tight_layout()
plots.save_figure(fig, out / "causal_masks.png")
print(f"saved causal_masks.png in {out}/")

# %% [markdown]
# ## Check: the logits at p never see a code at p or after it
#
# Take the test grids of `code_maps.png`, replace every code at positions
# >= p (raster order) by another code, and compare the logits before and
# after. At p and before they must not move at all, not even by rounding: a
# masked tap multiplies its input by an exact 0. Right after p they move.
# Checked for every p; printed for the centre.

# %%
backend.manual_seed(args.seed)
page_prior = PixelCNN()


def logits_by_position(codes):
    """(N, 7, 7) codes -> host (N, K, 49) logits, positions in raster order."""
    with nn.eval_mode(page_prior):
        return backend.to_numpy(page_prior(codes).data).reshape(len(codes), K, 49)


before = logits_by_position(maps)
for p in range(49):
    changed = maps.reshape(len(maps), 49).copy()
    changed[:, p:] = (changed[:, p:] + backend.rng().integers(1, K, changed[:, p:].shape)) % K
    moved = np.abs(logits_by_position(changed.reshape(maps.shape)) - before).max(axis=(0, 1))
    assert moved[: p + 1].max() == 0, f"the logits at or before position {p} saw a later code"
    if p == 24:
        print(
            f"codes changed at positions >= 24 (row 3, column 3): largest change of the "
            f"logits at 24: {moved[24]}, at 0..24: {moved[:25].max()}, at 25: {moved[25]:.3g}"
        )
        assert moved[25] > 0, "the logits at 25 do not see the code at 24"
print("no position's logits moved when codes at or after it changed (all 49 positions)")

# %% [markdown]
# ## The blind spot: which earlier codes a position actually sees
#
# Causal is not the same as seeing all the past. Position p's logits depend on
# code q exactly when some gradient d logit_p / d one_hot(q) is nonzero (a
# masked tap gives an exact 0; a few random grids, so that a ReLU that happens
# to be off on one grid hides nothing), so a backward pass maps what p sees.
# Each masked layer takes in a position's left neighbour and the three
# cells of the row above (up-left, up, up-right). So four masked layers see at
# most four rows up and four columns left, and they gain only one column to
# the right per row they climb: the codes above and right of that diagonal
# stay unseen at any depth. That triangle is the **blind spot**. A deeper
# stack (12 masked layers, narrow, built only to map what it sees) tells the
# two apart.

# %%
backend.manual_seed(args.seed)
random_grids = backend.rng().integers(0, K, (8, 7, 7))
earlier = np.arange(49)[:, None] > np.arange(49)  # earlier[p, q]: q comes before p
# all 49 positions in one backward pass: copy p of the grids asks for position p's logits
copies = np.tile(random_grids, (49, 1, 1))  # (49 * 8, 7, 7), copy p at rows 8p..8p+7
position = backend.from_numpy(np.repeat(np.eye(49, dtype=np.float32), 8, axis=0))


def seen_by(network):
    """(49, 49) bool: seen[p, q] if position p's logits depend on the code at q."""
    x = Tensor(one_hot(copies).data, requires_grad=True)
    (network.net(x) * position.reshape(-1, 1, 7, 7)).sum().backward()
    grad = np.abs(backend.to_numpy(x.grad)).reshape(49, 8 * K, 49)
    return grad.sum(axis=1) > 0


seen, seen_deep = seen_by(page_prior), seen_by(PixelCNN(hidden=8, layers=11))
assert not (seen & ~earlier).any(), "a position sees itself or a later code"
unseen, blind = earlier & ~seen, earlier & ~seen_deep
assert not (blind & seen).any(), "the deeper stack misses a code the shallow one sees"
p = 42  # row 6, column 0
marks = np.full(49, ".")  # later positions
marks[seen[p]], marks[unseen[p]], marks[blind[p]], marks[p] = "o", "-", "x", "p"
print(
    f"what position {p} (row 6, column 0) sees after 4 masked layers: o seen, - out of "
    "reach (a deeper stack sees it), x blind spot (no depth sees it), . later"
)
print("\n".join("  " + " ".join(row) for row in marks.reshape(7, 7)))
print(
    f"earlier codes each position cannot see (4 masked layers):\n{unseen.sum(axis=1).reshape(7, 7)}"
)
print(
    f"in all: {unseen.sum()} of the {earlier.sum()} (position, earlier position) pairs unseen, "
    f"{blind.sum()} of them in the blind spot ({unseen.sum() - blind.sum()} out of reach)"
)

# %% [markdown]
# What it costs. The prior still defines a proper distribution over grids
# (each factor is a softmax over codes it may condition on), so its loss and
# its samples stay correct; but at each position it models p(c_p | the codes
# it sees), not p(c_p | all earlier codes), and conditioning on less can only
# leave more uncertainty: the loss it can reach has a higher floor. On this
# grid a third of all (position, earlier position) pairs go unseen (395 of
# 1,176: a count of the architecture, the same for any weights and run). The
# codes a position misses lie up and to its right: at a garment's left edge,
# the codes just above it on the right (the other shoulder, say), and from
# the bottom rows, the top of the garment. More layers bring the out-of-reach
# part in, at a higher cost per pass (and 49 passes per sample); the blind
# spot needs another design, the gated PixelCNN's two stacks (van den Oord et
# al. 2016b), one that sees every row above and one for the codes to the left.

# %% [markdown]
# ## Check: the same network as the library's
#
# Load a fresh `PixelCNN` of minigen/models/prior.py's weights into ours and
# feed both the test images' code grids: the logits, the loss (the mean
# cross-entropy per position that `fit_prior` minimises) and its gradients
# must agree.

# %%
reference_prior = LibraryPixelCNN(num_codes=K)
page_prior.load_state_dict(reference_prior.state_dict())
page_prior.zero_grad()  # the blind-spot map above left gradients behind
codes = backend.to_numpy(vq.encode_indices(test_images[:256]))
logits = page_prior(codes)
targets = backend.from_numpy(codes.reshape(-1))  # raster order, as the logits' rows
our_loss = F.cross_entropy(logits.permute(0, 2, 3, 1).reshape(-1, K), targets)
their_loss = reference_prior.loss(codes)
our_loss.backward()
their_loss.backward()
logit_gap = float(np.abs(backend.to_numpy(logits.data - reference_prior(codes).data)).max())
grad_gap = relative_gap(
    {k: p.grad for k, p in page_prior.named_parameters()},
    {k: p.grad for k, p in reference_prior.named_parameters()},
)
print(f"logits on {len(codes)} test grids: largest difference {logit_gap:.1e}")
print(f"loss: ours {our_loss.item():.6f}, library {their_loss.item():.6f} nats per position")
print(f"gradients: largest relative difference {grad_gap:.1e}")
assert max(logit_gap, grad_gap) < 1e-5, "the PixelCNN written here differs from the library's"

# %% [markdown]
# ## Scale up: train the library's prior
#
# minigen/models/prior.py's `PixelCNN` is the network above (its width and
# depth are the VQ-VAE's `prior_hidden` and `prior_layers`). `fit_prior`
# trains it: the training images' code grids from `encode_indices`, then Adam
# on `PixelCNN.loss`, the mean cross-entropy per position; `VQVAE.attach_prior`
# keeps it with the model. `PixelCNN.sample` fills a grid position by position
# (49 passes), and `VQVAE.sample` decodes it.

# %%
prior_epochs = 1 if args.quick else PRIOR_EPOCHS
backend.manual_seed(args.seed)
tic = time.process_time()
prior, prior_losses = fit_prior(vq, train_images, prior_epochs)
prior_seconds = time.process_time() - tic
assert vq.prior is prior
test_codes = vq.encode_indices(test_images)
with nn.eval_mode(prior):  # no graph; in chunks of 1,000 grids (equal sizes: mean of means)
    chunks = [test_codes[i : i + 1000] for i in range(0, len(test_codes), 1000)]
    prior_test = sum(float(prior.loss(c).item()) * len(c) for c in chunks) / len(test_codes)
print(
    f"prior: {sum(p.size for p in prior.parameters()):,} weights, {prior_epochs} epoch(s) on "
    f"{len(train_images):,} code grids in {prior_seconds:.0f} s of CPU time (a full run on "
    f"the header's Xeon: {FULL_RUN['prior seconds']} s); training loss per epoch "
    + ", ".join(f"{v:.3f}" for v in prior_losses)
    + " nats per position"
)
prior_nelbo = rec_restart + 49 * prior_test
print(
    f"prior on the test codes: {prior_test:.3f} nats per position against log {K} = "
    f"{log_k:.3f} for the uniform prior "
    f"({against_full_runs(prior_test, FULL_RUN['prior test loss'], args.quick, '.3f')})"
)
print(
    f"  KL term {49 * prior_test:.1f} nats per image, test -ELBO {prior_nelbo:.1f} "
    f"({against_full_runs(prior_nelbo, FULL_RUN['prior -elbo'], args.quick)})"
)
assert prior_test < log_k or args.quick, "the prior learned nothing about the codes"

backend.manual_seed(args.seed + 1)
drawn = sample_images(vq, n_eval)
real_fd = metrics.fid(test_images[:n_eval], train_images[:n_eval], classifier)
real_cov = metrics.class_coverage(test_images[:n_eval], classifier)[1]
print(f"{n_eval} samples each, against {n_eval} real test images:")
print(
    f"  real training images: Fréchet distance {real_fd:.1f} (the floor at this sample "
    f"count); the real test images cover {real_cov}/10 classes"
)
for label, images in (("uniform codes", uniform), ("PixelCNN prior", drawn)):
    fd = metrics.fid(test_images[:n_eval], images, classifier)
    covered = metrics.class_coverage(images, classifier)[1]
    full = FULL_RUN[label]
    print(
        f"  {label:15s} Fréchet distance {fd:6.1f} "
        f"({against_full_runs(fd, full['fd'], args.quick)})"
    )
    print(
        f"  {'':15s} {covered}/10 classes "
        f"({against_full_runs(covered, full['covered'], args.quick, 'd')})"
    )
    plots.image_grid(
        images[:64], out / f"{label.split()[0].lower()}_samples.png", value_range=(0, 1),
        title=f"vq-vae: {len(images[:64])} samples, codes from the {label.split()[0]} prior",
    )  # fmt: skip
print(f"saved code_maps.png, uniform_samples.png and pixelcnn_samples.png in {out}/")

# %% [markdown]
# On seed 0's full run the prior (51 s of CPU time for 2 epochs over the 60,000
# training grids) reaches 2.399 (2.378-2.408 over 3 seeds) nats per position on
# the test codes, against 4.159 for the uniform prior: the KL term falls from
# 203.8 to 117.6 (116.5-118.0) nats per image, and the test -ELBO from 412.3 to
# 326.0 (325.0-326.7). Its samples score a Fréchet distance of 95.9 (94.1-95.9)
# with 7/10 classes (7-8), against 337.4 (328.8-337.4) with 4/10 (4 on every
# seed) for uniform codes (real images: 1.9, 10/10): about 3.5 times lower with
# the prior, on every seed. `pixelcnn_samples.png` shows rough light shapes on a
# black background, some garment-like (a top, a shoe), many too rough to name,
# on all 3 seeds; `uniform_samples.png` shows a patchwork of blobs with no
# outline: each position's code on its own makes local strokes, not a garment.
# More prior epochs should lower its loss further
# (the loss per epoch printed above still falls from the first epoch to the
# second: 3.135 then 2.469 on seed 0's full run, and on all 3 seeds); whether
# the Fréchet distance of its samples follows, this lesson does not measure. A
# wider or deeper PixelCNN (`prior_hidden`, `prior_layers`) can model more, at a
# higher cost per step and per sample (49 passes per sample).

# %%
minutes = (time.perf_counter() - start) / 60
print(
    f"this run took {minutes:.1f} minutes "
    f"(a full run on the header's Xeon: {FULL_RUN['minutes']:.1f})"
)

# %% [markdown]
# ## Summary
#
# **Built:** the vector quantizer (nearest code, straight-through gradient,
# codebook and commitment losses) and one VQ-VAE step checked against
# `VQVAE.train_step`; the checks that the straight-through gradient is the
# upstream gradient and that each loss moves what it should. **Measured:**
# the test reconstruction BCE, the perplexity and the codes in use without
# and with the dead-code restarts; the code maps; a PixelCNN prior's loss
# per position against log K for uniform codes, and its samples' Fréchet
# distance against uniform codes'. **The one idea to keep:** a discrete code
# carries at most 49 ln K nats per image (203.8 for K = 64), and only the
# codes in use count; sampling needs a prior over the codes that knows which
# go together.
#
# ## Exercises
#
# Worked solutions: `lessons/solutions/07_vqvae.py` (`--exercise K` runs one;
# each trains its models for 2 epochs).
#
# 1. **Shrink the codebook.** Train with K = 4, 16 and 64 codes (with
#    restarts). Predict, for each K, the codes in use, the perplexity and the
#    test reconstruction BCE, given the ceiling 49 ln K on what the grid can
#    carry.
# 2. **The commitment weight beta.** Train with beta = 0.05, 0.25 (the
#    default) and 1. Predict how the codebook + commitment term at the end of
#    training and the test reconstruction BCE change with beta: what does the
#    commitment loss hold the encoder to?
# 3. **What a prior that knows only code frequencies saves.** Count how often
#    each code appears in the training images' grids and use those
#    frequencies as the prior at every position (no context). Predict its
#    loss per position on the test codes between log K (uniform) and the
#    PixelCNN's, and the KL per image it gives.
