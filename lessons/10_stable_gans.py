# %% [markdown]
# # Lesson 10: stable GAN training: the Wasserstein critic, gradient penalties, R1
#
# Lesson 03's GAN collapsed: on the ring of 8 Gaussians its samples formed one
# blob that jumped from mode to mode, and on Fashion-MNIST it dropped classes.
# Lesson 04's losses said nothing about the quality of the samples: the D and G
# losses measure the balance of the game, so we needed a separate measure, the
# Fréchet distance. This lesson builds two remedies that change what D learns:
#
# - **The Wasserstein critic** (Arjovsky et al. 2017; Gulrajani et al. 2017,
#   WGAN-GP): D becomes a critic whose score difference between real and fake
#   images estimates a distance between the two distributions, one that keeps
#   giving G a gradient and that falls as the samples improve.
# - **R1** (Mescheder et al. 2018): keep the non-saturating GAN, but penalise
#   D's gradient on real images, which makes training converge where the plain
#   GAN circles.
#
# Both penalties are functions of a *gradient* of the network, so training
# them takes the gradient of a gradient. The lesson shows that on a tiny
# example; writes the critic loss, the gradient penalty and R1 from
# `minigen.grad` and `nn` pieces and checks them against the library (losses,
# gradients, one Adam step); checks the penalty's second derivatives with
# `gradgradcheck`; compares the non-saturating GAN, WGAN-GP and R1 on two 2-D
# toys over three seeds; trains WGAN-GP on Fashion-MNIST and asks whether its
# critic's estimate tracks the Fréchet distance, epoch by epoch, where lesson
# 04's losses did not; and measures what the penalty costs per step.
#
# The library code it relies on, to open alongside:
#
# - minigen/autograd.py: `grad` (with `create_graph=True`); minigen/gradcheck.py:
#   `gradcheck`, `gradgradcheck`
# - minigen/models/penalties.py: `gradient_penalty`, `r1_penalty`,
#   `input_gradient`
# - minigen/models/wgan.py: `Critic`, `WGANGP.critic_losses`,
#   `WGANGP.generator_loss`, `WGANGP.train_step`
# - minigen/models/gan.py: `GAN` (its `r1_gamma`), `DCGANGenerator`,
#   `DCGANDiscriminator`
# - minigen/metrics.py: `frechet_distance`; minigen/classifier.py:
#   `load_classifier`; minigen/train.py: `train`
#
# Full run (the default options): 6.1 minutes of wall time (6:06) and 6.1 of CPU
# time (365 s) on a 2-core Intel Xeon (AVX-512, OpenBLAS SkylakeX kernel) with one
# BLAS thread (OPENBLAS_NUM_THREADS=1), another lesson running on the other core.
# `--quick`: seconds. An "epoch" on Fashion-MNIST here is one pass over the
# first 6,400 training images (100 steps), so that several epochs, and so a
# correlation over epochs, fit in the lesson's time; `--epochs` sets how many.
#
# To reproduce the numbers marked "a full run": `OPENBLAS_NUM_THREADS=1
# python lessons/10_stable_gans.py`. The Fashion-MNIST numbers are seed 0's; the
# spreads beside them are over seeds 0, 1 and 2 (`--seed`) on that machine. The
# toys run seeds s, s + 1 and s + 2 inside one run, so their table is already
# a spread over 3 seeds. The digits repeat exactly only on the same CPU, BLAS
# kernel and thread count: another one sums the floats in another order, and
# training carries the difference on. On another machine your run should land
# inside the spread, and the lesson prints whether it does. Times are this
# machine's: yours will differ.

# %%
import time

import matplotlib.pyplot as plt
from _setup import against_full_runs, relative_gap, setup

import minigen
from minigen import Tensor, backend, data, metrics, nn, no_grad, optim, plots
from minigen.classifier import load_classifier
from minigen.models import build, to_unit_range
from minigen.models.gan import DCGANDiscriminator, DCGANGenerator
from minigen.models.wgan import gradient_penalty, r1_penalty
from minigen.nn import functional as F
from minigen.train import train

lesson_start = time.perf_counter()
args, out, train_images, test_images, test_labels = setup(
    "10_stable_gans", "Lesson 10: stable GANs (WGAN-GP and R1)", epochs=8
)
np = backend.host
# What this lesson's full runs (default options, full Fashion-MNIST) printed, seeds 0, 1, 2:
FULL_RUN = {
    "toy_modes": {  # modes covered by toy seeds 0, 1, 2 (one run of seed 0 trains all three)
        "non-saturating GAN": {"ring of 8": (0, 1, 0), "5x5 grid": (3, 3, 2)},
        "WGAN-GP": {"ring of 8": (0, 0, 0), "5x5 grid": (0, 0, 0)},
        "R1": {"ring of 8": (5, 2, 8), "5x5 grid": (0, 0, 0)},
    },
    "wgan_fd": (285.01, 282.11, 283.57),  # Fréchet distance after 8 epochs, N = 5,000
    "dcgan_fd": (74.94, 65.61, 63.21),
    "r_all": {  # Pearson r of a training signal with the Fréchet distance, all 8 epochs
        "wgan-gp W-hat, mean over the epoch": (-0.06, -0.20, -0.19),
        "wgan-gp W-hat, held-out batch": (+0.40, +0.29, +0.27),
        "dcgan D loss": (-0.76, -0.80, -0.67),
        "dcgan G loss": (+0.94, +0.96, +0.95),
    },
    "r_late": {  # the same from the epoch where the held-out W-hat is largest on
        "wgan-gp W-hat, mean over the epoch": (+0.96, +0.94, +0.94),
        "wgan-gp W-hat, held-out batch": (+0.99, +0.99, +0.99),
        "dcgan D loss": (-0.50, -0.39, -0.71),
        "dcgan G loss": (+0.04, +0.28, +0.06),
    },
    "peak_epoch": (4, 4, 4),  # the epoch after which the held-out W-hat is largest
    "ms_plain": 68,  # one critic update without the penalty, seed 0, on the header's Xeon
    "ms_penalty": 126,  # the same with the penalty
    "minutes": 6.1,  # seed 0, on the machine the header names
}

