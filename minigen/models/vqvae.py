"""VQ-VAE: an autoencoder whose latent is a grid of codebook entries.

The encoder maps an image to z_e, a 7x7 grid of 16-dim vectors. Each vector
is replaced by its nearest of K = 64 codebook vectors e_k, giving z_q, which
the decoder turns back into pixel logits (van den Oord et al. 2017).

"Nearest" (an argmin) has no gradient, so the decoder's gradient at z_q is
copied straight through to z_e: z_q_st = z_e + sg[z_q - z_e] equals z_q in
the forward pass and has d z_q_st / d z_e = I. The codebook learns from its
own term, and a commitment term keeps the encoder near the codes:

    loss = BCE(decoder(z_q_st), x) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2

(each term summed over pixels or positions and channels, averaged over the
batch; sg = stop gradient = ``detach``; beta = 0.25).

Dead codes: a code that is nobody's nearest neighbour gets no gradient and
stays dead. The remedy here restarts such codes at random encoder outputs of
the current batch (``restart_dead=True``).

Sampling needs a prior over code grids. Training assumes a uniform one (the
KL term is then the constant log K per position and drops out), so without
more ``sample`` decodes grids of uniformly random codes. A PixelCNN trained
afterwards on the training images' code grids (minigen/models/prior.py,
``fit_prior``) is attached as ``self.prior``; ``sample`` then draws the
grids from it. Its weights are part of the state dict ("prior.*") and its
sizes part of ``options`` (``prior_hidden``, ``prior_layers``), so a
checkpoint saved after ``fit_prior`` rebuilds and samples with the trained
prior (``python -m minigen prior CKPT`` does this for a checkpoint: the prior
is the model's one ``Part``). Training further moves the codebook and makes
the prior stale: resuming drops it (``on_resume``, with a line saying so).
"""

from minigen import backend, nn, optim
from minigen.autograd import Tensor
from minigen.data.batches import unit_batches
from minigen.models.base import GenerativeModel, Part
from minigen.models.blocks import STEM_SIDE, stem
from minigen.models.options import MAX_SIZE, Option
from minigen.models.prior import PixelCNN, fit_prior
from minigen.nn import functional as F


class VectorQuantizer(nn.Module):
    """Nearest-code lookup with a straight-through gradient.

    Input z_e (N, D, H, W); returns z_q_st of the same shape, the codebook and
    commitment losses (batch means), and the code index at each position (N, H, W).
    """

    def __init__(self, num_codes=64, code_dim=16, beta=0.25, restart_dead=False):
        super().__init__()
        self.beta, self.restart_dead = beta, restart_dead
        self.codebook = nn.Parameter(
            backend.uniform(-1.0 / num_codes, 1.0 / num_codes, (num_codes, code_dim))
        )

    def nearest(self, flat):
        """Index of the nearest code for each row of ``flat`` (M, D): argmin of
        ||z||^2 - 2 z.e + ||e||^2, one GEMM instead of an (M, K, D) difference."""
        e = self.codebook.data
        cross = backend.xp().matmul(flat, e.T)
        d = (flat * flat).sum(axis=1, keepdims=True) - 2 * cross + (e * e).sum(axis=1)
        return d.argmin(axis=1)

    def lookup(self, indices):
        """The codes at ``indices`` (M,) as a one-hot (M, K) matrix times the codebook (K, D).

        Same values as ``codebook[indices]``; the codebook's gradient is then
        one_hot.T @ grad, a matrix product that sums each code's rows in a fixed
        order. Indexing would scatter it with ``add.at``, which CuPy runs with
        atomic adds in no set order: float sums that differ from run to run.
        """
        k = self.codebook.shape[0]
        one_hot = indices[:, None] == backend.xp().arange(k)
        return Tensor(one_hot.astype(self.codebook.dtype)) @ self.codebook

    def forward(self, z_e):
        n, c, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(n * h * w, c)
        indices = self.nearest(flat.data)
        z_q = self.lookup(indices)
        codebook_loss = ((flat.detach() - z_q) ** 2).sum() / n
        commitment_loss = ((flat - z_q.detach()) ** 2).sum() / n
        z_q_st = flat + (z_q - flat).detach()  # forward: z_q; backward: identity to z_e
        z_q_st = z_q_st.reshape(n, h, w, c).permute(0, 3, 1, 2)
        return z_q_st, codebook_loss, commitment_loss * self.beta, indices.reshape(n, h, w)

    def restart_dead_codes(self, indices, z_e):
        """Move every code unused in this batch onto a random encoder output of it.

        ``indices`` (N, H, W) are the batch's nearest codes, ``z_e`` (N, D, H, W)
        its encoder outputs (the input of ``forward``). Returns how many moved.
        """
        xp = backend.xp()
        used = xp.bincount(indices.reshape(-1), minlength=self.codebook.shape[0])
        dead = backend.to_numpy(used == 0).nonzero()[0]
        if len(dead) == 0:
            return 0
        z_e = z_e.data if isinstance(z_e, Tensor) else z_e
        flat = z_e.transpose((0, 2, 3, 1)).reshape(-1, z_e.shape[1])
        rows = backend.rng().integers(0, flat.shape[0], size=len(dead))
        self.codebook.data[backend.from_numpy(dead)] = flat[backend.from_numpy(rows)]
        return len(dead)


