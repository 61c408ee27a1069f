"""PyTorch twins of minigen's seven reference models, for benchmarks and checks.

Each twin mirrors its minigen model (minigen/models) line for line: the same
layers under the same names (so minigen's state dict loads into it as is),
the same losses and the same ``train_step`` (which passes, which detaches,
which optimizer steps when). ``twin_of(model)`` builds the twin of a minigen
model and copies its weights, so both start identical.

Random numbers: minigen draws its noise (z, the reparameterisation eps:
``backend.randn``; WGAN-GP's interpolation weights: ``backend.rand``) on the
host; a twin draws with ``torch.randn`` / ``torch.rand`` unless its ``noise``
attribute is set to a callable ``noise(kind, *shape) -> host array`` (kind
"randn" or "rand"). ``agreement`` uses that to feed the twin exactly the
noise minigen drew in the same step, so the two must report the same
losses: a check of the twins and of minigen.

PyTorch is only a yardstick here, never a dependency of minigen.
"""

import math
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from minigen import backend
from minigen.models import GAN, VAE, VAEGAN, VQVAE, WGANGP


class Twin(nn.Module):
    """Base: ``randn`` and ``rand`` draw from torch, or from ``noise`` when it is set."""

    noise = None  # callable(kind, *shape) -> host array, to replay minigen's draws

    def randn(self, *shape, like):
        return self._draw("randn", shape, like)

    def rand(self, *shape, like):
        return self._draw("rand", shape, like)

    def _draw(self, kind, shape, like):
        if self.noise is None:
            return getattr(torch, kind)(*shape, device=like.device, dtype=like.dtype)
        drawn = torch.from_numpy(np.asarray(self.noise(kind, *shape)))
        return drawn.to(device=like.device, dtype=like.dtype)


# ------------------------------------------------------------------------ GANs


class MLPGenerator(nn.Module):
    def __init__(self, z_dim=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(z_dim, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 512),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 784),
            nn.Tanh(),
            nn.Unflatten(1, (1, 28, 28)),
        )

    def forward(self, z):
        return self.net(z)


class MLPDiscriminator(nn.Module):
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


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(z_dim, 128 * 7 * 7),
            nn.BatchNorm1d(128 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (128, 7, 7)),
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 64, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, stride=2, padding=1),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(128 * 7 * 7, 1))

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


def real_loss(logits):
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def fake_loss(logits):
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


class GANTwin(Twin):
    """minigen.models.GAN: one D update on real + detached fake (+ R1 when
    r1_gamma > 0), then one G update through a fresh D forward."""

    def __init__(self, kind="mlp", z_dim=64, pack=1, lr=2e-4, betas=(0.5, 0.999), r1_gamma=0.0):
        super().__init__()
        self.z_dim, self.lr, self.betas, self.r1_gamma = z_dim, lr, betas, r1_gamma
        if kind == "mlp":
            self.generator = MLPGenerator(z_dim)
            self.discriminator = MLPDiscriminator(pack)
        else:
            self.generator = DCGANGenerator(z_dim)
            self.discriminator = DCGANDiscriminator()

    def make_optimizers(self):
        return {
            "d": torch.optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=self.betas),
            "g": torch.optim.Adam(self.generator.parameters(), lr=self.lr, betas=self.betas),
        }

    def train_step(self, x, optimizers):
        d_opt, g_opt = optimizers["d"], optimizers["g"]
        fake = self.generator(self.randn(x.shape[0], self.z_dim, like=x))

        d_opt.zero_grad()
        d_loss = real_loss(self.discriminator(x)) + fake_loss(self.discriminator(fake.detach()))
        terms = {}
        if self.r1_gamma > 0:
            terms["r1"] = r1_penalty(self.discriminator, x)
            d_loss = d_loss + self.r1_gamma / 2 * terms["r1"]
        d_loss.backward()
        d_opt.step()

        g_opt.zero_grad()
        self.discriminator.requires_grad_(False)  # gradients through D, not for D
        g_loss = real_loss(self.discriminator(fake))
        g_loss.backward()
        self.discriminator.requires_grad_(True)
        g_opt.step()
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item()} | {
            k: v.item() for k, v in terms.items()
        }