# %% [markdown]
# ## Why: a distance that does not saturate, and a critic that is 1-Lipschitz
#
# A GAN's D, trained to the end, makes G minimise (up to constants) the
# Jensen-Shannon divergence between the data and the samples. When the two
# sit on different thin sets (8 tight modes on a ring against a blob beside
# them; images, which fill a tiny part of pixel space), that divergence is the
# same constant, log 2, however far apart they are: it tells G nothing about
# which way to move. Lesson 03's non-saturating loss only patches the gradient
# G gets; D still learns "here is real, there is fake", and G runs from one
# place D rejects to another.
#
# The Wasserstein-1 distance (earth mover's distance) is the least average
# distance that mass must travel to turn one distribution into the other; it
# shrinks smoothly as the samples move towards the data. The
# Kantorovich-Rubinstein duality writes it as a supremum over functions:
#
#     W(P_real, P_fake) = sup over 1-Lipschitz f of  E_real f(x) - E_fake f(x)
#
# (f is 1-Lipschitz when |f(a) - f(b)| <= ||a - b||: its gradient has norm at
# most 1 everywhere). So train a network C, the *critic*, to maximise
# E C(real) - E C(fake) while keeping it 1-Lipschitz; its maximum is an
# estimate of W, and G minimises -E C(G(z)). No sigmoid, no log: the critic's
# output is a score, not a probability.
#
# How to keep C 1-Lipschitz? The first WGAN clipped the weights to a small
# box; Gulrajani et al. found that such a critic ends up too simple, or its
# gradients explode or vanish. **The gradient penalty** (Gulrajani et al.
# 2017): an optimal critic has gradient norm 1 almost everywhere on the
# straight lines between the real and fake points that an optimal transport
# plan pairs up; WGAN-GP takes random pairs instead and penalises
#
#     penalty = E_xhat (||grad_x C(xhat)||_2 - 1)^2,    xhat = eps x_real + (1 - eps) x_fake,
#
# eps ~ U[0, 1] per sample, with weight lambda = 10. The critic minimises
# -(E C(real) - E C(fake)) + lambda penalty. **R1** (Mescheder et al. 2018)
# keeps the non-saturating GAN of lesson 03 and adds to D's loss
#
#     gamma / 2 E_real ||grad_x D(x)||^2,
#
# a penalty on D's gradient at the real data only: near equilibrium D has no
# reason to push G anywhere, and R1 makes it flat there, which damps the
# circling that a plain GAN does around its equilibrium.
#
# **The gradient of a gradient.** Both penalties are built from grad_x C, the
# gradient of the critic's output with respect to its *input*. To train the
# critic we need the gradient of the penalty with respect to the critic's
# *weights* theta: d/dtheta of a function of grad_x C, a second derivative
# (d^2 C / dtheta dx). `minigen.grad(outputs, inputs, create_graph=True)`
# returns the gradient as Tensors that are themselves part of a graph (the
# backward pass is recorded like any forward computation), so `backward()` or
# another `grad` differentiates them again. Two tiny examples against their
# closed forms: the second derivative of tanh, tanh'' = -2 tanh (1 - tanh^2);
# and the gradient penalty of a linear critic C(x) = w . x, whose input
# gradient is w everywhere, so penalty = (||w|| - 1)^2 and
# d penalty / dw = 2 (||w|| - 1) w / ||w||.

# %%
x_np = np.linspace(-2, 2, 9)
x = Tensor(backend.from_numpy(x_np), requires_grad=True)
(first,) = minigen.grad(x.tanh().sum(), x, create_graph=True)  # tanh'(x), still a graph
(second,) = minigen.grad(first.sum(), x)  # differentiate the derivative: tanh''(x)
t = np.tanh(x_np)
gap_first = float(np.abs(backend.to_numpy(first.data) - (1 - t**2)).max())
gap_second = float(np.abs(backend.to_numpy(second.data) - (-2 * t * (1 - t**2))).max())
print(
    f"tanh at 9 points in [-2, 2]: largest error of tanh' {gap_first:.1e}, of tanh'' "
    f"{gap_second:.1e} (float64)"
)

w_np = np.array([0.3, -1.2, 2.0])
w = Tensor(backend.from_numpy(w_np[:, None]), requires_grad=True)  # a (3, 1) column
points = Tensor(
    backend.from_numpy(np.random.default_rng(0).standard_normal((5, 3))), requires_grad=True
)
(input_grad,) = minigen.grad((points @ w).sum(), points, create_graph=True)  # = w in every row
norms = (input_grad * input_grad).sum(axis=1).sqrt()
penalty = ((norms - 1) ** 2).mean()
penalty.backward()  # through the gradient, into w
norm_w = np.linalg.norm(w_np)
closed = 2 * (norm_w - 1) * w_np / norm_w
print(
    f"linear critic, ||w|| = {norm_w:.4f}: penalty {penalty.item():.6f} (closed form "
    f"{(norm_w - 1) ** 2:.6f}); d penalty / dw {np.round(backend.to_numpy(w.grad).ravel(), 6)} (closed "
    f"form {np.round(closed, 6)}), largest error {np.abs(backend.to_numpy(w.grad).ravel() - closed).max():.1e}"
)

# %% [markdown]
# Both agree to float64 round-off. Without `create_graph=True`, `first` would
# be a plain array with no graph behind it, and the second `grad` would find
# nothing to differentiate (it says so).
#
# ## Build it: the critic, its loss, the gradient penalty and R1
#
# The critic is lesson 04's DCGAN discriminator *without BatchNorm*: BatchNorm
# normalises each image by statistics of the whole batch, so the critic's
# score for one image, and so its input gradient, would depend on the other
# images in the batch, and the penalty is a statement about each sample's
# gradient. (WGAN-GP used layer normalisation or none in the critic; this one
# has none.) G is lesson 04's generator. The attribute names are the
# library's (`Critic.net`), so the library's weights load into
# ours. The penalty needs per-sample gradients: since the critic treats each
# image on its own, the gradient of the *sum* of its scores with respect to
# the batch xhat holds, in row i, the gradient of C(xhat_i) alone; one
# `minigen.grad` call gives them all.


