# %% [markdown]
# # Lesson 08: VAE-GAN, a VAE that learns what "similar" means
#
# VAE samples blur (lesson 05). The culprit is the pixel-wise likelihood: when
# the decoder is unsure where an edge goes, BCE rewards the *average* of the
# candidates, a grey smear, over any one sharp guess.
#
# VAE-GAN (Larsen et al. 2016) keeps the VAE and changes how reconstructions
# are scored. A GAN discriminator D is trained alongside, and the
# reconstruction error is measured in D's last hidden feature map D_l
# (128 x 7 x 7 = 6,272 numbers), where D has learned to encode what makes an
# image look real:
#
#     L_feat = 1/2 sum_features (D_l(x) - D_l(x_rec))^2     (per image, batch mean)
#
# (a Gaussian log-likelihood of D_l(x) around D_l(x_rec) with unit variance,
# up to a constant). The decoder doubles as the GAN's generator. Three
# networks, three losses, with x_rec = Dec(Enc(x)) and x_p = Dec(z), z ~ N(0, I):
#
#     encoder:        kl_weight * KL + L_feat
#     decoder:        gamma * L_feat + GAN loss (make x_rec and x_p look real)
#     discriminator:  BCE(D(x), 1) + (BCE(D(x_rec), 0) + BCE(D(x_p), 0)) / 2
#
# The networks are ones we have built: the encoder and decoder of the
# conv-VAE (lesson 06; here the decoder ends in tanh, pixels in [-1, 1]) and
# DCGAN's discriminator (lesson 04). What is new is the three losses and the
# training step, written below from `minigen.nn` pieces and checked against
# the library's; then `train()` runs the library's model and we compare its
# prior samples with the conv-VAE's.
#
# The library code it relies on, to open alongside:
#
# - minigen/models/vaegan.py: `VAEGAN.feature_loss`, `VAEGAN.train_step`
# - minigen/models/vae.py: `ConvEncoder`, `ConvDecoder`; minigen/models/gan.py:
#   `DCGANDiscriminator`, `real_loss`, `fake_loss`, `generator_loss`
# - minigen/nn/losses.py: `binary_cross_entropy_with_logits`, `gaussian_kl`
# - minigen/metrics.py: `fid`; minigen/train.py: `train`
#
# Full run (conv-vae 3 epochs, vae-gan 1 epoch, all 60,000 images): 6.2 minutes of
# wall time (6:10) and 6.1 of CPU time (368 s) on a 2-core Intel Xeon (AVX-512,
# OpenBLAS SkylakeX kernel) with one BLAS thread (OPENBLAS_NUM_THREADS=1), another
# lesson running on the other core. `--quick`: seconds.
#
# To reproduce the numbers marked "a full run": `OPENBLAS_NUM_THREADS=1
# python lessons/08_vaegan.py`; the flags `--gamma`, `--kl-weight` and
# `--margin` change the VAE-GAN's weights (the defaults are the library's).
# The numbers are seed 0's; the spreads beside them are over seeds 0, 1 and 2
# (`--seed`) on that machine. The digits repeat exactly only on the same CPU,
# BLAS kernel and thread count: another one sums the floats in another order,
# and training carries the difference on. On another machine your run should
# land inside the spread, and the lesson prints whether it does. (A 2-core AMD
# EPYC, OpenBLAS Haswell kernel, printed a Fréchet distance of 65.47 for seed
# 0's VAE-GAN, and 77.59 for its conv-VAE, just above the spread below: three
# seeds give only a rough spread.)

# %%
import time

from _setup import against_full_runs, relative_gap, setup

from minigen import Tensor, backend, data, metrics, nn, no_grad, optim, plots
from minigen.argtypes import option_value
from minigen.classifier import load_classifier
from minigen.models import build, flags, sample_images, to_unit_range
from minigen.models.gan import DCGANDiscriminator
from minigen.models.vae import ConvDecoder, ConvEncoder
from minigen.nn import functional as F
from minigen.train import train