# --------------------------------------------------------------------- WGAN-GP


def input_gradient(critic, x):
    """d sum(critic(x)) / dx at x (cut from its graph), differentiable again."""
    x = x.detach().requires_grad_()
    # The critic gets a view of the leaf x, not x itself: torch's FlopCounterMode
    # hooks every module's inputs, and such a hook on a leaf breaks autograd.grad
    # (pytorch/pytorch#131753). A view costs nothing and changes no value.
    (g,) = torch.autograd.grad(critic(x.view_as(x)).sum(), x, create_graph=True)
    return g


def squared_norms(g):
    return (g * g).reshape(g.shape[0], -1).sum(dim=1)


def gradient_penalty(critic, real, fake, eps):
    """E (||grad critic(xhat)|| - 1)^2, xhat = eps * real + (1 - eps) * fake."""
    norms = squared_norms(input_gradient(critic, eps * real + (1 - eps) * fake)).sqrt()
    return ((norms - 1) ** 2).mean()


def r1_penalty(discriminator, real):
    """E ||grad D(x)||^2 over the real batch."""
    return squared_norms(input_gradient(discriminator, real)).mean()


class Critic(nn.Module):
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


class WGANGPTwin(Twin):
    """minigen.models.WGANGP: one critic update (fakes made without a graph,
    the penalty through torch.autograd.grad(create_graph=True)); after every
    n_critic-th, one generator update on fresh noise."""

    def __init__(self, z_dim=64, n_critic=5, gp_weight=10.0, lr=1e-4, betas=(0.5, 0.9)):
        super().__init__()
        self.z_dim, self.n_critic, self.gp_weight = z_dim, n_critic, gp_weight
        self.lr, self.betas = lr, betas
        self.register_buffer("critic_steps", torch.zeros((), dtype=torch.int64))
        self.generator = DCGANGenerator(z_dim)
        self.critic = Critic()

    def make_optimizers(self):
        return {
            "critic": torch.optim.Adam(self.critic.parameters(), lr=self.lr, betas=self.betas),
            "generator": torch.optim.Adam(
                self.generator.parameters(), lr=self.lr, betas=self.betas
            ),
        }

    def train_step(self, x, optimizers):
        n = x.shape[0]
        with torch.no_grad():
            fake = self.generator(self.randn(n, self.z_dim, like=x))
        wasserstein = self.critic(x).mean() - self.critic(fake).mean()
        penalty = gradient_penalty(self.critic, x, fake, self.rand(n, 1, 1, 1, like=x))
        loss = -wasserstein + self.gp_weight * penalty
        optimizers["critic"].zero_grad()
        loss.backward()
        optimizers["critic"].step()
        self.critic_steps += 1

        if int(self.critic_steps) % self.n_critic == 0:
            optimizers["generator"].zero_grad()
            self.critic.requires_grad_(False)  # gradients through D, not for D
            (-self.critic(self.generator(self.randn(n, self.z_dim, like=x))).mean()).backward()
            self.critic.requires_grad_(True)
            optimizers["generator"].step()
        return {
            "critic": loss.item(),
            "wasserstein": wasserstein.item(),
            "penalty": penalty.item(),
        }


# ------------------------------------------------------------------------ VAEs


class MLPEncoder(nn.Module):
    def __init__(self, latent_dim=20, hidden=400):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), self.logvar(h)


class MLPDecoder(nn.Module):
    def __init__(self, latent_dim=20, hidden=400):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 784),
            nn.Unflatten(1, (1, 28, 28)),
        )

    def forward(self, z):
        return self.net(z)


class ConvEncoder(nn.Module):
    def __init__(self, latent_dim=16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.mu = nn.Linear(64 * 7 * 7, latent_dim)
        self.logvar = nn.Linear(64 * 7 * 7, latent_dim)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), self.logvar(h)