# %%
class Critic(nn.Module):
    """x (N, 1, 28, 28) -> Conv 64 (14x14) -> LeakyReLU -> Conv 128 (7x7) -> LeakyReLU
    -> flatten -> Linear 1: one score per image, no sigmoid and no BatchNorm."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 64, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(128 * 7 * 7, 1),
        )

    def forward(self, x):
        return self.net(x)


def as_array(x):
    return x.data if isinstance(x, Tensor) else x


def our_gradient_penalty(critic, real, fake, eps):
    """E (||grad_x critic(xhat)||_2 - 1)^2 over xhat = eps real + (1 - eps) fake, one eps per
    sample (shape (N, 1, ...)); the norm is over each flattened sample."""
    xhat = Tensor(eps * as_array(real) + (1 - eps) * as_array(fake), requires_grad=True)
    (g,) = minigen.grad(critic(xhat).sum(), xhat, create_graph=True)  # row i: grad of C(xhat_i)
    norm = (g * g).reshape(g.shape[0], -1).sum(axis=1).sqrt()
    return ((norm - 1) ** 2).mean()


def our_r1_penalty(discriminator, real):
    """E ||grad_x D(x)||^2 over the real batch (the loss adds gamma / 2 times this)."""
    x = Tensor(as_array(real), requires_grad=True)
    (g,) = minigen.grad(discriminator(x).sum(), x, create_graph=True)
    return (g * g).reshape(g.shape[0], -1).sum(axis=1).mean()


GP_WEIGHT = 10.0


def our_critic_losses(critic, real, fake, eps):
    """The critic's estimate of W, the penalty, and its loss -W + lambda penalty."""
    wasserstein = critic(real).mean() - critic(fake).mean()
    penalty = our_gradient_penalty(critic, real, fake, eps)
    return {
        "wasserstein": wasserstein,
        "penalty": penalty,
        "loss": -wasserstein + GP_WEIGHT * penalty,
    }


# %% [markdown]
# Now each against the library on the same weights, batch, noise and eps: the
# value, the gradients on the critic's (or D's) weights, and the weights after
# one Adam step (WGAN-GP's Adam: lr 1e-4, betas (0.5, 0.9); R1 goes with
# lesson 04's GAN and its Adam: lr 2e-4, betas (0.5, 0.999)). R1 is checked on
# lesson 04's discriminator, the one `GAN(kind="dcgan", r1_gamma=...)`
# penalises, BatchNorm included: there D's score for one image does depend on
# the batch, and the library takes the same gradient of the sum as we do.
# Then G's loss, -mean C(G(z)), through the critic into G's weights; and a
# whole step of `GAN(kind="dcgan", r1_gamma=10)`: lesson 04's step with
# gamma / 2 times R1 added to D's loss.

# %%
backend.manual_seed(args.seed)
wgan = build("wgan-gp")  # minigen/models/wgan.py
CHECK_BATCH = 16 if args.quick else wgan.batch_size  # a quick run checks on a smaller batch
x = data.scale_pixels(train_images[:CHECK_BATCH, None], "symmetric")
backend.manual_seed(123)
z = backend.randn(x.shape[0], wgan.z_dim)
with no_grad():
    fake = wgan.generator(z).data  # one fake batch for both sides
eps = backend.from_numpy(np.random.default_rng(7).random((x.shape[0], 1, 1, 1), dtype=np.float32))


def check(what, ours_fn, theirs_fn, ours_net, theirs_net, make_adam, theirs_adam):
    """Value(s), gradients on the weights and the weights after one Adam step: ours against
    the library's, from the same starting weights. Returns the largest relative gap."""
    ours_net.load_state_dict(theirs_net.state_dict())
    ours_opt = make_adam(ours_net)
    ours_opt.zero_grad()
    theirs_adam.zero_grad()
    ours, theirs = ours_fn(), theirs_fn()
    if not isinstance(ours, dict):
        ours, theirs = {"value": ours}, {"value": theirs}
    key = "loss" if "loss" in ours else "value"
    ours[key].backward()
    theirs[key].backward()
    gaps = {
        "values": relative_gap(
            {k: v.data for k, v in ours.items()}, {k: v.data for k, v in theirs.items()}
        ),
        "weight gradients": gap(gradients(ours_net), gradients(theirs_net)),
    }
    ours_opt.step()
    theirs_adam.step()
    gaps["weights after one Adam step"] = gap(
        {k: p.data for k, p in ours_net.named_parameters()},
        {k: p.data for k, p in theirs_net.named_parameters()},
    )
    values = ", ".join(
        f"{k} {v.item():.6f} (library {theirs[k].item():.6f})" for k, v in ours.items()
    )
    print(f"{what}: {values}")
    print("  largest relative difference: " + ", ".join(f"{k} {g:.1e}" for k, g in gaps.items()))
    return max(gaps.values())


def gradients(net):
    """{name: gradient}; a weight the loss does not reach has no gradient: 0."""
    return {
        k: backend.zeros(p.shape) if p.grad is None else p.grad for k, p in net.named_parameters()
    }


def gap(ours, theirs):
    """relative_gap over the arrays of two dicts, where an array that is all zeros in the
    library's (a bias the penalty gives no gradient, and so Adam does not move from its
    initial 0) must be all zeros in ours too."""
    zero = {k for k, v in theirs.items() if not np.abs(backend.to_numpy(v)).max() > 0}
    if any(np.abs(backend.to_numpy(ours[k])).max() > 0 for k in zero):
        return float("inf")
    rest = [k for k in theirs if k not in zero]
    return relative_gap({k: ours[k] for k in rest}, {k: theirs[k] for k in rest}) if rest else 0.0


def wgan_adam(net):
    return optim.Adam(net.parameters(), lr=1e-4, betas=(0.5, 0.9))


critic = Critic()
gaps = [
    check(
        "critic losses (WGANGP.critic_losses)",
        lambda: our_critic_losses(critic, x, fake, eps),
        lambda: wgan.critic_losses(x, fake, eps),
        critic,
        wgan.critic,
        wgan_adam,
        wgan.make_optimizers()["critic"],
    ),
    check(
        "gradient penalty (gradient_penalty)",
        lambda: our_gradient_penalty(critic, x, fake, eps),
        lambda: gradient_penalty(wgan.critic, x, fake, eps),
        critic,
        wgan.critic,
        wgan_adam,
        wgan.make_optimizers()["critic"],
    ),
]
backend.manual_seed(args.seed)
dcgan = build("dcgan", r1_gamma=10.0)
discriminator = DCGANDiscriminator()
gaps.append(
    check(
        "R1 penalty (r1_penalty) on lesson 04's D",
        lambda: our_r1_penalty(discriminator, x),
        lambda: r1_penalty(dcgan.discriminator, x),
        discriminator,
        dcgan.discriminator,
        lambda net: optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        dcgan.make_optimizers()["d"],
    )
)
critic.load_state_dict(wgan.critic.state_dict())  # both critics as they are now
generator = DCGANGenerator()
gaps.append(
    check(
        "generator loss (WGANGP.generator_loss), -mean C(G(z))",
        lambda: -critic(generator(z)).mean(),
        lambda: wgan.generator_loss(z),
        generator,
        wgan.generator,
        wgan_adam,
        wgan.make_optimizers()["generator"],
    )
)


