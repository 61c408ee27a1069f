"""GANs: a generator G maps noise z to images, a discriminator D tells real from fake.

D is trained to output a high logit on real images and a low one on G's
samples; G is trained to fool D. With D's logit l and sigmoid s:

    D loss = BCE(l_real, 1) + BCE(l_fake, 0)
    G loss = BCE(l_fake, 1)   (the "non-saturating" loss: -log s(l_fake))

The original minimax G loss, log(1 - s(l_fake)), has a vanishing gradient
exactly when G is bad and D is sure, early in training; the non-saturating
form has the same fixed point and a strong gradient there.

Images are (N, 1, 28, 28) in [-1, 1] (G ends in tanh). Two reference pairs
(docs/reference-models.md): the MLP GAN and the DCGAN. Both start from the
DCGAN initialisation (``dcgan_init_``), as does the VAE-GAN.
"""

from minigen import backend, nn, optim
from minigen.models.base import GenerativeModel
from minigen.models.blocks import IMAGE_SHAPE, PIXELS, STEM_SIDE, stem
from minigen.models.options import MAX_SIZE, Option
from minigen.models.penalties import r1_penalty
from minigen.nn import functional as F


def dcgan_init_(module):
    """The DCGAN recipe (Radford et al. 2016) on every submodule of ``module``:
    Linear and (transposed) convolution weights N(0, 0.02), BatchNorm weights
    N(1, 0.02), their biases 0. Other modules keep their values. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    return module


class MLPGenerator(nn.Module):
    """z (N, 64) -> 256 -> 512 -> 784 -> tanh -> (N, 1, 28, 28)."""

    def __init__(self, z_dim=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(z_dim, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 512),
            nn.LeakyReLU(0.2),
            nn.Linear(512, PIXELS),
            nn.Tanh(),
            nn.Unflatten(IMAGE_SHAPE),
        )

    def forward(self, z):
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """(N, 1, 28, 28) -> 512 -> 256 -> 1 logit.

    ``pack`` > 1 is PacGAN (Lin et al. 2018): D judges ``pack`` samples at once,
    concatenated. A generator that collapses onto a few modes makes packs of
    near-identical images, which D learns to spot, so collapse is penalised.
    The batch size must be a multiple of ``pack``.
    """

    def __init__(self, pack=1):
        super().__init__()
        self.pack = pack
        self.net = nn.Sequential(
            nn.Linear(PIXELS * pack, 512),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 1),
        )

    def forward(self, x):
        return self.net(x.reshape(x.shape[0] // self.pack, PIXELS * self.pack))


def leaky_relu():
    """LeakyReLU(0.2), the DCGAN discriminator's activation."""
    return nn.LeakyReLU(0.2)


class DCGANGenerator(nn.Module):
    """z -> Linear 128*7*7 -> BN -> ReLU -> (128,7,7) -> ConvT 64 -> BN -> ReLU -> ConvT 1, tanh"""

    def __init__(self, z_dim=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(z_dim, 128 * STEM_SIDE**2),
            nn.BatchNorm1d(128 * STEM_SIDE**2),
            nn.ReLU(),
            nn.Unflatten((128, STEM_SIDE, STEM_SIDE)),
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    """Conv 64 -> LReLU -> Conv 128 -> BN -> LReLU -> flatten -> Linear 1.

    ``features(x)`` returns the last hidden map (N, 128, 7, 7); VAE-GAN
    measures reconstructions there.
    """

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(*stem(64, leaky_relu, batch_norm=True))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(128 * STEM_SIDE**2, 1))

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


def real_loss(logits):
    """BCE(logits, 1): small when D calls these images real."""
    return F.binary_cross_entropy_with_logits(logits, backend.ones(logits.shape, logits.dtype))


def fake_loss(logits):
    """BCE(logits, 0): small when D calls these images fake."""
    return F.binary_cross_entropy_with_logits(logits, backend.zeros(logits.shape, logits.dtype))


def discriminator_loss(real_logits, fake_logits):
    """BCE(real, 1) + BCE(fake, 0), each averaged over its batch."""
    return real_loss(real_logits) + fake_loss(fake_logits)


def generator_loss(fake_logits):
    """The non-saturating loss BCE(fake, 1) = mean of -log sigmoid(fake logit)."""
    return real_loss(fake_logits)


