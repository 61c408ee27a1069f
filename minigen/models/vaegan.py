"""VAE-GAN (Larsen et al. 2016): a VAE whose reconstruction error is measured
by a GAN's discriminator.

A VAE with a pixel-wise likelihood blurs: under BCE, the average of several
plausible images scores better than any one of them. VAE-GAN keeps the VAE's
encoder and decoder (the decoder doubles as the GAN's generator) and measures
reconstructions in the discriminator's last hidden feature map Dis_l
(128 x 7 x 7), where edges and textures count more than exact pixel positions:

    L_feat = 1/2 sum_features (Dis_l(x) - Dis_l(x_rec))^2   (per image, batch mean)

Three networks, three losses (x real, x_rec = Dec(Enc(x)), x_p = Dec(z ~ N(0, I))):

    encoder:        kl_weight * KL + L_feat
    decoder:        gamma * L_feat + GAN loss making x_rec and x_p look real
    discriminator:  BCE(D(x), 1) + (BCE(D(x_rec), 0) + BCE(D(x_p), 0)) / 2

``gamma`` (0.01) brings the summed L_feat (a squared distance in D's features,
not nats: about 1,600 per image at the start and 800-900 later in lesson 08's
run) towards the scale of the GAN term (~1), so the decoder also learns realism; ``kl_weight`` (10)
holds the posterior near the prior against the full L_feat the encoder sees,
so that prior samples look like reconstructions (lesson 08 measures both);
the equilibrium gate (``margin``) pauses D while it is winning too clearly,
so that G's gradients keep their signal.
Pixels are in [-1, 1] (the decoder ends in tanh).
"""

from minigen import backend, nn, optim
from minigen.autograd import no_grad
from minigen.models.base import GenerativeModel
from minigen.models.gan import (
    DCGANDiscriminator,
    dcgan_init_,
    fake_loss,
    generator_loss,
    real_loss,
)
from minigen.models.options import MAX_SIZE, Option
from minigen.models.vae import ConvDecoder, ConvEncoder, reparameterize
from minigen.nn import functional as F


class VAEGAN(GenerativeModel):
    """conv-VAE encoder and decoder (tanh) with a DCGAN discriminator; see above."""

    name = "vae-gan"
    scale = "symmetric"
    batch_size = 64

    latent_dim = Option(int, 16, f"[1, {MAX_SIZE}]", "length of the latent z")
    gamma = Option(float, 0.01, "[0, inf)", "weight of L_feat in the decoder's loss")
    kl_weight = Option(float, 10.0, "[0, inf)", "weight of the KL term in the encoder's loss")
    margin = Option(float, 0.35, "[0, inf)", "D steps only while its loss is above this")
    lr = Option(float, 2e-4, "(0, inf)", "Adam's learning rate, all three networks")
    betas = Option(float, (0.5, 0.999), "[0, 1)", "Adam's beta1 and beta2", size=2)

    def __init__(self, **options):
        super().__init__(**options)
        self.encoder = ConvEncoder(self.latent_dim)
        self.decoder = nn.Sequential(ConvDecoder(self.latent_dim), nn.Tanh())
        self.discriminator = DCGANDiscriminator()
        dcgan_init_(self)

    def make_optimizers(self):
        adam = lambda m: optim.Adam(m.parameters(), lr=self.lr, betas=self.betas)  # noqa: E731
        return {
            "enc": adam(self.encoder),
            "dec": adam(self.decoder),
            "dis": adam(self.discriminator),
        }

    def sample(self, n):
        """n images decoded from the prior, in [-1, 1]."""
        return self.decoder(backend.randn(n, self.latent_dim))

    def reconstruct(self, x):
        """Decode the posterior mean, in [-1, 1]."""
        mu, _ = self.encoder(x)
        return self.decoder(mu)

    def reconstruction_logits(self, x):
        """Bernoulli logits of the reconstruction of x in [0, 1], as the VAEs give them
        (``metrics.reconstruction_bce``): the decoder ends in tanh, and
        (tanh(a) + 1) / 2 = sigmoid(2a), so in [0, 1] its logits are 2a."""
        mu, _ = self.encoder(x * 2 - 1)
        return self.decoder[0](mu) * 2  # decoder[0]: the ConvDecoder before its Tanh

    def feature_loss(self, x, x_rec, rec_features=None):
        """L_feat: 1/2 sum of squared differences in D's hidden features, batch mean.

        The real image's features are a fixed target (no graph). ``rec_features``
        are D's features of ``x_rec`` when the caller has them already
        (``train_step`` reuses them for the GAN logits).
        """
        with no_grad():
            target = self.discriminator.features(x)
        if rec_features is None:
            rec_features = self.discriminator.features(x_rec)
        d = rec_features - target
        return (d * d).sum() * (0.5 / rec_features.shape[0])

    def train_step(self, x, optimizers):
        n = x.shape[0]
        mu, logvar = self.encoder(x)
        x_rec = self.decoder(reparameterize(mu, logvar))
        x_p = self.sample(n)

        # Discriminator: real vs the two kinds of fake (fakes detached).
        dis = self.discriminator
        d_real, d_rec, d_p = dis(x), dis(x_rec.detach()), dis(x_p.detach())
        d_loss = real_loss(d_real) + 0.5 * (fake_loss(d_rec) + fake_loss(d_p))
        optimizers["dis"].zero_grad()
        d_loss.backward()
        if d_loss.item() > self.margin:  # equilibrium: pause D while it wins clearly
            optimizers["dis"].step()
        d_loss = d_loss.data  # free D's graph (and its logits) before the passes below
        del d_real, d_rec, d_p

        # Encoder: KL + L_feat.  Decoder: gamma * L_feat + GAN loss. D's passes
        # are made fresh, after its update; each image goes through D's body
        # once, and the GAN logits reuse those features.
        dis.requires_grad_(False)  # gradients through D, not for D
        f_rec, f_p = dis.features(x_rec), dis.features(x_p)
        kl = F.gaussian_kl(mu, logvar, reduction="mean")
        feat = self.feature_loss(x, x_rec, rec_features=f_rec)
        gan = 0.5 * (generator_loss(dis.head(f_rec)) + generator_loss(dis.head(f_p)))

        for opt in optimizers.values():
            opt.zero_grad()
        (kl * self.kl_weight + feat).backward()
        encoder_grads = [p.grad for p in self.encoder.parameters()]
        for opt in optimizers.values():
            opt.zero_grad()
        (feat * self.gamma + gan).backward()
        for p, g in zip(self.encoder.parameters(), encoder_grads):
            p.grad = g
        dis.requires_grad_(True)
        optimizers["enc"].step()
        optimizers["dec"].step()
        return backend.to_floats(
            {"d_loss": d_loss, "gan": gan.data, "feat": feat.data, "kl": kl.data}
        )