def bce(logits, target):
    """BCE between D's logits and a constant label (1 real, 0 fake), batch mean."""
    labels = backend.ones(logits.shape) if target == 1 else backend.zeros(logits.shape)
    return F.binary_cross_entropy_with_logits(logits, labels)


def r1_gan_step(G, D, x, z, d_opt, g_opt, gamma):
    """Lesson 04's step, with gamma / 2 E ||grad_x D(x)||^2 added to D's loss."""
    fake = G(z)
    d_opt.zero_grad()
    d_loss = bce(D(x), 1) + bce(D(fake.detach()), 0) + gamma / 2 * our_r1_penalty(D, x)
    d_loss.backward()
    d_opt.step()
    g_opt.zero_grad()
    D.requires_grad_(False)
    g_loss = bce(D(fake), 1)
    g_loss.backward()
    D.requires_grad_(True)
    g_opt.step()
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}


backend.manual_seed(args.seed)
dcgan = build("dcgan", r1_gamma=10.0)
generator.load_state_dict(dcgan.generator.state_dict())
discriminator.load_state_dict(dcgan.discriminator.state_dict())
backend.manual_seed(123)
z = backend.randn(x.shape[0], dcgan.z_dim)  # GAN.sample draws its noise the same way
adam = lambda net: optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))  # noqa: E731
ours = r1_gan_step(generator, discriminator, x, z, adam(discriminator), adam(generator), 10.0)
backend.manual_seed(123)
theirs = dcgan.train_step(x, dcgan.make_optimizers())
pairs = {"G.": (generator, dcgan.generator), "D.": (discriminator, dcgan.discriminator)}
step_gaps = {
    "losses": relative_gap(
        {k: backend.xp().asarray(v) for k, v in ours.items()},
        {k: backend.xp().asarray(theirs[k]) for k in ours},
    ),
    "gradients (D's, then G's)": gap(
        {p + k: g for p, (a, _) in pairs.items() for k, g in gradients(a).items()},
        {p + k: g for p, (_, b) in pairs.items() for k, g in gradients(b).items()},
    ),
    "weights after both Adam steps": gap(
        {p + k: w.data for p, (a, _) in pairs.items() for k, w in a.named_parameters()},
        {p + k: w.data for p, (_, b) in pairs.items() for k, w in b.named_parameters()},
    ),
}
print(
    "one step of GAN(kind='dcgan', r1_gamma=10): "
    + ", ".join(f"{k} {v:.6f} (library {theirs[k]:.6f})" for k, v in ours.items())
    + f", the library's R1 term {theirs['r1']:.6f}"
)
print("  largest relative difference: " + ", ".join(f"{k} {g:.1e}" for k, g in step_gaps.items()))
gaps += list(step_gaps.values())
assert max(gaps) < 1e-5, "a loss or step written here differs from the library's"

# %% [markdown]
# Everything agrees to the last bit (a relative difference of 0): the values,
# the gradients that reach the weights through the gradient of the critic,
# and the weights after Adam's step. The library runs the same operations in
# the same order; a computation written differently would agree to float32
# rounding, about 1e-7 of the values. The check allows 1e-5.
#
# A float32 comparison with the library shows that the two agree, not that
# either is right. `gradgradcheck` (minigen/gradcheck.py) checks second
# derivatives against finite differences of first ones, in float64. We run it
# on a tiny critic, C(x) = w2 . tanh(W1 x + b1) on 2-D points (smooth, so that
# finite differences see no kinks), as a function of its input *and* its
# weights: that covers d^2 C / dtheta dx, the derivative the penalty's
# gradient is made of. Then `gradcheck` checks the penalty's gradient on the
# weights directly against finite differences of the penalty.

# %%
rng = np.random.default_rng(args.seed)


def float64_tensor(shape, scale=1.0):
    return Tensor(backend.from_numpy(scale * rng.standard_normal(shape)), requires_grad=True)


W1, b1, w2 = float64_tensor((6, 2)), float64_tensor((6,), 0.1), float64_tensor((1, 6))
points_real = backend.from_numpy(rng.standard_normal((5, 2)))
points_fake = backend.from_numpy(rng.standard_normal((5, 2)))
points_eps = backend.from_numpy(rng.random((5, 1)))


def tiny_critic(x, W1, b1, w2):
    return (x @ W1.transpose(0, 1) + b1).tanh() @ w2.transpose(0, 1)


def tiny_penalty(W1, b1, w2):
    return our_gradient_penalty(
        lambda x: tiny_critic(x, W1, b1, w2), points_real, points_fake, points_eps
    )


xhat = float64_tensor((5, 2))
second_error = minigen.gradgradcheck(tiny_critic, xhat, W1, b1, w2)
penalty_error = minigen.gradcheck(tiny_penalty, W1, b1, w2)
print(
    f"tiny float64 critic: gradgradcheck (second derivatives in x and the weights) worst error "
    f"{second_error:.1e}; gradcheck of the penalty's gradient on the weights {penalty_error:.1e} "
    "(tolerance 1e-5)"
)

# %% [markdown]
# ## Toys: the ring of 8 Gaussians and a 5x5 grid
#
# Lesson 03's ring (8 Gaussians, standard deviation sigma = 0.02, centres on a
# circle of radius 2) and a grid of 25 Gaussians (the same sigma, centres at
# -2, -1, 0, 1, 2 in each coordinate). G maps 16 numbers of noise through two
# hidden layers of 64 (ReLU) to a point; D (or the critic) maps a point
# through two hidden layers of 64 (LeakyReLU 0.2) to one number. Three ways of
# training the same pair, each for the same number of G updates, batches of
# 128, Adam with lr 1e-3:
#
# - **non-saturating GAN**: lesson 03's step (D on BCE, then G on -log s(l)),
#   betas (0.5, 0.999);
# - **WGAN-GP**: 5 critic updates on -W + 10 `gradient_penalty(...)` per G
#   update on -E C(G(z)), betas (0.5, 0.9) (the library's defaults);
# - **R1**: the non-saturating GAN with gamma / 2 `r1_penalty(D, x)` added to
#   D's loss, gamma = 1.
#
# The penalties are the library's functions, just checked. After training we
# draw 2,000 samples and measure two things: the modes covered (lesson 03's
# rule: at least 2% of the samples within 0.2 of the centre) and the share of
# samples within 3 sigma of some centre (how many samples are good ones; the
# table's first row is 2,000 points of the data itself). Each method runs with
# three seeds; the table gives the mean ± the standard deviation over them
# (sample std, ddof = 1), and the seconds one run took. Below it, the modes
# each method covers on the first seed, against the full run's three seeds.