class VQVAE(GenerativeModel):
    """Encoder -> VectorQuantizer -> decoder, the reference vq-vae.

    28x28 images become a 7x7 grid of codes (``grid_size``: two stride-2
    convolutions, 28 -> 14 -> 7). ``prior_hidden``, ``prior_layers``: None
    (uniform code grids), or the sizes of a ``PixelCNN`` to hold as
    ``self.prior`` (``attach_prior`` records them, so a checkpoint's options
    rebuild the prior before its weights are loaded).
    """

    name = "vq-vae"
    scale = "unit"
    batch_size = 128

    parts = (
        Part(
            "prior",
            help="fit a PixelCNN prior to a trained VQ-VAE, so that 'sample' draws from it",
            description="Fit a PixelCNN prior (minigen/models/prior.py) on the code grids of "
            "the training images of a vq-vae checkpoint, and store it in that checkpoint: "
            "'sample' then decodes code grids drawn from the prior instead of uniformly random "
            "ones. Training the VQ-VAE further (--resume) drops the prior, since its codes "
            "change.",
            epochs=2,
            options=("prior_hidden", "prior_layers"),
            losses="prior loss per epoch (nats per position; uniform codes: log K)",
            uses="drawing code grids from the checkpoint's PixelCNN prior",
        ),
    )

    num_codes = Option(int, 64, f"[1, {MAX_SIZE}]", "codebook size K")
    code_dim = Option(int, 16, f"[1, {MAX_SIZE}]", "length of each code vector")
    beta = Option(float, 0.25, "[0, inf)", "weight of the commitment loss")
    restart_dead = Option(bool, False, None, "move codes unused in a batch onto its encodings")
    lr = Option(float, 1e-3, "(0, inf)", "Adam's learning rate")
    prior_hidden = Option(
        int, None, f"[1, {MAX_SIZE}]", "hidden channels of the PixelCNN prior (None: no prior)"
    )
    prior_layers = Option(int, None, "[0, 64]", "masked 3x3 layers of the prior after its first")

    def __init__(self, **options):
        super().__init__(**options)
        num_codes, code_dim = self.num_codes, self.code_dim
        self.encoder = nn.Sequential(*stem(32, nn.ReLU), nn.Conv2d(64, code_dim, 1))
        self.grid_size = (STEM_SIDE, STEM_SIDE)  # code positions per image
        self.quantizer = VectorQuantizer(num_codes, code_dim, self.beta, self.restart_dead)
        self.decoder = nn.Sequential(
            nn.Conv2d(code_dim, 64, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),
        )
        self.prior = None
        sizes = {"hidden": self.prior_hidden, "layers": self.prior_layers}
        if any(v is not None for v in sizes.values()):
            sizes = {k: v for k, v in sizes.items() if v is not None}  # others: defaults
            self.attach_prior(PixelCNN(num_codes, self.grid_size, **sizes))

    def attach_prior(self, prior):
        """Sample code grids from ``prior`` (a ``PixelCNN`` over this model's grid)
        from now on; its sizes join ``options`` (``prior_hidden``,
        ``prior_layers``) so a checkpoint can rebuild it."""
        k = self.quantizer.codebook.shape[0]
        if not isinstance(prior, PixelCNN) or (prior.num_codes, prior.grid_size) != (
            k,
            self.grid_size,
        ):
            raise ValueError(
                f"attach_prior: expected a PixelCNN over {k} codes on a {self.grid_size} grid, "
                f"got {prior!r:.80}"
            )
        self.prior = prior
        self.prior_hidden, self.prior_layers = prior.options["hidden"], prior.options["layers"]

    def detach_prior(self):
        """Back to uniform code grids: drop ``self.prior`` and its sizes from ``options``
        (training moves the codebook, which makes a fitted prior stale)."""
        self.prior = self.prior_hidden = self.prior_layers = None

    def on_resume(self, source, epoch):
        """Training moves the codebook, so a prior fitted on the old codes is stale:
        drop it, and say so."""
        if self.prior is None:
            return None
        self.detach_prior()
        return (
            f"{self.name}: {source} holds a prior fitted on its codes at epoch {epoch}; "
            "training moves the codebook, so that prior is stale and is dropped. Fit a new one "
            "afterwards: python -m minigen prior CKPT."
        )

    def fit_part(self, name, images, epochs, *, quiet=False, prior_hidden=None, prior_layers=None):
        """Fit a PixelCNN prior (the one part, "prior") on the code grids of ``images``
        (``fit_prior``); sizes from ``prior_hidden``, ``prior_layers`` (None: the
        PixelCNN's defaults). Returns its mean loss per epoch."""
        if name != "prior":
            return super().fit_part(name, images, epochs)
        sizes = {"hidden": prior_hidden, "layers": prior_layers}
        for key, value in sizes.items():  # as the declaration allows
            getattr(type(self), f"prior_{key}").check(value, type(self).__name__)
        sizes = {k: v for k, v in sizes.items() if v is not None}
        prior = PixelCNN(self.num_codes, self.grid_size, **sizes)
        return fit_prior(self, images, epochs, prior=prior, quiet=quiet)[1]

    def forward(self, x):
        """Logits, codebook loss, commitment loss and code indices for a batch x."""
        z_q, codebook_loss, commitment_loss, indices = self.quantizer(self.encoder(x))
        return self.decoder(z_q), codebook_loss, commitment_loss, indices

    def losses(self, x):
        """The training loss ("loss") and its parts "rec" (sum-pixel BCE), "codebook"
        and "commitment", batch means per image, as scalar Tensors."""
        return self._pass(x)[0]

    def _pass(self, x):
        # the losses, plus what restarting dead codes needs: indices and z_e
        z_e = self.encoder(x)
        z_q, codebook_loss, commitment_loss, indices = self.quantizer(z_e)
        logits = self.decoder(z_q)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        losses = {
            "loss": rec + codebook_loss + commitment_loss,
            "rec": rec,
            "codebook": codebook_loss,
            "commitment": commitment_loss,
        }
        return losses, indices, z_e

    def make_optimizers(self):
        """Adam over the autoencoder's weights; the prior is trained apart (``fit_prior``)."""
        own = [p for name, p in self.named_parameters() if not name.startswith("prior.")]
        return {"adam": optim.Adam(own, lr=self.lr)}

    def reconstruction_logits(self, x):
        """Logits of the decoded quantized grid: the deterministic reconstruction."""
        return self(x)[0]

    def reconstruct(self, x):
        """x through the code grid and back, pixels in [0, 1]."""
        return self.reconstruction_logits(x).sigmoid()

    def decode_indices(self, indices):
        """Images (in [0, 1]) from a grid of code indices (N, H, W)."""
        z_q = self.quantizer.codebook[indices].permute(0, 3, 1, 2)
        return self.decoder(z_q).sigmoid()

    def encode_indices(self, images, batch_size=500):
        """The code grid of each image: a backend int64 array (N, H, W).

        ``images``: (N, 28, 28) or (N, 1, 28, 28), uint8 or floats in [0, 1],
        host or backend, encoded in batches without a graph.
        """
        xp, parts = backend.xp(), []
        with nn.eval_mode(self):
            for x in unit_batches(images, batch_size, "encode_indices"):
                z_e = self.encoder(Tensor(x)).data
                n, c, h, w = z_e.shape
                flat = z_e.transpose((0, 2, 3, 1)).reshape(n * h * w, c)
                codes = self.quantizer.nearest(flat).reshape(n, h, w)
                parts.append(codes.astype(xp.int64, copy=False))
        return xp.concatenate(parts)

    def sample(self, n):
        """n images in [0, 1] decoded from code grids drawn from ``self.prior``, or
        from uniformly random grids when no prior is attached."""
        if self.prior is not None:
            return self.decode_indices(self.prior.sample(n))
        k = self.quantizer.codebook.shape[0]
        grid = backend.rng().integers(0, k, size=(n, *self.grid_size))
        return self.decode_indices(backend.from_numpy(grid))

    def train_step(self, x, optimizers):
        opt = optimizers["adam"]
        opt.zero_grad()
        losses, indices, z_e = self._pass(x)
        losses["loss"].backward()
        opt.step()
        restarted = 0
        if self.quantizer.restart_dead:
            restarted = self.quantizer.restart_dead_codes(indices, z_e)
        vq = losses["codebook"].data + losses["commitment"].data
        return backend.to_floats(
            {
                "loss": losses["loss"].data,
                "rec": losses["rec"].data,
                "vq": vq,
                "restarted": restarted,
            }
        )
