# %% [markdown]
# # Lesson 06: a convolutional VAE
#
# The MLP VAE of lesson 05 treats an image as 784 unrelated numbers. A
# convolutional encoder shares its filters across positions and sees
# neighbourhoods; a decoder made of transposed convolutions paints local
# structure the same way everywhere (the reference conv-vae of
# docs/reference-models.md):
#
#     encoder: Conv 1->32 (28->14) -> ReLU -> Conv 32->64 (14->7) -> ReLU
#              -> flatten 64*7*7 = 3136 -> Linear -> mu, logvar (16 each)
#     decoder: Linear 16 -> 3136 -> ReLU -> (64, 7, 7) -> ConvT 64->32 (7->14) -> ReLU
#              -> ConvT 32->1 (14->28), logits
#
# The loss is lesson 05's, unchanged: the negative ELBO, sum-pixel BCE plus
# the closed-form KL, nats per image (the same caveat: with continuous pixels
# it is not a bound on a normalised density, but it compares models scored
# the same way).
#
# Two differences from lesson 05's mlp-vae, so that a comparison is fair only
# if we separate them: the layers, and the **latent size**, 16 here against
# 20 there. This lesson therefore trains three models for the same 5 epochs:
# the mlp-vae (latent 20), the same MLP with a 16-d latent, and the conv-vae
# (latent 16). The MLP at 16 against the conv-vae isolates the layers.
#
# The library code it relies on, to open alongside:
#
# - minigen/models/vae.py: `ConvEncoder`, `ConvDecoder`, `VAE.losses`, `VAE.train_step`
# - minigen/nn/conv.py: `Conv2d`, `ConvTranspose2d` (built in lesson 02)
# - minigen/models/vae.py: `reparameterize`; minigen/nn/losses.py:
#   `binary_cross_entropy_with_logits`, `gaussian_kl`
# - minigen/train.py: `train`; minigen/metrics.py: `negative_elbo`
# - minigen/plots.py: `epoch_curves`, `image_grid`
#
# Full run (three 5-epoch trainings): 3.4 minutes of wall time (3:26) and 3.4 of CPU
# time (205 s) on a 2-core Intel Xeon (AVX-512, OpenBLAS SkylakeX kernel) with one BLAS
# thread (OPENBLAS_NUM_THREADS=1), another lesson running on the other core. `--quick`:
# seconds.
#
# To reproduce the numbers marked "a full run": `OPENBLAS_NUM_THREADS=1
# python lessons/06_conv_vae.py`. They are seed 0's; the spreads beside them are over
# seeds 0, 1 and 2 (`--seed`) on that machine. The digits repeat exactly only on
# the same CPU, BLAS kernel and thread count: another one sums the floats in
# another order, and training carries the difference on. On another machine your
# run should land inside the spread, and the lesson prints whether it does. (A
# 2-core AMD EPYC, OpenBLAS Haswell kernel, printed 245.3 for seed 0's conv-vae too.)

# %%
import time

from _setup import against_full_runs, check_vae_step, setup

from minigen import backend, data, metrics, nn, plots
from minigen.models import build
from minigen.nn import functional as F
from minigen.train import train

np = backend.host
start = time.perf_counter()
args, out, train_images, test_images, _ = setup(
    "06_conv_vae", "Lesson 06: the convolutional VAE against the MLP VAE", epochs=5
)
# What this lesson's full runs (default options, full Fashion-MNIST) printed, seeds 0, 1, 2:
FULL_RUN = {  # test -ELBO after 5 epochs, nats per image
    "mlp-vae": (248.0, 247.5, 247.2),
    "mlp-vae, latent 16": (247.1, 246.9, 247.0),
    "conv-vae": (245.3, 245.6, 245.0),
    "minutes": 3.4,  # seed 0, on the machine the header names
}

# %% [markdown]
# ## Build it: the convolutional encoder and decoder, one step
#
# The attribute names are the library's, so the reference model's weights
# load into ours with `load_state_dict`.

# %%
LATENT = 16