# %%
TOY_STD = 0.02
angles = 2 * np.pi * np.arange(8) / 8
grid = np.arange(-2, 3, dtype=np.float64)
TOYS = {
    "ring of 8": 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1),
    "5x5 grid": np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2),
}
TOY_STEPS = 4 if args.quick else 600  # G updates
TOY_BATCH, TOY_Z, TOY_HIDDEN = 128, 16, 64
SEEDS = [args.seed, args.seed + 1] + ([] if args.quick else [args.seed + 2])  # quick: two


def toy_batch(centres, n, rng):
    """n points of the mixture: a random centre plus N(0, sigma^2) noise, (n, 2) float32."""
    points = centres[rng.integers(0, len(centres), n)] + TOY_STD * rng.standard_normal((n, 2))
    return backend.from_numpy(points.astype(np.float32))


def toy_scores(points, centres):
    """(modes covered, share of points within 3 sigma of a centre)."""
    distance = np.linalg.norm(points[:, None, :] - centres[None], axis=2)
    near = distance.min(axis=1) < 0.2
    counts = np.bincount(distance.argmin(axis=1)[near], minlength=len(centres))
    return int((counts >= 0.02 * len(points)).sum()), float(
        (distance.min(axis=1) < 3 * TOY_STD).mean()
    )


def toy_generator():
    return nn.Sequential(
        nn.Linear(TOY_Z, TOY_HIDDEN),
        nn.ReLU(),
        nn.Linear(TOY_HIDDEN, TOY_HIDDEN),
        nn.ReLU(),
        nn.Linear(TOY_HIDDEN, 2),
    )


def toy_critic():
    return nn.Sequential(
        nn.Linear(2, TOY_HIDDEN),
        nn.LeakyReLU(0.2),
        nn.Linear(TOY_HIDDEN, TOY_HIDDEN),
        nn.LeakyReLU(0.2),
        nn.Linear(TOY_HIDDEN, 1),
    )


def d_loss_of(method, D, x, fake):
    if method == "WGAN-GP":
        return -(D(x).mean() - D(fake).mean()) + GP_WEIGHT * gradient_penalty(D, x, fake)
    loss = bce(D(x), 1) + bce(D(fake), 0)
    if method == "R1":
        loss = loss + 1.0 / 2 * r1_penalty(D, x)
    return loss


def toy_run(method, centres, seed):
    """Train one toy GAN; return 2,000 samples of its G as a host array."""
    backend.manual_seed(seed)
    rng = np.random.default_rng(seed)
    G, D = toy_generator(), toy_critic()
    betas = (0.5, 0.9) if method == "WGAN-GP" else (0.5, 0.999)
    g_opt = optim.Adam(G.parameters(), lr=1e-3, betas=betas)
    d_opt = optim.Adam(D.parameters(), lr=1e-3, betas=betas)
    d_steps = 5 if method == "WGAN-GP" else 1
    for _ in range(TOY_STEPS):
        for _ in range(d_steps):
            x = toy_batch(centres, TOY_BATCH, rng)
            with no_grad():
                fake = G(backend.randn(TOY_BATCH, TOY_Z)).data
            d_opt.zero_grad()
            d_loss_of(method, D, x, fake).backward()
            d_opt.step()
        g_opt.zero_grad()
        D.requires_grad_(False)
        score = D(G(backend.randn(TOY_BATCH, TOY_Z)))
        (-score.mean() if method == "WGAN-GP" else bce(score, 1)).backward()
        D.requires_grad_(True)
        g_opt.step()
    with no_grad():
        return backend.to_numpy(G(backend.randn(2000, TOY_Z)).data)


METHODS = ("non-saturating GAN", "WGAN-GP", "R1")
toy_results, toy_samples, toy_seconds = {}, {}, {}
for method in METHODS:
    began = time.perf_counter()
    for toy, centres in TOYS.items():
        scores = []
        for seed in SEEDS:
            samples = toy_run(method, centres, seed)
            scores.append(toy_scores(samples, centres))
            if seed == SEEDS[0]:
                toy_samples[method, toy] = samples
        toy_results[method, toy] = np.array(scores)
    toy_seconds[method] = (time.perf_counter() - began) / (len(TOYS) * len(SEEDS))


def mean_std(values, fmt):
    return f"{format(values.mean(), fmt)} ± {format(values.std(ddof=1), fmt)}"


print(f"toys, {TOY_STEPS} G updates, seeds {SEEDS}: mean ± std over the seeds")
header = f"  {'method':20s}" + "".join(
    f"{toy + ': modes':>18s}{'within 3 sigma':>18s}" for toy in TOYS
)
print(header + f"{'s per run':>11s}")
data_row = f"  {'the data (2,000)':20s}"
for centres in TOYS.values():
    covered, share = toy_scores(
        backend.to_numpy(toy_batch(centres, 2000, np.random.default_rng(1))), centres
    )
    data_row += f"{f'{covered} / {len(centres)}':>18s}{f'{100 * share:.1f} %':>18s}"
print(data_row)
for method in METHODS:
    row = f"  {method:20s}"
    for toy, centres in TOYS.items():
        r = toy_results[method, toy]
        row += f"{mean_std(r[:, 0], '.1f') + f' / {len(centres)}':>18s}"
        row += f"{mean_std(100 * r[:, 1], '.1f') + ' %':>18s}"
    print(row + f"{toy_seconds[method]:11.1f}")
print(f"modes covered on seed {SEEDS[0]}, the table's first seed:")
for method in METHODS:
    for toy in TOYS:
        covered = int(toy_results[method, toy][0, 0])
        full = FULL_RUN["toy_modes"][method][toy]
        compared = against_full_runs(covered, full, args.quick, "d")
        print(f"  {method:20s}{toy:11s}{covered:3d} ({compared})")

