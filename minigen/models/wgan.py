"""WGAN-GP (Gulrajani et al. 2017): a GAN whose critic estimates a Wasserstein distance.

The Wasserstein-1 distance between the data and the generator's distribution,
by Kantorovich-Rubinstein duality, is

    W(P_real, P_G) = max over 1-Lipschitz f of  E_real f(x) - E_G f(x~).

A critic D (no sigmoid: a score, not a probability) is trained to maximise
that difference; G is trained to lower it, i.e. to raise E D(G(z)):

    critic loss    = E D(x~) - E D(x) + lambda * GP     (x~ = G(z), lambda = 10)
    generator loss = -E D(G(z))

Unlike the BCE of gan.py, this loss does not saturate when D wins: the
distance shrinks smoothly as G improves, so D can be trained well (n_critic =
5 critic updates per generator update) and its estimate means something.

The Lipschitz constraint is enforced softly by the gradient penalty (GP): the
optimal critic has gradient norm 1 on lines between real and generated
samples, so GP = E (||grad D(xhat)|| - 1)^2 at random points xhat on those
lines (minigen/models/penalties.py). The penalty is per sample, so the
critic has no BatchNorm (it would mix the samples of a batch).
"""

from minigen import backend, nn, optim
from minigen.autograd import no_grad
from minigen.models.base import GenerativeModel
from minigen.models.blocks import STEM_SIDE, stem
from minigen.models.gan import DCGANGenerator, dcgan_init_, leaky_relu
from minigen.models.options import MAX_SIZE, Option
from minigen.models.penalties import gradient_penalty, r1_penalty


class Critic(nn.Module):
    """(N, 1, 28, 28) -> Conv 64 -> LReLU -> Conv 128 -> LReLU -> flatten -> Linear 1.

    The DCGAN discriminator without its BatchNorm (the gradient penalty is
    taken per sample); its output is a score, not a logit.
    """

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            *stem(64, leaky_relu), nn.Flatten(), nn.Linear(128 * STEM_SIDE**2, 1)
        )

    def forward(self, x):
        return self.net(x)


class WGANGP(GenerativeModel):
    """The DCGAN generator against a BatchNorm-free critic, with the WGAN-GP loss.

    One ``train_step`` is one critic update on the batch it is given; after
    every ``n_critic``-th critic update it also makes one generator update
    (on fresh noise). So each critic update sees a new batch, as in the
    official code (gan_mnist.py of igul222/improved_wgan_training), and an
    epoch of B batches makes B / n_critic generator updates. The count of
    critic updates is the buffer ``critic_steps``: it is saved with the
    weights, so a resumed run keeps the schedule exactly.

    Adam with lr 1e-4 and betas (0.5, 0.9), one per network: the setting of
    the official MNIST script. The paper's Algorithm 1 lists beta1 = 0; the
    reference follows the script, the code a reader can run on the same data
    (docs/reference-models.md).
    """

    name = "wgan-gp"
    scale = "symmetric"  # pixels in [-1, 1], to match tanh
    batch_size = 64

    z_dim = Option(int, 64, f"[1, {MAX_SIZE}]", "length of the noise vector z")
    n_critic = Option(int, 5, "[1, 1000]", "critic updates per generator update")
    gp_weight = Option(float, 10.0, "[0, inf)", "weight lambda of the gradient penalty")
    lr = Option(float, 1e-4, "(0, inf)", "Adam's learning rate, both networks")
    beta1 = Option(float, 0.5, "[0, 1)", "Adam's beta1")
    beta2 = Option(float, 0.9, "[0, 1)", "Adam's beta2")

    def __init__(self, **options):
        super().__init__(**options)
        self.register_buffer("critic_steps", backend.xp().zeros((), dtype="int64"))
        self.generator = DCGANGenerator(self.z_dim)
        self.critic = Critic()
        dcgan_init_(self)

    @property
    def betas(self):
        """(beta1, beta2), as Adam takes them."""
        return (self.beta1, self.beta2)

    def make_optimizers(self):
        return {
            "critic": optim.Adam(self.critic.parameters(), lr=self.lr, betas=self.betas),
            "generator": optim.Adam(self.generator.parameters(), lr=self.lr, betas=self.betas),
        }

    def sample(self, n):
        """n images from the generator, (n, 1, 28, 28) in [-1, 1]."""
        return self.generator(backend.randn(n, self.z_dim))

    def critic_losses(self, real, fake, eps=None):
        """The critic's loss and its parts, scalar Tensors:

        wasserstein = mean D(real) - mean D(fake)   (the distance estimate)
        penalty     = gradient_penalty(D, real, fake, eps)
        loss        = -wasserstein + gp_weight * penalty   (what the critic minimises)
        """
        wasserstein = self.critic(real).mean() - self.critic(fake).mean()
        penalty = gradient_penalty(self.critic, real, fake, eps)
        return {
            "wasserstein": wasserstein,
            "penalty": penalty,
            "loss": -wasserstein + self.gp_weight * penalty,
        }

    def generator_loss(self, z):
        """-mean D(G(z)): G raises the critic's score of its samples."""
        return -self.critic(self.generator(z)).mean()

    def train_step(self, x, optimizers):
        """One critic update on x; after every n_critic-th, one generator update.

        Returns floats: the critic's loss and its two parts. The generator's
        loss -mean D(G(z)) is not among them: the critic is defined only up to
        an added constant (D + c has the same losses and gradients), so that
        number drifts with c and says nothing; the Wasserstein estimate is the
        curve to watch (it falls as G improves).
        """
        with no_grad():  # the critic's fakes are constants: no graph through G
            fake = self.sample(x.shape[0])
        losses = self.critic_losses(x, fake)
        optimizers["critic"].zero_grad()
        losses["loss"].backward()
        optimizers["critic"].step()
        self.critic_steps += 1

        if int(backend.to_numpy(self.critic_steps)) % self.n_critic == 0:
            optimizers["generator"].zero_grad()
            self.critic.requires_grad_(False)  # gradients through D, not for D
            self.generator_loss(backend.randn(x.shape[0], self.z_dim)).backward()
            self.critic.requires_grad_(True)
            optimizers["generator"].step()
        return backend.to_floats(
            {
                "critic": losses["loss"].data,
                "wasserstein": losses["wasserstein"].data,
                "penalty": losses["penalty"].data,
            }
        )


__all__ = ["WGANGP", "Critic", "gradient_penalty", "r1_penalty"]
