"""Variational autoencoders: an encoder q(z|x), a decoder p(x|z), and the ELBO.

The encoder maps an image x to the mean and log-variance of a Gaussian over
the latent z. We sample z = mu + exp(logvar / 2) * eps with eps ~ N(0, I)
(``reparameterize``, the reparameterisation trick: the randomness is an
input, so gradients flow to mu and logvar). The decoder maps z to Bernoulli
logits for the pixels.

Per image, the negative ELBO is

    sum_pixels BCE(logits, x)  +  KL(q(z|x) || N(0, I)),
    KL = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j),

an upper bound on -log p(x) in nats (``F.gaussian_kl`` is the KL term).
Training minimises its batch mean. Pixels are in [0, 1] (continuous targets
for the BCE).
"""

from minigen import backend, nn, optim
from minigen.models.base import GenerativeModel
from minigen.models.blocks import IMAGE_SHAPE, PIXELS, STEM_SIDE, stem
from minigen.models.options import MAX_SIZE, Option
from minigen.nn import functional as F
from minigen.ops import exp


def reparameterize(mu, logvar, eps=None):
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I): a sample of N(mu, exp(logvar)).

    The reparameterisation trick: the randomness is an input, so gradients
    flow to mu and logvar. ``eps`` is drawn with ``backend.randn`` in mu's
    dtype unless given (the importance-weighted bound needs it back).
    """
    if eps is None:
        eps = backend.randn(*mu.shape, dtype=mu.dtype)
    return mu + exp(logvar * 0.5) * eps


class MLPEncoder(nn.Module):
    """(N, 1, 28, 28) -> 400 -> ReLU -> (mu, logvar), each (N, latent_dim)."""

    def __init__(self, latent_dim=20, hidden=400):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(PIXELS, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), self.logvar(h)


class MLPDecoder(nn.Module):
    """z -> 400 -> ReLU -> 784 logits -> (N, 1, 28, 28)."""

    def __init__(self, latent_dim=20, hidden=400):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, PIXELS),
            nn.Unflatten(IMAGE_SHAPE),
        )

    def forward(self, z):
        return self.net(z)


class ConvEncoder(nn.Module):
    """Conv 1->32 -> ReLU -> Conv 32->64 -> ReLU -> flatten 64*7*7 -> (mu, logvar)."""

    def __init__(self, latent_dim=16):
        super().__init__()
        self.body = nn.Sequential(*stem(32, nn.ReLU), nn.Flatten())
        self.mu = nn.Linear(64 * STEM_SIDE**2, latent_dim)
        self.logvar = nn.Linear(64 * STEM_SIDE**2, latent_dim)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), self.logvar(h)


class ConvDecoder(nn.Module):
    """z -> Linear 64*7*7 -> ReLU -> (64,7,7) -> ConvT 32 -> ReLU -> ConvT 1 (logits)."""

    def __init__(self, latent_dim=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 64 * STEM_SIDE**2),
            nn.ReLU(),
            nn.Unflatten((64, STEM_SIDE, STEM_SIDE)),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),
        )

    def forward(self, z):
        return self.net(z)


class VAE(GenerativeModel):
    """Encoder + decoder + ELBO. ``kind`` is "mlp" (latent 20) or "conv" (latent 16)."""

    scale = "unit"  # pixels in [0, 1], Bernoulli targets
    batch_size = 128

    kind = Option(str, "mlp", ("mlp", "conv"), "the networks: MLPs or convolutions")
    latent_dim = Option(
        int, None, f"[1, {MAX_SIZE}]", "length of the latent z (None: 20 for mlp, 16 for conv)"
    )
    lr = Option(float, 1e-3, "(0, inf)", "Adam's learning rate")

    def __init__(self, **options):
        super().__init__(**options)
        self.name = {"mlp": "mlp-vae", "conv": "conv-vae"}[self.kind]
        if self.latent_dim is None:
            self.latent_dim = {"mlp": 20, "conv": 16}[self.kind]
        if self.kind == "mlp":
            self.encoder = MLPEncoder(self.latent_dim)
            self.decoder = MLPDecoder(self.latent_dim)
        else:
            self.encoder = ConvEncoder(self.latent_dim)
            self.decoder = ConvDecoder(self.latent_dim)

    def forward(self, x):
        """Logits of the reconstruction, and q(z|x)'s mu and logvar."""
        mu, logvar = self.encoder(x)
        return self.decoder(reparameterize(mu, logvar)), mu, logvar

    def losses(self, x):
        """The negative ELBO ("loss") and its parts "rec" (sum-pixel BCE) and "kl",
        each a batch mean in nats per image, as scalar Tensors."""
        logits, mu, logvar = self(x)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        kl = F.gaussian_kl(mu, logvar, reduction="mean")
        return {"loss": rec + kl, "rec": rec, "kl": kl}

    def make_optimizers(self):
        return {"adam": optim.Adam(self.parameters(), lr=self.lr)}

    def sample(self, n):
        """n images decoded from the prior, as pixel probabilities in [0, 1]."""
        return self.decoder(backend.randn(n, self.latent_dim)).sigmoid()

    def reconstruction_logits(self, x):
        """Logits of the decoded posterior mean: the deterministic reconstruction."""
        mu, _ = self.encoder(x)
        return self.decoder(mu)

    def reconstruct(self, x):
        """Decode the posterior mean: the model's best reconstruction, in [0, 1]."""
        return self.reconstruction_logits(x).sigmoid()

    def train_step(self, x, optimizers):
        opt = optimizers["adam"]
        opt.zero_grad()
        losses = self.losses(x)
        losses["loss"].backward()
        opt.step()
        return backend.to_floats({key: value.data for key, value in losses.items()})
