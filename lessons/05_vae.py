# %% [markdown]
# # Lesson 05: the variational autoencoder
#
# A VAE learns a latent space you can sample from. The encoder maps an image x
# to a Gaussian q(z|x) = N(mu, diag(exp(logvar))); the decoder maps a latent z
# to Bernoulli logits for the 784 pixels. Training minimises the negative
# ELBO, an upper bound on -log p(x):
#
#     -ELBO(x) = E_q[ -log p(x|z) ] + KL(q(z|x) || N(0, I))
#              = sum_pixels BCE(decoder(z), x) + 1/2 sum_j (mu^2 + e^logvar - 1 - logvar)
#
# The first term asks for good reconstructions; the KL term keeps every q(z|x)
# close to the prior N(0, I), so that z ~ N(0, I) decodes to a plausible image.
#
# Reparameterisation: sampling z ~ q(z|x) is not differentiable in mu and
# logvar, but z = mu + exp(logvar/2) * eps with eps ~ N(0, I) is: the
# randomness becomes an input (see `reparameterize` in minigen/ops.py).
#
# This lesson trains the reference mlp-vae (784-400-20) on Fashion-MNIST for 10
# epochs, measures the test negative ELBO in nats per image, and looks at
# samples, reconstructions and interpolations. Then a VAE with a 2-D latent,
# whose whole latent space fits on one page.
#
# Full run: 2.5 minutes measured on 2 busy CPU cores. `--quick`: seconds.

# %%
from _setup import setup

from minigen import backend, data, metrics, no_grad, plots
from minigen.train import train

args, out, train_images, test_images, test_labels = setup(
    "05_vae", "Lesson 05: the variational autoencoder", epochs=10
)

# %% [markdown]
# ## Train, and measure the test ELBO after every epoch
#
# The numbers are nats per image: BCE against the continuous pixel values in
# [0, 1], summed over pixels, plus KL, one sample of z. They are not
# comparable with published numbers on *binarised* MNIST.

# %%
test_nelbo = []


def evaluate(model, epoch, history):
    model.eval()
    test_nelbo.append(metrics.negative_elbo(model, test_images))
    print(f"  epoch {epoch + 1}: test negative ELBO {test_nelbo[-1]:.1f} nats per image")


vae, _, history = train(
    "mlp-vae", args.epochs, images=train_images, seed=args.seed, on_epoch_end=evaluate
)
plots.loss_curves(
    {"reconstruction": history["rec"], "KL": history["kl"]},
    out / "losses.png",
    title="mlp-vae: the two parts of the loss (per training step)",
)

# %% [markdown]
# The reconstruction term falls fast; the KL term *rises* at first: the
# encoder learns to put information into z, which costs nats of KL. The sum
# is what the model trades off.
#
# An importance-weighted bound (Burda et al. 2016) with k samples is tighter:
# -log (1/k sum_i p(x, z_i) / q(z_i|x)) approaches -log p(x) as k grows. The gap
# to the ELBO says how far q(z|x) is from the true posterior.

# %%
iw = metrics.importance_weighted_nll(vae, test_images[:2000], k=50)
print(
    f"test negative ELBO {test_nelbo[-1]:.1f}; importance-weighted bound (k=50, 2000 images) {iw:.1f}"
)

# %% [markdown]
# ## What it learned: samples, reconstructions, interpolations

# %%
backend.manual_seed(1)
with no_grad():
    samples = vae.sample(64).data
    x = data.scale_pixels(test_images[:8, None])
    recon = vae.reconstruct(x).data
    mu, _ = vae.encoder(data.scale_pixels(test_images[:16, None]))
    ends = mu.data
    steps = backend.from_numpy(backend.host.linspace(0, 1, 10, dtype="float32"))[:, None]
    strips = [
        vae.decoder(ends[2 * i] * (1 - steps) + ends[2 * i + 1] * steps).sigmoid().data
        for i in range(8)
    ]
plots.image_grid(samples, out / "samples.png", title="mlp-vae: samples z ~ N(0, I)")
plots.reconstructions(x, recon, out / "reconstructions.png")
plots.interpolation([backend.to_numpy(s)[:, 0] for s in strips], out / "interpolation.png")
print(f"saved samples, reconstructions and interpolations in {out}/")

# %% [markdown]
# Samples are blurry: under a pixel-wise BCE the *average* of several plausible
# images scores better than a sharp guess. Lesson 08 (VAE-GAN) attacks this.
#
# ## A 2-D latent space
#
# With only two latent dimensions the ELBO is worse (less information passes
# through z), but the whole latent space can be drawn: each test image at its
# posterior mean, coloured by class, and a grid of decoded points.

# %%
vae2, _, _ = train(
    "mlp-vae", max(1, args.epochs // 2), images=train_images, seed=args.seed, latent_dim=2
)
vae2.eval()
print(f"2-D latent: test negative ELBO {metrics.negative_elbo(vae2, test_images):.1f}")
with no_grad():
    mu2, _ = vae2.encoder(data.scale_pixels(test_images[:, None]))
    n = 15
    ticks = backend.host.linspace(-2.5, 2.5, n, dtype="float32")
    grid_z = backend.host.stack(backend.host.meshgrid(ticks, -ticks), axis=-1).reshape(-1, 2)
    manifold = vae2.decoder(backend.from_numpy(grid_z)).sigmoid().data
plots.latent_scatter(
    mu2.data, test_labels, out / "latent_map.png", class_names=data.CLASSES[args.dataset]
)
plots.manifold_grid(manifold, out / "manifold.png", n)
print(f"saved latent_map.png and manifold.png in {out}/")
