"""Variational autoencoders: an encoder q(z|x), a decoder p(x|z), and the ELBO.

The encoder maps an image x to the mean and log-variance of a Gaussian over
the latent z. We sample z = mu + exp(logvar / 2) * eps with eps ~ N(0, I)
(the reparameterisation trick: the randomness is an input, so gradients flow
to mu and logvar). The decoder maps z to Bernoulli logits for the pixels.

Per image, the negative ELBO is

    sum_pixels BCE(logits, x)  +  KL(q(z|x) || N(0, I)),
    KL = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j),

an upper bound on -log p(x) in nats. Training minimises its batch mean.
Pixels are in [0, 1] (continuous targets for the BCE).
"""

from minigen import backend, nn, optim
from minigen.nn import functional as F


def reparameterize(mu, logvar):
    """z = mu + sigma * eps with sigma = exp(logvar / 2), eps ~ N(0, I)."""
    eps = backend.randn(*mu.shape, dtype=mu.dtype)
    return mu + (logvar * 0.5).exp() * eps


class ELBO:
    """The negative ELBO as a loss that reports its parts.

    Calling it returns the batch-mean loss (a Tensor to backprop); afterwards
    ``.reconstruction`` and ``.kl`` hold the batch means of the two parts
    (one-element arrays, nats per image; read on the host together with the loss).
    """

    def __init__(self, kl_weight=1.0):
        self.kl_weight = kl_weight
        self.reconstruction = self.kl = None

    def __call__(self, logits, x, mu, logvar):
        n = x.shape[0]
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
        kl = F.gaussian_kl(mu, logvar, reduction="mean")
        self.reconstruction, self.kl = rec.data, kl.data
        return rec + kl * self.kl_weight


class MLPEncoder(nn.Module):
    """(N, 1, 28, 28) -> 400 -> ReLU -> (mu, logvar), each (N, latent_dim)."""

    def __init__(self, latent_dim=20, hidden=400):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU())
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
            nn.Linear(hidden, 784),
            nn.Unflatten((1, 28, 28)),
        )

    def forward(self, z):
        return self.net(z)


class ConvEncoder(nn.Module):
    """Conv 1->32 -> ReLU -> Conv 32->64 -> ReLU -> flatten 64*7*7 -> (mu, logvar)."""

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
    """z -> Linear 64*7*7 -> ReLU -> (64,7,7) -> ConvT 32 -> ReLU -> ConvT 1 (logits)."""

    def __init__(self, latent_dim=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 64 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten((64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),
        )

    def forward(self, z):
        return self.net(z)


class VAE(nn.Module):
    """Encoder + decoder + ELBO. ``kind`` is "mlp" (latent 20) or "conv" (latent 16)."""

    scale = "unit"  # pixels in [0, 1], Bernoulli targets

    def __init__(self, kind="mlp", latent_dim=None, lr=1e-3):
        super().__init__()
        self.kind, self.lr = kind, lr
        if kind == "mlp":
            self.latent_dim = latent_dim or 20
            self.encoder = MLPEncoder(self.latent_dim)
            self.decoder = MLPDecoder(self.latent_dim)
        elif kind == "conv":
            self.latent_dim = latent_dim or 16
            self.encoder = ConvEncoder(self.latent_dim)
            self.decoder = ConvDecoder(self.latent_dim)
        else:
            raise ValueError(f"unknown VAE kind {kind!r}; use 'mlp' or 'conv'")
        self.elbo = ELBO()

    def forward(self, x):
        """Logits of the reconstruction, and q(z|x)'s mu and logvar."""
        mu, logvar = self.encoder(x)
        return self.decoder(reparameterize(mu, logvar)), mu, logvar

    def loss(self, x):
        logits, mu, logvar = self(x)
        return self.elbo(logits, x, mu, logvar)

    def make_optimizers(self):
        return {"adam": optim.Adam(self.parameters(), lr=self.lr)}

    def sample(self, n):
        """n images decoded from the prior, as pixel probabilities in [0, 1]."""
        return self.decoder(backend.randn(n, self.latent_dim)).sigmoid()

    def reconstruct(self, x):
        """Decode the posterior mean: the model's best reconstruction, in [0, 1]."""
        mu, _ = self.encoder(x)
        return self.decoder(mu).sigmoid()

    def train_step(self, x, optimizers):
        opt = optimizers["adam"]
        opt.zero_grad()
        loss = self.loss(x)
        loss.backward()
        opt.step()
        parts = {"loss": loss.data, "rec": self.elbo.reconstruction, "kl": self.elbo.kl}
        return backend.to_floats(parts)