class ConvEncoder(nn.Module):
    """x (N, 1, 28, 28) -> two stride-2 convolutions -> (N, 3136) -> mu, logvar (N, 16)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1),  # 28 -> 14
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),  # 14 -> 7
            nn.ReLU(),
            nn.Flatten(),
        )
        self.mu = nn.Linear(64 * 7 * 7, LATENT)
        self.logvar = nn.Linear(64 * 7 * 7, LATENT)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), self.logvar(h)


encoder = ConvEncoder()
decoder = nn.Sequential(
    nn.Linear(LATENT, 64 * 7 * 7),
    nn.ReLU(),
    nn.Unflatten((64, 7, 7)),
    nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),  # 7 -> 14
    nn.ReLU(),
    nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),  # 14 -> 28, logits
)


def vae_losses(x, eps):
    """Lesson 05's -ELBO and its parts, nats per image; eps (N, 16) ~ N(0, I)."""
    mu, logvar = encoder(x)
    logits = decoder(mu + (logvar * 0.5).exp() * eps)
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    kl = F.gaussian_kl(mu, logvar, reduction="mean")  # 1/2 sum (mu^2 + e^lv - 1 - lv)
    return {"loss": rec + kl, "rec": rec, "kl": kl}


# %% [markdown]
# One training step of ours against the library's `VAE.train_step` from the
# same weights, batch and noise (same seed before the draw): the same losses
# and gradients up to float32 rounding.

# %%
backend.manual_seed(args.seed)
reference = build("conv-vae")
x = data.scale_pixels(train_images[: reference.batch_size, None])
check_vae_step(reference, encoder, decoder, vae_losses, x, LATENT)  # lessons/_setup.py

# %% [markdown]
# ## Where the parameters sit
#
# Convolutions are cheap: a 4x4 filter bank from 32 to 64 channels is
# 32*64*16 weights, whatever the image size. The Linear layers that meet the
# latent are not: each maps 3136 numbers to 16 or back.

# %%
layers = {}
for name, p in reference.named_parameters():
    layer = name.rsplit(".", 1)[0]  # "encoder.body.0.weight" -> "encoder.body.0"
    layers[layer] = layers.get(layer, 0) + p.size
total = sum(layers.values())
print(f"{'conv-vae layer':22s} {'parameters':>10s}  share")
for layer, count in layers.items():
    print(f"{layer:22s} {count:10,d}  {count / total:5.1%}")
linear = sum(c for layer, c in layers.items() if layer.endswith(("mu", "logvar", "net.0")))
print(
    f"total {total:,d}; the three Linear layers at the latent hold {linear:,d} "
    f"({linear / total:.0%}), the four convolutions {total - linear:,d}"
)
mlp_total = sum(p.size for p in build("mlp-vae").parameters())
print(f"mlp-vae (latent 20): {mlp_total:,d} parameters, {mlp_total / total:.1f} times as many")

# %% [markdown]
# ## Scale up: train three models, measuring the test -ELBO after every epoch

# %%
runs = {
    "mlp-vae": ("mlp-vae", {}),
    "mlp-vae, latent 16": ("mlp-vae", {"latent_dim": 16}),
    "conv-vae": ("conv-vae", {}),
}
curves, models, seconds = {}, {}, {}
for label, (name, options) in runs.items():
    curve = curves.setdefault(label, [])

    def evaluate(model, epoch, history, curve=curve, label=label):
        curve.append(metrics.negative_elbo(model, test_images))
        print(f"  {label} epoch {epoch + 1}: test -ELBO {curve[-1]:.1f}")

    began = time.perf_counter()
    models[label], _, _ = train(
        name, args.epochs, images=train_images, seed=args.seed, on_epoch_end=evaluate, **options
    )
    seconds[label] = time.perf_counter() - began

print(f"\nmodel               parameters  test -ELBO after {args.epochs} epochs   train time")
for label, model in models.items():
    count = sum(p.size for p in model.parameters())
    print(f"{label:19s} {count:10,d}  {curves[label][-1]:8.1f}{seconds[label]:28.0f} s")
print("test -ELBO against full runs (5 epochs on all 60,000 training images):")
for label in models:
    compared = against_full_runs(curves[label][-1], FULL_RUN[label], args.quick)
    print(f"  {label:19s} {curves[label][-1]:.1f} ({compared})")
plots.epoch_curves(
    curves,
    out / "test_elbo.png",
    "test -ELBO (nats per image)",
    title="test -ELBO after each epoch",
)