class ConvDecoder(nn.Module):
    def __init__(self, latent_dim=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 64 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),
        )

    def forward(self, z):
        return self.net(z)


def gaussian_kl(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latents, batch mean."""
    return 0.5 * (mu * mu + logvar.exp() - 1 - logvar).sum() / mu.shape[0]


class VAETwin(Twin):
    """minigen.models.VAE: loss = sum-BCE / N + KL (batch mean), one Adam."""

    def __init__(self, kind="mlp", latent_dim=20, lr=1e-3):
        super().__init__()
        self.lr = lr
        if kind == "mlp":
            self.encoder, self.decoder = MLPEncoder(latent_dim), MLPDecoder(latent_dim)
        else:
            self.encoder, self.decoder = ConvEncoder(latent_dim), ConvDecoder(latent_dim)

    def reparameterize(self, mu, logvar):
        return mu + (logvar * 0.5).exp() * self.randn(*mu.shape, like=mu)

    def make_optimizers(self):
        return {"adam": torch.optim.Adam(self.parameters(), lr=self.lr)}

    def train_step(self, x, optimizers):
        opt = optimizers["adam"]
        opt.zero_grad()
        mu, logvar = self.encoder(x)
        logits = self.decoder(self.reparameterize(mu, logvar))
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        kl = gaussian_kl(mu, logvar)
        loss = rec + kl
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "rec": rec.item(), "kl": kl.item()}


# ---------------------------------------------------------------------- VQ-VAE


class VectorQuantizer(nn.Module):
    def __init__(self, num_codes=64, code_dim=16, beta=0.25, restart_dead=False):
        super().__init__()
        self.beta, self.restart_dead = beta, restart_dead
        self.codebook = nn.Parameter(torch.empty(num_codes, code_dim))

    @torch.no_grad()
    def nearest(self, flat):
        e = self.codebook
        d = (flat * flat).sum(dim=1, keepdim=True) - 2 * flat @ e.T + (e * e).sum(dim=1)
        return d.argmin(dim=1)

    def forward(self, z_e):
        n, c, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(n * h * w, c)
        indices = self.nearest(flat.detach())
        one_hot = nn.functional.one_hot(indices, self.codebook.shape[0])  # as minigen.lookup
        z_q = one_hot.to(self.codebook.dtype) @ self.codebook
        codebook_loss = ((flat.detach() - z_q) ** 2).sum() / n
        commitment_loss = ((flat - z_q.detach()) ** 2).sum() / n
        z_q_st = flat + (z_q - flat).detach()  # straight-through estimator
        z_q_st = z_q_st.reshape(n, h, w, c).permute(0, 3, 1, 2)
        self.last_flat = flat.detach()
        return z_q_st, codebook_loss, commitment_loss * self.beta, indices.reshape(n, h, w)

    @torch.no_grad()
    def restart_dead_codes(self, indices):
        """As minigen, but the encoder outputs are drawn with torch's RNG."""
        used = torch.bincount(indices.reshape(-1), minlength=self.codebook.shape[0])
        dead = (used == 0).nonzero()[:, 0]
        if len(dead) == 0:
            return 0
        rows = torch.randint(0, self.last_flat.shape[0], (len(dead),), device=dead.device)
        self.codebook[dead] = self.last_flat[rows]
        return len(dead)


class VQVAETwin(Twin):
    """minigen.models.VQVAE: sum-BCE / N + codebook + 0.25 commitment, one Adam."""

    def __init__(self, num_codes=64, code_dim=16, beta=0.25, restart_dead=False, lr=1e-3):
        super().__init__()
        self.lr = lr
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, code_dim, 1),
        )
        self.quantizer = VectorQuantizer(num_codes, code_dim, beta, restart_dead)
        self.decoder = nn.Sequential(
            nn.Conv2d(code_dim, 64, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),
        )

    def make_optimizers(self):
        return {"adam": torch.optim.Adam(self.parameters(), lr=self.lr)}

    def train_step(self, x, optimizers):
        opt = optimizers["adam"]
        opt.zero_grad()
        z_q, codebook_loss, commitment_loss, indices = self.quantizer(self.encoder(x))
        logits = self.decoder(z_q)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        loss = rec + codebook_loss + commitment_loss
        loss.backward()
        opt.step()
        restarted = self.quantizer.restart_dead_codes(indices) if self.quantizer.restart_dead else 0
        return {
            "loss": loss.item(),
            "rec": rec.item(),
            "vq": codebook_loss.item() + commitment_loss.item(),
            "restarted": restarted,
        }