class GAN(GenerativeModel):
    """A generator and a discriminator trained against each other.

    ``kind`` is "mlp" (the MLP GAN) or "dcgan". One ``train_step`` is one
    update of D on a real and a fake batch, then one update of G through the
    freshly updated D (a new forward pass: D's old activations are stale).

    ``ema`` (e.g. 0.999) keeps an exponential moving average of G's weights,
    G_ema <- ema * G_ema + (1 - ema) * G after every step (Yazici et al. 2019).
    G itself keeps oscillating between modes as D chases it; the average sits
    near the middle of that orbit. In eval mode, ``sample`` uses the average.

    ``r1_gamma`` > 0 adds the R1 penalty (Mescheder et al. 2018) to D's loss:
    r1_gamma / 2 * E ||grad_x D(x)||^2 over the real batch, D's logit
    differentiated with respect to its input. It keeps D flat on the data,
    so D cannot push G around a real image forever; 0 (the default) is the
    plain GAN of the reference numbers.
    """

    scale = "symmetric"  # pixels in [-1, 1], to match tanh
    batch_size = 64

    kind = Option(str, "mlp", ("mlp", "dcgan"), "the networks: MLPs or DCGAN convolutions")
    z_dim = Option(int, 64, f"[1, {MAX_SIZE}]", "length of the noise vector z")
    pack = Option(int, 1, "[1, 64]", "PacGAN: images D judges together (1: off)")
    lr = Option(float, 2e-4, "(0, inf)", "Adam's learning rate, both networks")
    betas = Option(float, (0.5, 0.999), "[0, 1)", "Adam's beta1 and beta2", size=2)
    ema = Option(float, None, "(0, 1)", "decay of G's weight average used in eval (None: off)")
    r1_gamma = Option(float, 0.0, "[0, inf)", "weight gamma of the R1 penalty (0: off)")

    def __init__(self, **options):
        super().__init__(**options)
        self.name = {"mlp": "mlp-gan", "dcgan": "dcgan"}[self.kind]
        if self.kind == "mlp":
            self.generator = MLPGenerator(self.z_dim)
            self.discriminator = MLPDiscriminator(self.pack)
        else:
            self.generator = DCGANGenerator(self.z_dim)
            self.discriminator = DCGANDiscriminator()
        dcgan_init_(self)
        if self.ema is not None:
            self.generator_ema = type(self.generator)(self.z_dim)
            self.generator_ema.load_state_dict(self.generator.state_dict())

    def make_optimizers(self):
        return {
            "d": optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=self.betas),
            "g": optim.Adam(self.generator.parameters(), lr=self.lr, betas=self.betas),
        }

    def sample(self, n):
        """n images from the generator, (n, 1, 28, 28) in [-1, 1] (from the
        weight average in eval mode, when there is one)."""
        use_average = self.ema is not None and not self.training
        generator = self.generator_ema if use_average else self.generator
        return generator(backend.randn(n, self.z_dim))

    def update_average(self):
        """G_ema <- ema * G_ema + (1 - ema) * G; buffers (BatchNorm statistics) are copied."""
        for average, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            average.data *= self.ema
            average.data += (1 - self.ema) * p.data
        for (_, average), (_, b) in zip(
            self.generator_ema.named_buffers(), self.generator.named_buffers()
        ):
            average[...] = b

    def train_step(self, x, optimizers):
        """One D update and one G update on a real batch x; returns the losses."""
        d_opt, g_opt = optimizers["d"], optimizers["g"]
        fake = self.sample(x.shape[0])

        d_opt.zero_grad()
        d_loss = discriminator_loss(self.discriminator(x), self.discriminator(fake.detach()))
        terms = {}  # the penalty, reported on its own
        if self.r1_gamma > 0:
            terms["r1"] = r1_penalty(self.discriminator, x)
            d_loss = d_loss + self.r1_gamma / 2 * terms["r1"]
        d_loss.backward()
        d_opt.step()
        # D's graph is done with: free it before G's pass
        d_loss, terms = d_loss.data, {k: v.data for k, v in terms.items()}

        g_opt.zero_grad()
        self.discriminator.requires_grad_(False)  # gradients through D, not for D
        g_loss = generator_loss(self.discriminator(fake))
        g_loss.backward()
        self.discriminator.requires_grad_(True)
        g_opt.step()
        if self.ema is not None:
            self.update_average()
        return backend.to_floats({"d_loss": d_loss, "g_loss": g_loss.data, **terms})
