# %% [markdown]
# # Lesson 09: GAN, VAE, VQ-VAE and VAE-GAN side by side
#
# Four families, one dataset, the same measurements:
#
# - **Sample quality**: Fréchet distance of 5,000 samples to real test images
#   in the feature space of minigen's Fashion-MNIST classifier (lower is better),
#   and class coverage (classes that get at least 5% of the samples).
# - **Likelihood**, where the model defines one: the test negative ELBO of the
#   VAEs (nats per image). GANs and VAE-GAN define no likelihood.
# - **Reconstruction**: sum-pixel BCE of the reconstruction of test images
#   (nats per image), for the models that have an encoder.
# - **Training time** per epoch on this machine.
# - **Stability**: every number over three seeds, as mean ± standard deviation.
#
# The VQ-VAE has no prior of its own (one is usually trained afterwards, e.g. a
# PixelCNN over the code grid); its "samples" here decode uniformly random code
# grids, to show why that second stage is needed.
#
# Full run (5 models x 3 seeds x 2 epochs): an estimated 60 minutes on 2 CPU cores;
# raise `--epochs` on a GPU. `--quick`: under a minute.

# %%
import time

import matplotlib.pyplot as plt
from _setup import setup

from minigen import backend, metrics
from minigen.classifier import load_classifier
from minigen.models import sample_images
from minigen.train import train

args, out, train_images, test_images, _ = setup(
    "09_comparison", "Lesson 09: the four families compared", epochs=2
)
np = backend.host
classifier = load_classifier(args.dataset)
n_eval = min(5000, len(test_images))
seeds = [args.seed] if args.quick else [args.seed, args.seed + 1, args.seed + 2]
names = ["dcgan", "mlp-vae", "conv-vae", "vq-vae", "vae-gan"]

# %% [markdown]
# ## Train every model with every seed, and measure

# %%
rows = {name: [] for name in names}
for seed in seeds:
    for name in names:
        start = time.perf_counter()
        model, _, _ = train(name, args.epochs, images=train_images, seed=seed, quiet=True)
        seconds = (time.perf_counter() - start) / args.epochs
        model.eval()
        backend.manual_seed(seed + 100)
        samples = sample_images(model, n_eval)
        row = {
            "fd": metrics.fid(test_images[:n_eval], samples, classifier),
            "coverage": metrics.class_coverage(samples, classifier)[1],
            "s/epoch": seconds,
        }
        if name.endswith("-vae") and name != "vq-vae":
            row["-elbo"] = metrics.negative_elbo(model, test_images)
        if name in ("mlp-vae", "conv-vae", "vq-vae"):
            row["rec"] = metrics.reconstruction_bce(model, test_images)
        rows[name].append(row)
        print(f"seed {seed} {name:9s} " + "  ".join(f"{k} {v:.1f}" for k, v in row.items()))
        if seed == seeds[0]:
            rows[name + "/grid"] = samples[:32, 0]

# %% [markdown]
# ## The table

# %%
columns = [
    ("fd", "Fréchet dist."),
    ("coverage", "classes>=5%"),
    ("-elbo", "test -ELBO"),
    ("rec", "recon. BCE"),
    ("s/epoch", "s/epoch"),
]
lines = ["model      " + "".join(f"{title:>20s}" for _, title in columns)]
for name in names:
    cells = []
    for key, _ in columns:
        values = [r[key] for r in rows[name] if key in r]
        cells.append(
            f"{np.mean(values):12.1f} ± {np.std(values):5.1f}" if values else f"{'-':>20s}"
        )
    lines.append(f"{name:10s} " + "".join(cells))
table = "\n".join(lines)
print(
    f"\n{len(seeds)} seed(s), {args.epochs} epoch(s) each, {len(train_images)} training images\n{table}"
)
(out / "table.txt").write_text(table + "\n")

# %% [markdown]
# ## Samples, one row per model

# %%
fig, axes = plt.subplots(len(names), 1, figsize=(12, 1.6 * len(names)), dpi=100)
for ax, name in zip(axes, names):
    strip = np.concatenate(list(rows[name + "/grid"][:16]), axis=1)
    ax.imshow(strip, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(name, fontsize=9, loc="left")
fig.tight_layout()
fig.savefig(out / "samples.png")
plt.close(fig)

fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
for i, name in enumerate(names):
    values = [r["fd"] for r in rows[name]]
    ax.scatter([i] * len(values), values)
ax.set_xticks(range(len(names)), names)
ax.set_ylabel("Fréchet distance (lower is better)")
ax.set_title("sample quality over seeds")
fig.tight_layout()
fig.savefig(out / "frechet_by_seed.png")
plt.close(fig)
print(f"saved table.txt, samples.png and frechet_by_seed.png in {out}/")

# %% [markdown]
# What to read from it: the GAN makes the sharpest samples but offers no
# likelihood and no encoder; the VAEs give a bound on log p(x) and faithful
# reconstructions but blur; the VQ-VAE reconstructs best of all, yet cannot
# sample without a learned prior over its codes; VAE-GAN buys sharper samples
# and reconstructions from the VAE at the price of the likelihood, and of a
# less stable game (compare the spread over seeds).