# --------------------------------------------------------------------- VAE-GAN


class VAEGANTwin(Twin):
    """minigen.models.VAEGAN: gated D update, then encoder (KL + L_feat) and
    decoder (gamma L_feat + GAN) gradients from two backward passes; the real
    images' features are a no-grad target, the GAN logits reuse D's features."""

    def __init__(
        self, latent_dim=16, gamma=0.01, kl_weight=10.0, margin=0.35, lr=2e-4, betas=(0.5, 0.999)
    ):
        super().__init__()
        self.latent_dim, self.gamma, self.kl_weight, self.margin = (
            latent_dim,
            gamma,
            kl_weight,
            margin,
        )
        self.lr, self.betas = lr, betas
        self.encoder = ConvEncoder(latent_dim)
        self.decoder = nn.Sequential(ConvDecoder(latent_dim), nn.Tanh())
        self.discriminator = DCGANDiscriminator()

    def make_optimizers(self):
        adam = lambda m: torch.optim.Adam(m.parameters(), lr=self.lr, betas=self.betas)  # noqa: E731
        return {
            "enc": adam(self.encoder),
            "dec": adam(self.decoder),
            "dis": adam(self.discriminator),
        }

    def feature_loss(self, x, x_rec):
        with torch.no_grad():  # the real image's features are a fixed target
            target = self.discriminator.features(x)
        return self._feature_distance(target, self.discriminator.features(x_rec))

    @staticmethod
    def _feature_distance(target, features):
        d = features - target
        return (d * d).sum() * (0.5 / features.shape[0])

    def train_step(self, x, optimizers):
        n = x.shape[0]
        mu, logvar = self.encoder(x)
        x_rec = self.decoder(mu + (logvar * 0.5).exp() * self.randn(*mu.shape, like=mu))
        x_p = self.decoder(self.randn(n, self.latent_dim, like=x))

        dis = self.discriminator
        d_real, d_rec, d_p = dis(x), dis(x_rec.detach()), dis(x_p.detach())
        d_loss = real_loss(d_real) + 0.5 * (fake_loss(d_rec) + fake_loss(d_p))
        optimizers["dis"].zero_grad()
        d_loss.backward()
        if d_loss.item() > self.margin:
            optimizers["dis"].step()

        # one body pass per image; the GAN logits reuse the features
        dis.requires_grad_(False)  # gradients through D, not for D
        with torch.no_grad():
            target = dis.features(x)
        f_rec, f_p = dis.features(x_rec), dis.features(x_p)
        kl = gaussian_kl(mu, logvar)
        feat = self._feature_distance(target, f_rec)
        gan = 0.5 * (real_loss(dis.head(f_rec)) + real_loss(dis.head(f_p)))

        for opt in optimizers.values():
            opt.zero_grad()
        (kl * self.kl_weight + feat).backward(retain_graph=True)  # feat's graph is used again
        encoder_grads = [p.grad for p in self.encoder.parameters()]
        for opt in optimizers.values():
            opt.zero_grad()
        (feat * self.gamma + gan).backward()
        for p, g in zip(self.encoder.parameters(), encoder_grads, strict=True):
            p.grad = g
        dis.requires_grad_(True)
        optimizers["enc"].step()
        optimizers["dec"].step()
        return {"d_loss": d_loss.item(), "gan": gan.item(), "feat": feat.item(), "kl": kl.item()}


# -------------------------------------------------------------- building twins