def add_options(parser):
    defaults, declared = build("vae-gan").options, flags("vae-gan")
    for flag, key, what in (
        ("--gamma", "gamma", "weight of L_feat in the decoder's loss"),
        ("--kl-weight", "kl_weight", "weight of the KL in the encoder's loss"),
        ("--margin", "margin", "D is paused while its loss is at or below this; 0: never"),
    ):
        parser.add_argument(  # checked as build checks them: --margin nan is refused here
            flag, type=option_value(declared[key]), default=defaults[key],
            help=f"{what} (default {defaults[key]})",
        )  # fmt: skip


np = backend.host
start = time.perf_counter()
args, out, train_images, test_images, _ = setup(
    "08_vaegan", "Lesson 08: VAE-GAN", epochs=1, add_options=add_options
)
weights = {"gamma": args.gamma, "kl_weight": args.kl_weight, "margin": args.margin}
print("vae-gan weights: " + ", ".join(f"{k} {v:g}" for k, v in weights.items()))
# What this lesson's full runs (default options, full Fashion-MNIST) printed, seeds 0, 1, 2:
FULL_RUN = {
    "fd_vae": (77.48, 74.76, 72.55),  # conv-VAE's prior samples, Fréchet distance, N = 5,000
    "fd_gan": (59.88, 66.22, 62.97),  # VAE-GAN's prior samples, the same
    "sharp_vae": (0.0505, 0.0507, 0.0499),  # sharpness of 500 test reconstructions
    "sharp_gan": (0.0726, 0.0688, 0.0742),
    "kl": (17.3, 18.3, 17.5),  # VAE-GAN's KL over the last tenth of steps, nats
    "paused": (71.2, 71.7, 70.7),  # % of steps on which the gate paused D
    "minutes": 6.2,  # seed 0, on the machine the header names
}
SHARP_REAL = 0.0786  # the first 500 real test images: no training involved

# %% [markdown]
# ## Build it: the three losses and one step
#
# Our three networks are fresh copies of the library's classes; the library
# model's weights load into them, so that both start from the same point.

# %%
LATENT = 16
encoder = ConvEncoder(LATENT)
decoder = nn.Sequential(ConvDecoder(LATENT), nn.Tanh())
dis = DCGANDiscriminator()  # dis.features(x): (N, 128, 7, 7); dis.head: flatten -> logit

backend.manual_seed(args.seed)
reference = build("vae-gan", **weights)  # minigen/models/vaegan.py
for ours_net, their_net in (
    (encoder, reference.encoder),
    (decoder, reference.decoder),
    (dis, reference.discriminator),
):
    ours_net.load_state_dict(their_net.state_dict())


def bce(logits, target):
    """BCE between D's logits and a constant label (1 real, 0 fake), batch mean."""
    labels = backend.ones(logits.shape) if target == 1 else backend.zeros(logits.shape)
    return F.binary_cross_entropy_with_logits(logits, labels)


def feature_loss(x, rec_features):
    """L_feat = 1/2 sum (D_l(x) - D_l(x_rec))^2 per image, batch mean. The real image's
    features are a fixed target: computed without a graph, no gradient flows into them."""
    with no_grad():
        target = dis.features(x)
    d = rec_features - target
    return (d * d).sum() * (0.5 / x.shape[0])


# %% [markdown]
# The step, in the library's order:
#
# 1. encode x, decode a reparameterised z (x_rec) and a prior z (x_p);
# 2. the discriminator's loss on x, x_rec and x_p (both detached: D's loss
#    must not reach the decoder); D takes its Adam step only if its loss is
#    above `margin` (the equilibrium gate, below);
# 3. with D frozen and updated, one pass of x_rec and x_p through D's body;
#    the GAN logits reuse those features (D's `head` on them);
# 4. each network steps on the gradient of *its own* loss: the encoder on
#    kl_weight * KL + L_feat, the decoder on gamma * L_feat + GAN. Both losses
#    share one graph, so we backpropagate the encoder's loss, keep the
#    encoder's gradients, then backpropagate the decoder's loss.