# %% [markdown]
# On a full run (`test_elbo.png`) the conv-vae is ahead of both MLPs after
# every epoch, on each of the 3 seeds: 245.3 nats (245.0-245.6 over 3 seeds)
# after 5 epochs against 248.0 (247.2-248.0) for the mlp-vae, with a third of
# its parameters. The MLP with the conv-vae's 16-d latent scores 247.1
# (246.9-247.1), slightly *better* than at 20 dimensions on each seed (by 0.2
# to 0.9 nats), and the conv-vae still leads it by 1.3 to 2.0 nats on each
# seed: the smaller latent is not what the conv-vae gains by; the layers are.
# The mlp-vae reaches the conv-vae's 5-epoch score after 7 to 9 epochs,
# depending on the seed (lesson 05's full runs: 244.7, 244.2-244.7 over 3
# seeds, after 10), and the conv-vae still gains 1.2 nats (0.6-1.3) from
# epoch 4 to 5, so more epochs help both. The price is compute: on CPU each
# conv-vae epoch took about 7 times as long as an MLP epoch on seed 0's
# full run (the train times above, test scoring included: 158 s against 23
# and 23 s).
#
# Where its parameters sit: 70% of the conv-vae's 220,385 parameters are in
# the three Linear layers between the 3136-number feature map and the 16-d
# latent; the four convolutions hold 66,689, nearly all of them in the two
# layers between 32 and 64 channels.
#
# ## Samples from the prior

# %%
for label in ("mlp-vae", "conv-vae"):
    backend.manual_seed(1)
    with nn.eval_mode(models[label]):
        plots.image_grid(
            models[label].sample(64).data, out / f"samples_{label}.png", title=f"{label}: samples"
        )
print(f"saved test_elbo.png, samples_mlp-vae.png and samples_conv-vae.png in {out}/")

# %% [markdown]
# Both sample grids are blurry (lesson 05 said why). On each of the 3 seeds'
# full runs the mlp-vae's samples show streaks, ghosts of several garments
# overlaid; the conv-vae's are smoother, but a fair share of them are still
# shapeless blobs: a better -ELBO does not make every prior sample a garment.

# %%
minutes = (time.perf_counter() - start) / 60
print(
    f"this run took {minutes:.1f} minutes "
    f"(a full run on the header's Xeon: {FULL_RUN['minutes']:.1f})"
)

# %% [markdown]
# ## Summary
#
# **Built:** a convolutional encoder (two stride-2 convolutions to a 7x7
# map) and a transposed-convolution decoder around lesson 05's loss, one step
# checked against `VAE.train_step`. **Measured:** where the parameters sit
# (70% of the conv-vae's 220,385 in the three Linear layers at the latent),
# and the test -ELBO of three models after every epoch, the middle one
# separating the layers from the latent size (a full run, 5 epochs: conv-vae
# 245.3, mlp-vae 248.0, the MLP with a 16-d latent 247.1; over 3 seeds
# 245.0-245.6, 247.2-248.0 and 246.9-247.1). **The one idea to keep:** to
# credit a change with a gain, change one thing at a time; here the layers,
# not the smaller latent, make the difference, on each of the 3 seeds.
#
# ## Exercises
#
# Worked solutions: `lessons/solutions/06_conv_vae.py` (`--exercise K` runs one).
#
# 1. **Parameters against the latent size.** Build the conv-vae and the
#    mlp-vae with latent sizes 2, 16 and 64. Predict each total and the share
#    held by the three layers that meet the latent (the encoder's mu and
#    logvar heads and the decoder's first Linear), then count them.
# 2. **Move every test image two pixels.** Train the mlp-vae (latent 16) and
#    the conv-vae for 2 epochs each, then score the test set as it is and
#    shifted 2 pixels to the right. Predict which model's test -ELBO rises more,
#    keeping in mind that both end in Linear layers that know each pixel's
#    position.
# 3. **The transposed convolution's output size.** The decoder turns 7x7
#    into 14x14 with kernel 4, stride 2, padding 1. Predict the output size
#    on a 7x7 input for (kernel, stride, padding) = (3, 2, 1), (5, 2, 2),
#    (2, 2, 0) and (3, 1, 1), and check with `nn.ConvTranspose2d`. Which of
#    them could replace the decoder's layers without another change?
