# %% [markdown]
# # Lesson 07: VQ-VAE, a discrete latent code
#
# A VQ-VAE (van den Oord et al. 2017) replaces the Gaussian latent of a VAE by
# a grid of symbols. The encoder makes z_e, a 7x7 grid of 16-d vectors; each
# vector snaps to the nearest of 64 learned codebook vectors; the decoder sees
# only the snapped grid z_q. An image becomes 49 numbers in 0..63.
#
# Three ideas make it train (minigen/models/vqvae.py):
#
# - **Straight-through estimator.** argmin has no gradient. The decoder's
#   gradient at z_q is copied to z_e unchanged: z_q_st = z_e + sg[z_q - z_e].
# - **Codebook loss** ||sg[z_e] - e||^2 pulls each used code towards the
#   encoder outputs that chose it.
# - **Commitment loss** 0.25 ||z_e - sg[e]||^2 keeps the encoder near its codes,
#   so its outputs cannot drift away from the codebook.
#
# Codebook health is measured by the **perplexity** exp(H(p)) of code use p
# (64 if all codes are used equally, 1 if one code does everything) and the
# number of **dead codes** that no test image uses. A dead code gets no
# gradient, so it stays dead. The remedy here: after each step, move every code
# the batch did not use onto a random encoder output of that batch.
#
# Full run (two 5-epoch runs): 7 minutes measured on 2 busy CPU cores. `--quick`: seconds.

# %%
from _setup import setup

from minigen import backend, data, metrics, no_grad, plots
from minigen.train import train

args, out, train_images, test_images, _ = setup("07_vqvae", "Lesson 07: VQ-VAE", epochs=5)

# %% [markdown]
# ## Train without and with the dead-code remedy

# %%
results, models = {}, {}
for remedy in (False, True):
    label = "with restarts" if remedy else "no remedy"
    model, _, history = train(
        "vq-vae", args.epochs, images=train_images, seed=args.seed, restart_dead=remedy
    )
    model.eval()
    counts, perplexity, dead = metrics.code_usage(model, test_images)
    rec = metrics.reconstruction_bce(model, test_images)
    results[label] = (rec, perplexity, dead, counts)
    models[label] = model
    print(
        f"{label}: test reconstruction BCE {rec:.1f} nats/image, perplexity {perplexity:.1f}, "
        f"{64 - dead} of 64 codes used"
    )
    plots.loss_curves(
        {"reconstruction": history["rec"], "vq terms": history["vq"]},
        out / f"losses_{label.replace(' ', '_')}.png",
        title=f"vq-vae, {label}",
    )

# %% [markdown]
# The remedy keeps the whole codebook alive: perplexity rises and the
# reconstruction improves, since more symbols carry more information
# (at most 49 * log(64) = 204 nats per image, a hard ceiling on what z_q can say).

# %%
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 2, figsize=(10, 3), dpi=100, sharey=True)
for ax, (label, (_, perplexity, dead, counts)) in zip(axes, results.items()):
    ax.bar(range(64), backend.host.sort(counts)[::-1] / counts.sum())
    ax.set_title(f"{label}: perplexity {perplexity:.1f}, {64 - dead} codes used")
    ax.set_xlabel("code (sorted by use)")
axes[0].set_ylabel("share of test positions")
fig.tight_layout()
fig.savefig(out / "code_usage.png")
plt.close(fig)

with no_grad():
    x = data.scale_pixels(test_images[:8, None])
    for label, model in models.items():
        plots.reconstructions(
            x, model.reconstruct(x).data, out / f"reconstructions_{label.replace(' ', '_')}.png"
        )
print(f"saved code_usage.png and reconstructions in {out}/")