# %%
def train_step(x, eps, z_p, opts, margin):
    n = x.shape[0]
    mu, logvar = encoder(x)
    x_rec = decoder(mu + (logvar * 0.5).exp() * eps)  # reparameterised z ~ q(z|x)
    x_p = decoder(z_p)  # z_p ~ N(0, I)

    d_loss = bce(dis(x), 1) + 0.5 * (bce(dis(x_rec.detach()), 0) + bce(dis(x_p.detach()), 0))
    opts["dis"].zero_grad()
    d_loss.backward()
    paused = d_loss.item() <= margin
    if not paused:
        opts["dis"].step()

    dis.requires_grad_(False)
    f_rec, f_p = dis.features(x_rec), dis.features(x_p)
    kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum() / n
    feat = feature_loss(x, f_rec)
    gan = 0.5 * (bce(dis.head(f_rec), 1) + bce(dis.head(f_p), 1))

    for opt in opts.values():
        opt.zero_grad()
    (args.kl_weight * kl + feat).backward()
    encoder_grads = [p.grad for p in encoder.parameters()]
    for opt in opts.values():
        opt.zero_grad()
    (args.gamma * feat + gan).backward()
    for p, g in zip(encoder.parameters(), encoder_grads):
        p.grad = g
    dis.requires_grad_(True)
    opts["enc"].step()
    opts["dec"].step()
    losses = {"d_loss": d_loss, "gan": gan, "feat": feat, "kl": kl}
    return {k: v.data for k, v in losses.items()}, paused


def named(nets, what):
    """{"enc.body.0.weight": p.grad or p.data, ...} over a dict of networks."""
    return {f"{k}.{n}": getattr(p, what) for k, m in nets.items() for n, p in m.named_parameters()}


adam = lambda m: optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999))  # noqa: E731
x = data.scale_pixels(train_images[: reference.batch_size, None], "symmetric")
ours = {"enc": encoder, "dec": decoder, "dis": dis}
theirs = {"enc": reference.encoder, "dec": reference.decoder, "dis": reference.discriminator}
before = {k: v.copy() for k, v in named(theirs, "data").items()}

backend.manual_seed(123)
eps = backend.randn(x.shape[0], LATENT)  # drawn in the library's order: eps, then z_p
z_p = backend.randn(x.shape[0], LATENT)
our_losses, paused = train_step(x, eps, z_p, {k: adam(m) for k, m in ours.items()}, args.margin)
backend.manual_seed(123)
their_losses = reference.train_step(x, reference.make_optimizers())
after = named(theirs, "data")
their_paused = all(
    np.array_equal(backend.to_numpy(after[k]), backend.to_numpy(before[k]))
    for k in before
    if k.startswith("dis.")
)

for key in ("d_loss", "gan", "feat", "kl"):
    print(f"{key:6s}  ours {float(our_losses[key]):10.4f}   library {their_losses[key]:10.4f}")
print(f"D paused by the gate: ours {paused}, library {their_paused}")
loss_gap = relative_gap(our_losses, {k: backend.xp().asarray(v) for k, v in their_losses.items()})
nets = ("enc", "dec")
grad_gap = relative_gap(
    named({k: ours[k] for k in nets}, "grad"), named({k: theirs[k] for k in nets}, "grad")
)
ours_now = named(ours, "data")
step_gap = max(float(np.abs(backend.to_numpy(ours_now[k] - after[k])).max()) for k in before)
print(f"losses: largest relative difference {loss_gap:.1e}")
print(f"encoder and decoder gradients: largest relative difference {grad_gap:.1e}")
print(f"Adam's updates (all three networks): largest difference {step_gap / 2e-4:.1e} of lr")
assert max(loss_gap, grad_gap) < 1e-5 and paused == their_paused, (
    "the step written here differs from the library's"
)

