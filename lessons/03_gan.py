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