def _make_twin(model):
    """An untrained twin with the same settings as minigen ``model``."""
    if isinstance(model, GAN):
        pack = getattr(model.discriminator, "pack", 1)
        return GANTwin(model.kind, model.z_dim, pack, model.lr, model.betas, model.r1_gamma)
    if isinstance(model, WGANGP):
        return WGANGPTwin(model.z_dim, model.n_critic, model.gp_weight, model.lr, model.betas)
    if isinstance(model, VAE):
        return VAETwin(model.kind, model.latent_dim, model.lr)
    if isinstance(model, VQVAE):
        q = model.quantizer
        num_codes, code_dim = q.codebook.shape
        return VQVAETwin(num_codes, code_dim, q.beta, q.restart_dead, model.lr)
    if isinstance(model, VAEGAN):
        return VAEGANTwin(
            model.latent_dim, model.gamma, model.kl_weight, model.margin, model.lr, model.betas
        )
    raise TypeError(f"no PyTorch twin for {type(model).__name__}")


def twin_of(model, device="cpu"):
    """The PyTorch twin of a minigen model, with a copy of its current weights
    and buffers (strict: every name must match), in training mode."""
    twin = _make_twin(model)
    state = {k: torch.from_numpy(backend.to_numpy(v).copy()) for k, v in model.state_dict().items()}
    twin.load_state_dict(state, strict=True)
    return twin.to(device).train()


def to_torch(x, device="cpu"):
    """A minigen batch (backend array) as a torch tensor on ``device``."""
    return torch.from_numpy(backend.to_numpy(x).copy()).to(device)


@contextmanager
def recorded_noise():
    """Record every backend.randn and backend.rand draw minigen makes inside, in
    order, as (kind, host array)."""
    draws, originals = [], {kind: getattr(backend, kind) for kind in ("randn", "rand")}

    def recording(kind, original):
        def draw(*shape, **kwargs):
            a = original(*shape, **kwargs)
            draws.append((kind, backend.to_numpy(a).copy()))
            return a

        return draw

    for kind, original in originals.items():
        setattr(backend, kind, recording(kind, original))
    try:
        yield draws
    finally:
        for kind, original in originals.items():
            setattr(backend, kind, original)


def replay(draws):
    """A ``noise`` callable that hands out recorded draws in order, checking kinds and shapes."""
    queue = list(draws)

    def noise(kind, *shape):
        if not queue:
            raise AssertionError(f"the twin draws {kind} {shape} that minigen never drew")
        drawn_kind, a = queue.pop(0)
        if (drawn_kind, a.shape) != (kind, tuple(shape)):
            raise AssertionError(
                f"the twin draws {kind} {shape}, minigen drew {drawn_kind} {a.shape}"
            )
        return a

    noise.left = queue
    return noise


def relative_difference(ours, theirs):
    """Largest |a - b| / max(|b|, 1e-6) over the float losses both report."""
    worst = 0.0
    for key, b in theirs.items():
        a = ours[key]
        if isinstance(b, float):
            worst = max(worst, abs(a - b) / max(abs(b), 1e-6))
        elif a != b:
            return math.inf
    return worst


def agreement(model, batches, twin=None, device="cpu"):
    """Run minigen ``model`` and its twin on the same batches with the same noise.

    batches: backend arrays, one training step each. The twin is made from
    the model's weights before the first step unless given. Returns
    (twin, twin optimizers, list of (minigen losses, twin losses) per step).
    Both sides have taken len(batches) steps afterwards.
    """
    twin = twin_of(model, device) if twin is None else twin
    ours_opt, their_opt = model.make_optimizers(), twin.make_optimizers()
    results = []
    for x in batches:
        with recorded_noise() as draws:
            ours = model.train_step(x, ours_opt)
        twin.noise = replay(draws)
        try:
            theirs = twin.train_step(to_torch(x, device), their_opt)
        finally:
            left, twin.noise = twin.noise.left, None
        if left:
            raise AssertionError(f"minigen drew {len(left)} noise arrays the twin never used")
        results.append((ours, theirs))
    return twin, ours_opt, their_opt, results