# %% [markdown]
# The KL is written out here and one Function (`GaussianKL`) in the library,
# so the last bits of the encoder's gradients may differ; Adam's first step
# moves each weight by about +-lr whatever the gradient's size, so for a
# gradient entry near zero a rounding-level difference shows as a visible
# share of lr (lesson 05 saw the same).

# %% [markdown]
# ## Check: the feature loss lives in D's features
#
# Three things to see on this batch, with D as it is now:
#
# - L_feat of an image against itself is exactly 0 (and about 1,600 per
#   image for the untrained model's reconstruction);
# - its gradient reaches x_rec *through D's body* (D is frozen: its weights
#   get no gradient, but the chain rule runs through its layers): a central
#   difference of L_feat along the gradient's own direction matches the
#   gradient's length;
# - that gradient is not the pixel difference x_rec - x (the gradient of a
#   pixel-space squared error): it is J^T (D_l(x_rec) - D_l(x)) / N, with J
#   the Jacobian of D's body, so it points where D's *features* differ.

# %%
with no_grad():
    x_rec = reference.reconstruct(x).data  # a reconstruction by the library model, as it is
self_loss = feature_loss(x, dis.features(x)).item()
r = Tensor(x_rec, requires_grad=True)
dis.requires_grad_(False)
loss = feature_loss(x, dis.features(r))
loss.backward()
dis.requires_grad_(True)
grad = backend.to_numpy(r.grad)
v = grad / np.sqrt((grad * grad).sum())  # along the gradient the slope must be its length
h = 1e-3
with no_grad():
    plus = feature_loss(x, dis.features(Tensor(x_rec + h * backend.from_numpy(v)))).item()
    minus = feature_loss(x, dis.features(Tensor(x_rec - h * backend.from_numpy(v)))).item()
pixel = backend.to_numpy(x_rec - x)
cosine = float((grad * pixel).sum() / np.sqrt((grad * grad).sum() * (pixel * pixel).sum()))
print(f"L_feat(x, x) = {self_loss}; L_feat(x, x_rec) = {loss.item():.3f}")
print(f"D's weights received a gradient: {any(p.grad is not None for p in dis.parameters())}")
print(
    f"along the gradient's direction v: central difference {(plus - minus) / (2 * h):.5f}, "
    f"<grad, v> = |grad| {float((grad * v).sum()):.5f}"
)
print(f"  relative difference {abs((plus - minus) / (2 * h) / float((grad * v).sum()) - 1):.1e}")
print(f"cosine between L_feat's gradient and the pixel difference x_rec - x: {cosine:.3f}")
assert self_loss == 0.0, "L_feat of an image with itself must be 0"