fig, axes = plt.subplots(len(METHODS), len(TOYS), figsize=(6.5, 9.5), dpi=100)
for row, method in zip(axes, METHODS):
    for ax, (toy, centres) in zip(row, TOYS.items()):
        samples = toy_samples[method, toy]
        covered, share = toy_scores(samples, centres)
        ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4)
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", c="red", s=12, lw=1)
        ax.set_title(
            f"{toy}: {covered}/{len(centres)} modes, {100 * share:.1f}% within 3σ", fontsize=8
        )
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    row[0].set_ylabel(method, fontsize=10)
fig.suptitle(
    f"2,000 samples after {TOY_STEPS} G updates, seed {SEEDS[0]} (red x: centres)", fontsize=10
)
fig.tight_layout()
plots.save_figure(fig, out / "toys.png")
print(f"saved {out / 'toys.png'}")

# %% [markdown]
# What the full run measured (the table above: 600 G updates per run, seeds
# 0, 1 and 2; `toys.png` shows seed 0). The non-saturating GAN collapses as in
# lesson 03: on the ring it covers 0.3 ± 0.6 of 8 modes (0, 1 and 0 on the
# three seeds), its samples a thin streak on each seed that reaches at most
# one mode; on the grid 2.7 ± 0.6 of 25, a streak (or, on seed 0, a wedge over
# one side). R1 is the only method that finds the ring: 5.0 ± 3.0 of 8 modes
# (5, 2 and 8), its samples on the circle on all three seeds and gathering at
# the modes, but the seeds disagree widely. WGAN-GP, at the same number of G
# updates (each bought with 5 critic updates: 5.9 s per run against R1's 1.4
# on the header's Xeon), covers no mode by this rule on either toy, on any
# seed: its samples are spread out, not collapsed, but smeared between the
# modes rather than on them (around the ring on seed 0, a wide blob over the
# ring's middle on seeds 1 and 2). On the grid no method has found the modes
# after 600 G updates (the non-saturating GAN's 2 or 3 are those its streak
# or wedge passes over): R1 covers the square evenly on all three seeds,
# WGAN-GP on two (seed 2's samples bunch in the middle), with 0 of 25 modes
# and at most 1.4% of samples within 3 sigma. So at this budget the penalties
# cure the collapse (the samples spread out, R1's onto the ring) before they
# sharpen the samples onto the modes; more G updates is the thing to try. The
# full runs with `--seed 1` and `--seed 2` (toy seeds 1-3 and 2-4) tell the
# same story: R1 covers 7 and 6 ring modes on seeds 3 and 4, the
# non-saturating GAN at most one ring mode, WGAN-GP none on the ring and one
# grid mode on seed 4.
#
# ## Fashion-MNIST: does the critic's estimate track the quality?
#
# `train("wgan-gp", ...)` (minigen/train.py) runs `WGANGP.train_step` over
# shuffled batches of 64: each call is one critic update, and every 5th call
# also updates G. An epoch here is a pass over the first 6,400 training images
# (100 critic updates, 20 G updates). After each epoch we record the critic's
# estimate W-hat = E C(real) - E C(fake) (minus its loss without the penalty)
# twice: the mean over the epoch's steps (the number a training log shows,
# measured on training batches by a critic that changes during the epoch),
# and on a fixed held-out batch, 512 test images against G's samples from 512
# fixed z, by the critic at the end of the epoch. And the Fréchet distance of
# samples from fixed noise to real test images, computed as in lesson 04.
#
# Then the same for lesson 04's DCGAN, trained the same number of epochs on
# the same images: its D and G losses, averaged over each epoch, against its
# Fréchet distance. Over the epochs we compute Pearson's correlation r between
# each training signal and the Fréchet distance: r near 1 means the signal
# falls when the samples get better, so it can be read as a quality meter.
#
# **Two phases.** W-hat is a lower bound on W, not W: the supremum runs over
# all 1-Lipschitz functions, and the critic is one of them (roughly, through
# the penalty), the best it has found so far. It starts from small random
# weights, a nearly constant function, so W-hat starts near 0 and first
# *rises*, while the critic grows into a function that separates the samples
# from the data faster than G improves them: the bound tightens. Only once the
# critic has caught up can W-hat follow W down as G gets better. So we compute
# r twice: over all epochs, and from the epoch where the held-out W-hat is
# largest on (for the DCGAN too, over the same epochs, so that the two compare
# like with like).

# %%
EPOCH_IMAGES = 64 if args.quick else 6400
epoch_images = train_images[:EPOCH_IMAGES]
epochs = args.epochs
if args.quick and epochs < 3:
    epochs = 3  # three points, so that a correlation means something even in a smoke run
    print(
        f"--quick: {epochs} epochs of {len(epoch_images)} images, so the correlations have three points"
    )
steps_per_epoch = len(epoch_images) // 64
classifier = load_classifier(args.dataset)


def features(images01):
    """Classifier features (N, 128) of images in [0, 1], float64 on the host (lesson 04)."""
    parts = []
    with nn.eval_mode(classifier):
        for i in range(0, len(images01), 500):
            x = backend.from_numpy(np.asarray(backend.to_numpy(images01[i : i + 500])))
            parts.append(backend.to_numpy(classifier.features(Tensor(x)).data))
    return np.concatenate(parts).astype(np.float64)