# %% [markdown]
# These numbers do not depend on training (the first 64 training images,
# the weights after one step from seed 0), so a full run prints them too:
# L_feat(x, x) = 0.0 exactly; the central difference 89.78 against the
# gradient's length 89.87, 0.09% apart (a finite difference in float32, with
# a step that crosses some of LeakyReLU's kinks, is not exact); and a cosine
# of 0.68 between the feature loss's gradient and the pixel difference (0.66
# and 0.72 with seeds 1 and 2): related, but a fair part of the push on each
# pixel comes from what D's filters see around it.
#
# ## The weights, and how ours differ from Larsen's
#
# - **gamma = 0.01**: L_feat is summed over 6,272 features (about 1,600 per
#   image at the start, printed above); the GAN term is about 1. With
#   gamma = 1 the decoder hears almost nothing but L_feat, and the GAN term,
#   the only one that sees prior samples, cannot shape them. Larsen's code (github.com/andersbll/
#   autoencoding_beyond_pixels) weighs the decoder's two gradients as w and
#   1 - w: `recon_vs_gan_weight`, 1e-2 by default in `AEGAN`
#   (model/aegan.py); their scripts for larger images, where L_feat sums over
#   far more features, pass 5e-5 (aegan.py) or 1e-6 (celeba_aegan.py).
# - **kl_weight = 10** is a beta-VAE choice (Higgins et al. 2017: beta > 1
#   weighs the KL above the likelihood); Larsen's VAE-GAN keeps beta = 1
#   (`KLDStandardNormal`, model/ae.py, unweighted). Here the encoder sees the
#   *full* L_feat, which swamps a KL of weight 1: the posterior drifts away
#   from N(0, I), and prior samples land where the decoder was never trained.
#   The final KL below says where it sits with the weight used.
# - **The equilibrium gate** here: D skips its Adam step while its total loss
#   BCE(D(x), 1) + (BCE(D(x_rec), 0) + BCE(D(x_p), 0)) / 2 is at or below
#   `margin` = 0.35, i.e. while it already wins clearly (an undecided D scores
#   2 ln 2 = 1.39); the encoder and decoder always step. A D that dominates
#   saturates its logits, and the decoder's GAN gradient fades (lesson 03);
#   `--margin 0` turns the gate off.
#   Larsen's gate (`GradientDescent.train_epoch` in model/aegan.py) works per
#   term, on both players: with real_cost = mean -log D(x) and fake_cost =
#   mean -log(1 - D(fake)) over the generated images, equilibrium 0.68 (about
#   ln 2, an undecided D) and margin 0.4 (the class's defaults; their
#   training script, aegan.py, passes margin 0.35), it pauses *D* when either
#   cost is below 0.68 - margin, pauses the *decoder* when either cost is
#   above 0.68 + margin, and updates both when both would be paused; the
#   encoder always steps. And it gates on costs from the same forward pass
#   that gives every gradient, while ours updates D first.
#
# To see what each weight does, run the lesson with another value:
# `--kl-weight 1` (Larsen's beta) gave a prior-sample Fréchet distance of
# 111.26 and a KL of 40.8 nats in one full run (seed 0 only, on the header's
# Xeon), against 59.88 and 17.3 with the default 10 and the same seed
# (59.88-66.22 and 17.3-18.3 over 3 seeds). `--gamma 1` and `--margin 0` (no
# gate) show the other two choices; this lesson's text states no number for
# them.
#
# ## Scale up: the baseline conv-VAE, then the VAE-GAN
#
# The conv-VAE trains for 3 epochs (lesson 06 trains it for 5 but does not
# keep its model, so it is trained again here). The VAE-GAN trains for one
# epoch: each step runs the encoder, the decoder twice and D's body six times
# (three for D's loss, three for the others' losses). On the header's Xeon,
# one BLAS thread, a conv-VAE step takes about 57 ms (1.3 minutes for its 3
# epochs) and a VAE-GAN step about 266 ms, so an epoch of 60,000 images about
# 4.2 minutes (`OPENBLAS_NUM_THREADS=1 python benchmarks/steps.py --models
# conv-vae vae-gan --no-torch` times the steps).

# %%
classifier = load_classifier(args.dataset)
n_eval = min(5000, len(test_images))


def sharpness(images01):
    """Mean absolute difference between neighbouring pixels (images in [0, 1])."""
    x = backend.to_numpy(images01).reshape(-1, 28, 28)
    return float((np.abs(np.diff(x, axis=1)).mean() + np.abs(np.diff(x, axis=2)).mean()) / 2)


def evaluate(model, label):
    """Prior-sample Fréchet distance (N = n_eval) and reconstruction sharpness."""
    backend.manual_seed(args.seed + 1)  # after training: the same z for both models
    samples = sample_images(model, n_eval)
    x = data.scale_pixels(test_images[:500, None], model.scale)
    with nn.eval_mode(model):
        recon = backend.to_numpy(to_unit_range(model.reconstruct(x).data, model.scale))
    fd = metrics.fid(test_images[:n_eval], samples, classifier)
    plots.image_grid(samples[:64], out / f"samples_{label}.png", title=f"{label}: prior samples")
    plots.reconstructions(
        data.scale_pixels(test_images[:8, None]),
        recon[:8],
        out / f"reconstructions_{label}.png",
        title=f"{label}, test images",
    )
    return fd, sharpness(recon)


conv_epochs = 1 if args.quick else 3
vae, _, _ = train("conv-vae", conv_epochs, images=train_images, seed=args.seed)
vae_fd, vae_sharp = evaluate(vae, "conv-vae")

vaegan, _, history = train("vae-gan", args.epochs, images=train_images, seed=args.seed, **weights)
gan_fd, gan_sharp = evaluate(vaegan, "vae-gan")

# %% [markdown]
# ## What the gate did, and the feature loss over training
#
# The training loop keeps every step's D loss (`history["d_loss"]`, the value
# the gate compared with the margin), so the paused steps can be counted.

# %%
steps = data.num_batches(len(train_images), vaegan.batch_size, drop_last=True)
d_losses = np.asarray(history["d_loss"], dtype=np.float32)
for epoch in range(args.epochs):
    share = float((d_losses[epoch * steps : (epoch + 1) * steps] <= args.margin).mean())
    print(f"  epoch {epoch + 1}: D paused on {100 * share:.1f}% of {steps} steps")
parts = np.array_split(d_losses <= args.margin, min(10, len(d_losses)))
print("  per tenth of training: " + ", ".join(f"{100 * p.mean():.0f}%" for p in parts))
paused_all = float((d_losses <= args.margin).mean())
print(
    f"D paused on {100 * paused_all:.1f}% of all steps "
    f"({against_full_runs(100 * paused_all, FULL_RUN['paused'], args.quick)})"
)
final_kl = float(np.mean(history["kl"][-len(parts[-1]) :]))
print(
    f"KL over the last tenth of steps: {final_kl:.1f} nats "
    f"({against_full_runs(final_kl, FULL_RUN['kl'], args.quick)})"
)

plots.loss_curves(
    {"L_feat (per image)": history["feat"]},
    out / "feature_loss.png",
    title="vae-gan: the feature loss L_feat per step",
)
plots.loss_curves(
    {"D's loss": history["d_loss"]},
    out / "discriminator.png",
    levels={"D's loss": (f"margin {args.margin:g}: D paused at or below", args.margin)},
    title="vae-gan: the discriminator's loss per step, and the gate",
)

# %% [markdown]
# `feature_loss.png` is not a plain learning curve: L_feat is measured in D's
# features, and D changes as it trains, so the yardstick moves. On each of the
# 3 seeds' full runs it falls from about 1,550 per image to 800-850 within the
# first 100-250 steps, then climbs back to about 900 as D's features sharpen,
# and stays there for the rest of the epoch. `discriminator.png` shows D's
# loss against the margin: every step below the line is a step in which D did
# not learn. On a full run the gate paused D on 71.2% of the steps (70.7-71.7
# over 3 seeds), more often in the first third of the epoch than in the last,
# on every seed.
#
# ## Prior samples and reconstructions: conv-VAE against VAE-GAN

# %%
real_sharp = sharpness(data.scale_pixels(test_images[:500]))
print(
    f"prior samples, Fréchet distance to real test images (N = {n_eval}; for scale, real vs "
    "real at N = 5000 is 0.88, lesson 04):"
)
print(
    f"  conv-vae {vae_fd:.2f} ({against_full_runs(vae_fd, FULL_RUN['fd_vae'], args.quick, '.2f')})"
)
print(
    f"  vae-gan  {gan_fd:.2f} ({against_full_runs(gan_fd, FULL_RUN['fd_gan'], args.quick, '.2f')})"
)
print("reconstructions of 500 test images, sharpness:")
fmt = ".4f"
print(
    f"  conv-vae {vae_sharp:.4f} "
    f"({against_full_runs(vae_sharp, FULL_RUN['sharp_vae'], args.quick, fmt)})"
)
print(
    f"  vae-gan  {gan_sharp:.4f} "
    f"({against_full_runs(gan_sharp, FULL_RUN['sharp_gan'], args.quick, fmt)})"
)
print(f"  real test images {real_sharp:.4f} (a full run: {SHARP_REAL}; no training involved)")
print(
    f"saved samples_*.png, reconstructions_*.png, feature_loss.png and discriminator.png in {out}/"
)