n_eval = min(5000, len(test_images) // 2)
real_feats = features(data.scale_pixels(test_images[:n_eval, None]))
real_fd = metrics.frechet_distance(
    real_feats, features(data.scale_pixels(test_images[n_eval : 2 * n_eval, None]))
)
noise = np.random.default_rng(args.seed + 1)  # evaluation noise, apart from training's
z_eval = backend.from_numpy(noise.standard_normal((n_eval, 64), dtype=np.float32))
z_grid = backend.from_numpy(noise.standard_normal((64, 64), dtype=np.float32))
n_held = min(512, len(test_images))
held_real = data.scale_pixels(test_images[:n_held, None], "symmetric")
z_held = backend.from_numpy(noise.standard_normal((n_held, 64), dtype=np.float32))


def generate(generator, z):
    """G(z) in eval mode, in [0, 1], on the host."""
    with nn.eval_mode(generator):
        parts = [generator(z[i : i + 500]).data for i in range(0, len(z), 500)]
    return np.concatenate([backend.to_numpy(to_unit_range(p, "symmetric")) for p in parts])


def frechet_of(generator):
    return metrics.frechet_distance(real_feats, features(generate(generator, z_eval)))


record = {"W-hat, mean over the epoch": [], "W-hat, held-out batch": [], "wgan-gp FD": []}


def watch_wgan(model, epoch, history):
    record["W-hat, mean over the epoch"].append(
        float(np.mean(history["wasserstein"][-steps_per_epoch:]))
    )
    with nn.eval_mode(model), no_grad():
        fakes = model.generator(z_held)
        held = model.critic(held_real).mean() - model.critic(fakes).mean()
    record["W-hat, held-out batch"].append(held.item())
    record["wgan-gp FD"].append(frechet_of(model.generator))
    print(
        f"  wgan-gp epoch {epoch + 1}: W-hat {record['W-hat, mean over the epoch'][-1]:.3f} "
        f"(mean over the epoch), {record['W-hat, held-out batch'][-1]:.3f} (held-out batch); "
        f"Fréchet distance {record['wgan-gp FD'][-1]:.2f} (real vs real {real_fd:.2f})"
    )


run_start = time.perf_counter()
wgan, _, wgan_history = train(
    "wgan-gp", epochs, images=epoch_images, seed=args.seed, on_epoch_end=watch_wgan
)
wgan_seconds = time.perf_counter() - run_start

# %% [markdown]
# The DCGAN of lesson 04, the same epochs, images and seed:

# %%
record.update({"dcgan D loss": [], "dcgan G loss": [], "dcgan FD": []})


def watch_dcgan(model, epoch, history):
    record["dcgan D loss"].append(float(np.mean(history["d_loss"][-steps_per_epoch:])))
    record["dcgan G loss"].append(float(np.mean(history["g_loss"][-steps_per_epoch:])))
    record["dcgan FD"].append(frechet_of(model.generator))
    print(
        f"  dcgan epoch {epoch + 1}: D loss {record['dcgan D loss'][-1]:.3f}, G loss "
        f"{record['dcgan G loss'][-1]:.3f} (means over the epoch); Fréchet distance "
        f"{record['dcgan FD'][-1]:.2f}"
    )


run_start = time.perf_counter()
dcgan, _, dcgan_history = train(
    "dcgan", epochs, images=epoch_images, seed=args.seed, on_epoch_end=watch_dcgan
)
dcgan_seconds = time.perf_counter() - run_start


def pearson(a, b):
    """Pearson's r of two equally long lists; nan when either is constant or too short."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


SIGNALS = {  # a training signal: (its values per epoch, the same model's Fréchet distances)
    "wgan-gp W-hat, mean over the epoch": ("W-hat, mean over the epoch", "wgan-gp FD"),
    "wgan-gp W-hat, held-out batch": ("W-hat, held-out batch", "wgan-gp FD"),
    "dcgan D loss": ("dcgan D loss", "dcgan FD"),
    "dcgan G loss": ("dcgan G loss", "dcgan FD"),
}
peak = int(np.argmax(record["W-hat, held-out batch"]))  # epoch peak + 1: the held-out W-hat's top
late = slice(peak, epochs)
correlations = {
    name: (pearson(record[s], record[f]), pearson(record[s][late], record[f][late]))
    for name, (s, f) in SIGNALS.items()
}
print(
    f"Pearson r with the model's own Fréchet distance, over all {epochs} epochs and over epochs "
    f"{peak + 1}-{epochs} (from the epoch where the held-out W-hat is largest on; n/a: fewer than "
    "3 epochs):"
)


def r_text(r):
    return "n/a" if r != r else f"{r:+.2f}"  # nan != nan


print(
    f"  the held-out W-hat is largest after epoch {peak + 1} "
    f"({against_full_runs(peak + 1, FULL_RUN['peak_epoch'], args.quick, 'd')})"
)
for name, (r_all, r_late) in correlations.items():
    print(f"  {name}:")
    for when, r, key in (
        ("all epochs", r_all, "r_all"),
        (f"from epoch {peak + 1}", r_late, "r_late"),
    ):
        compared = against_full_runs(r, FULL_RUN[key][name], args.quick, "+.2f")
        print(f"    {when} r = {r_text(r)} ({compared})")
fd_wgan, fd_dcgan = record["wgan-gp FD"][-1], record["dcgan FD"][-1]
print(f"after {epochs} epochs, Fréchet distance (real vs real at N = {n_eval}: {real_fd:.2f}):")
for name, fd, key in (("wgan-gp", fd_wgan, "wgan_fd"), ("dcgan", fd_dcgan, "dcgan_fd")):
    compared = against_full_runs(fd, FULL_RUN[key], args.quick, ".2f")
    print(f"  {name:8s}{fd:.2f} ({compared})")
print(f"training took {wgan_seconds:.0f} s (wgan-gp) and {dcgan_seconds:.0f} s (dcgan)")

fig, (ax_w, ax_d) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
epoch_axis = np.arange(1, epochs + 1)
panels = (
    (
        ax_w,
        "wgan-gp",
        "the critic's W-hat",
        ("W-hat, mean over the epoch", "W-hat, held-out batch"),
    ),
    (
        ax_d,
        "dcgan (lesson 04's GAN)",
        "loss, mean over the epoch",
        ("dcgan D loss", "dcgan G loss"),
    ),
)
for ax, model_name, ylabel, signals in panels:
    fd_key = "wgan-gp FD" if model_name == "wgan-gp" else "dcgan FD"
    for name, color in zip(signals, ("C0", "C2")):
        r_all, r_late = correlations[name if name.startswith("dcgan") else f"wgan-gp {name}"]
        label = f"{name} (r = {r_text(r_all)}; from epoch {peak + 1}: {r_text(r_late)})"
        ax.plot(epoch_axis, record[name], marker="o", color=color, label=label)
    ax.axvline(peak + 1, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(
        f"epoch ({len(epoch_images):,} images); dotted: the held-out W-hat's largest value"
    )
    ax.set_ylabel(ylabel)
    twin = ax.twinx()
    twin.plot(
        epoch_axis, record[fd_key], marker="s", color="C3", label="Fréchet distance (right axis)"
    )
    twin.set_ylabel("Fréchet distance to test images", color="C3")
    handles, labels = ax.get_legend_handles_labels()
    twin_handles, twin_labels = twin.get_legend_handles_labels()
    ax.legend(handles + twin_handles, labels + twin_labels, fontsize=8)
    ax.set_title(f"{model_name}: training signals and the Fréchet distance per epoch", fontsize=9)
    ax.set_xticks(epoch_axis)
fig.tight_layout()
plots.save_figure(fig, out / "wasserstein_vs_frechet.png")
plots.image_grid(
    generate(wgan.generator, z_grid),
    out / "samples_wgan_gp.png",
    title=f"wgan-gp after {epochs} epochs",
)
plots.image_grid(
    generate(dcgan.generator, z_grid),
    out / "samples_dcgan.png",
    title=f"dcgan after {epochs} epochs",
)
print(f"saved wasserstein_vs_frechet.png, samples_wgan_gp.png and samples_dcgan.png in {out}/")

# %% [markdown]
# What the full run measured (seed 0; the ranges are over seeds 0, 1 and 2).
# The held-out W-hat rises for the first 4 epochs (10.7 to 26.4) while the
# Fréchet distance falls only a little (545 to 506): the critic is catching
# up, and W-hat is a lower bound on W that tightens as it trains. From epoch
# 4 on, W-hat and the distance fall together (26.4 to 11.7 against 506 to
# 285): r = +0.99 for the held-out W-hat (+0.99 on each seed), +0.96 (+0.94
# to +0.96) for the epoch means. Over all 8 epochs r is +0.40 (+0.27 to
# +0.40) and -0.06 (-0.20 to -0.06), the catch-up phase included. All three
# seeds show the two phases, with the held-out W-hat largest after epoch 4.
# What the numbers can and cannot say: r rests on 5 or 8 points, so read the
# curves beside it. Lesson 04 found that its D and G losses do not follow the
# samples' quality: they measure the balance of the game. Here dcgan's D loss
# stays between 0.27 and 0.48 (0.22 to 0.54 over the 3 seeds) while its
# distance falls from 405 to 75 (r = -0.76, from -0.80 to -0.67, over all
# epochs; -0.50, from -0.71 to -0.39, from epoch 4); its G loss falls with
# the distance over the first epochs (r = +0.94, +0.94 to +0.96) and then
# stays flat between 2.1 and 2.5 while the distance keeps falling (r = +0.04,
# +0.04 to +0.28, from epoch 4). The held-out W-hat is measured by the critic
# at the end of each epoch, on images it never trained on, so it is not
# flattered by the training batches. The price of
# WGAN-GP: at the same epochs its G has had a fifth of DCGAN's updates, and
# its samples are far behind on every seed (Fréchet distance 285, 282-285
# over 3 seeds, against 75, 63-75, after 8 epochs; compare
# `samples_wgan_gp.png` with `samples_dcgan.png`). What WGAN-GP buys is a
# training signal that says how far the samples are.
#
# ## The cost of a penalty
#
# Each critic update with the penalty runs the critic three times forward
# (real, fake, interpolates), takes the input gradient as a graph, and then
# backpropagates through all of it, the backward pass of a backward pass
# included. We time critic updates with and without the penalty on the same
# batch (the library's critic and Adam; 2 updates to warm up, then 5 timed
# ones each), on this machine, now. These are times, not trained numbers:
# they depend on the machine and on what else runs on it.

# %%
TIMED, WARM = (1, 1) if args.quick else (5, 2)


def ms_per_step(with_penalty):
    backend.manual_seed(args.seed)
    model = build("wgan-gp")
    opt = model.make_optimizers()["critic"]

    def step():
        opt.zero_grad()
        if with_penalty:
            loss = model.critic_losses(x, fake, eps)["loss"]
        else:
            loss = -(model.critic(x).mean() - model.critic(fake).mean())
        loss.backward()
        opt.step()

    for _ in range(WARM):
        step()
    began = time.perf_counter()
    for _ in range(TIMED):
        step()
    return 1000 * (time.perf_counter() - began) / TIMED


ms_plain, ms_penalty = ms_per_step(False), ms_per_step(True)
print(
    f"critic update on a batch of {x.shape[0]}: {ms_plain:.0f} ms without the penalty, "
    f"{ms_penalty:.0f} ms with it: {ms_penalty / ms_plain:.1f}x (a full run, a batch of 64 "
    f"on the header's Xeon: {FULL_RUN['ms_plain']} and {FULL_RUN['ms_penalty']} ms, "
    f"{FULL_RUN['ms_penalty'] / FULL_RUN['ms_plain']:.1f}x)"
)

# %% [markdown]
# The penalty costs the ratio printed above per critic update (1.9x on the
# header's Xeon), and WGAN-GP makes 5 critic updates per G update where
# lesson 04's GAN makes one D update: that is what the stable, meaningful
# loss costs on a CPU.

# %%
minutes = (time.perf_counter() - lesson_start) / 60
print(
    f"this run took {minutes:.1f} minutes "
    f"(a full run on the header's Xeon: {FULL_RUN['minutes']:.1f})"
)

# %% [markdown]
# ## Summary
#
# **Built:** the gradient of a gradient (`minigen.grad` with
# `create_graph=True`), checked on tanh'' and a linear critic; the
# Wasserstein critic's loss, the gradient penalty and R1 from `minigen.grad`
# and `nn` pieces, checked against the library and by `gradgradcheck`.
# **Measured:** the non-saturating GAN, WGAN-GP and R1 on two 2-D toys over
# three seeds; on Fashion-MNIST, how well the critic's estimate W-hat and the
# DCGAN's losses track the Fréchet distance epoch by epoch (on a full run the
# held-out W-hat from its peak on: r = +0.99 on each of 3 seeds); and the
# penalty's cost per critic update (68 against 126 ms on the header's Xeon).
# **The one idea to keep:** what D is trained to be decides what G can learn
# from it; a critic held to slope 1 gives a score that keeps pointing G the
# right way and falls as the samples improve, and the price is a second
# backward pass per update.
#
# ## Exercises
#
# Worked solutions: `lessons/solutions/10_stable_gans.py` (`--exercise K` runs one).
#
# 1. **The penalty's weight lambda.** On the ring, train only the critic
#    (500 steps) against a fixed, untrained G with lambda = 0, 1 and 10.
#    Predict the critic's estimate W-hat and the norm of its input gradient
#    on random interpolates between real and fake points (mean, smallest,
#    largest) for each lambda.
# 2. **Why the critic has no BatchNorm.** Put a `BatchNorm1d` after the toy
#    critic's first layer and compute sample 0's input gradient in two
#    batches that share only that sample. Predict the relative difference of
#    the two gradients with and without BatchNorm, and say what that means
#    for a penalty on each sample's gradient.
# 3. **R1's weight gamma on the ring.** Train the toy non-saturating GAN
#    (600 steps, one D update per G update) with R1 gamma = 0, 1 and 10.
#    Predict the modes covered and the share of samples within 3 sigma of a
#    centre for each gamma (the lesson's table used gamma = 1).