# %% [markdown]
# On a full run the VAE-GAN's reconstructions have a sharpness of 0.0726
# (0.0688-0.0742 over 3 seeds) against the conv-VAE's 0.0505 (0.0499-0.0507;
# real images 0.0786), and its prior samples a Fréchet distance of 59.88
# (59.88-66.22) against the conv-VAE's 77.48 (72.55-77.48): sharper and closer
# to the real images on every seed, though it trained for one epoch to the
# conv-VAE's three. Its prior samples are sharper but not yet clean: on each
# of the 3 seeds' full runs `samples_vae-gan.png` shows garment outlines
# filled with stripes and checkerboard texture, where the conv-VAE's are
# smooth and blurred. What it gives up: its loss is no longer a bound on
# log p(x), so there is no ELBO to compare (lesson 09). More epochs
# (`--epochs N`) cost about 4.2 minutes each on a machine like the header's.

# %%
minutes = (time.perf_counter() - start) / 60
print(
    f"this run took {minutes:.1f} minutes "
    f"(a full run on the header's Xeon: {FULL_RUN['minutes']:.1f})"
)

# %% [markdown]
# ## Summary
#
# **Built:** the VAE-GAN's three losses (the encoder's KL + L_feat, the
# decoder's gamma L_feat + GAN term, D's three-way BCE) and its training
# step with the equilibrium gate, checked against `VAEGAN.train_step`; the
# checks that L_feat is 0 for an image against itself and that its gradient
# reaches the reconstruction through D's frozen body. **Measured:** on a full
# run, prior samples at a Fréchet distance of 59.88 (59.88-66.22 over 3 seeds)
# against the conv-VAE's 77.48 (72.55-77.48), reconstructions with a sharpness
# of 0.0726 (0.0688-0.0742) against 0.0505 (0.0499-0.0507; real images
# 0.0786), and the share of steps the gate paused D. **The one idea to
# keep:** what a model learns to reproduce is decided by where its error is
# measured; measured in a discriminator's features, "close" means "looks
# alike to D", and the weights (gamma, kl_weight, margin) decide who hears
# what.
#
# ## Exercises
#
# Worked solutions: `lessons/solutions/08_vaegan.py` (`--exercise K` runs one).
#
# 1. **Move the gate's margin.** Train the VAE-GAN for 100 steps (the first
#    6,400 training images) with margin 0 (no gate), 0.35 (the default), 0.7
#    and 1.5 (above 2 ln 2 = 1.39, the loss of an undecided D). Predict for
#    each the share of steps on which D is paused, and D's loss and the
#    decoder's GAN term over the last tenth of the steps.
# 2. **The two pulls on the decoder, and gamma.** On the untrained model
#    and one batch, measure the gradient that L_feat and the GAN term each
#    put on the decoder's weights. Predict their ratio, and the gamma that
#    would make the two pulls equal; compare it with the library's 0.01.
# 3. **What a sharpness of 0.05 looks like.** Blur 500 real test images by
#    a 3x3 box filter once, twice and three times. Predict their sharpness
#    (the mean absolute difference between neighbouring pixels) after each
#    blur, and how many blurs bring real images down to the conv-VAE's
#    reconstructions (0.0505 on a full run, 0.0499-0.0507 over 3 seeds).
