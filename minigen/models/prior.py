"""A PixelCNN prior over VQ-VAE code grids: p(grid) as a product of softmaxes.

A VQ-VAE turns an image into a 7x7 grid c of code indices in 0..K-1.
Decoding uniformly random grids ignores which codes go together; a prior
learns p(c), factorised in raster order (row by row, left to right):

    p(c) = prod_{p=0..48} p(c_p | c_0, ..., c_{p-1})

One network computes all 49 conditionals in one pass if its output at
position p never depends on positions >= p. PixelCNN (van den Oord et al.
2016) gets this from masked convolutions: each kernel is multiplied by a
fixed 0/1 mask that keeps the rows above the centre and the taps left of it:

    type A (first layer)    type B (later layers)
        1 1 1                   1 1 1
        1 0 0                   1 1 0
        0 0 0                   0 0 0

Type A also hides the centre, so the first layer never sees the code it
predicts; after it, the centre only carries earlier positions, so type B
may use it. Training is maximum likelihood, all positions at once: the
cross-entropy of each position's code under its softmax (nats per
position; a uniform prior scores log K = log 64 = 4.16). Sampling is
sequential: 49 passes, each drawing one position from its softmax.

Why a PixelCNN and not a masked MLP over the 49 positions (MADE): the mask
is a small picture of "the past" a learner can draw, the convolution shares
its weights across the grid (an MLP from 49*64 one-hot inputs to 49*64
logits is large), and it is the prior of the VQ-VAE paper. Its known flaw,
the blind spot: each 3x3 layer widens the view by one column per row above,
so positions up and to the right stay unseen at any depth (the gated
PixelCNN's two stacks remove it). On the 7x7 grid after four layers it is
not small: lesson 07 counts, by gradient, 395 of the 1176 (position, earlier
position) pairs unseen, 175 of them in the blind spot proper.
"""

from minigen import backend, loop, nn, optim
from minigen.autograd import ShapeError, Tensor
from minigen.models.blocks import STEM_SIDE
from minigen.nn import functional as F


def causal_mask(kernel_size, mask_type):
    """The (kh, kw) 0/1 float32 mask of a masked convolution (type "A" or "B").

    Keeps every tap in the rows above the centre and those left of the
    centre in its row; type "B" also keeps the centre.
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"causal_mask: mask_type must be 'A' or 'B', got {mask_type!r}")
    kh, kw = kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"causal_mask: the kernel needs a centre, so odd sides; got {kh}x{kw}")
    mask = backend.host.zeros((kh, kw), dtype=backend.DEFAULT_DTYPE)
    mask[: kh // 2] = 1
    mask[kh // 2, : kw // 2 + (mask_type == "B")] = 1
    return backend.from_numpy(mask)


class MaskedConv2d(nn.Conv2d):
    """A same-size Conv2d whose kernel is multiplied by ``causal_mask`` in forward.

    The product is part of the graph, so the masked weights also get zero
    gradient: the mask holds during training, not just at initialisation.
    The mask is fixed, so it is not saved in the state dict.
    """

    def __init__(self, in_channels, out_channels, kernel_size, mask_type, bias=True):
        k = int(kernel_size)
        super().__init__(in_channels, out_channels, k, padding=k // 2, bias=bias)
        self.mask_type = mask_type
        self.mask = causal_mask(self.kernel_size, mask_type)

    def function(self, x):
        mask = self.mask.astype(self.weight.dtype, copy=False)  # float64 in gradchecks
        return F.conv2d(x, self.weight * mask, self.bias, self.stride, self.padding)

    def extra_sizes(self):
        return f", mask_type={self.mask_type!r}"


class PixelCNN(nn.Module):
    """Autoregressive prior over (N, H, W) grids of code indices in [0, num_codes).

    one-hot (N, K, H, W) -> masked conv A (3x3) -> ReLU -> [masked conv B (3x3)
    -> ReLU] x ``layers`` -> 1x1 conv -> logits (N, K, H, W). Small (32 hidden
    channels, 48k weights) so that an epoch over 60,000 grids takes minutes on
    a CPU. ``options`` holds the constructor's arguments, so the same prior can
    be built again.
    """

    def __init__(self, num_codes=64, grid_size=(STEM_SIDE, STEM_SIDE), hidden=32, layers=3):
        super().__init__()
        self.num_codes, self.grid_size = int(num_codes), tuple(int(s) for s in grid_size)
        self.options = {
            "num_codes": self.num_codes,
            "grid_size": list(self.grid_size),
            "hidden": hidden,
            "layers": layers,
        }
        parts = [MaskedConv2d(num_codes, hidden, 3, "A"), nn.ReLU()]
        for _ in range(layers):
            parts += [MaskedConv2d(hidden, hidden, 3, "B"), nn.ReLU()]
        parts.append(nn.Conv2d(hidden, num_codes, 1))  # a 1x1 kernel is its own centre: causal
        self.net = nn.Sequential(*parts)

    def check_codes(self, codes, who):
        """``codes`` as a backend int array (N, H, W) in range, or one sentence why not."""
        codes = backend.from_numpy(codes) if isinstance(codes, backend.host.ndarray) else codes
        shape = tuple(codes.shape)
        if len(shape) != 3 or shape[1:] != self.grid_size:
            raise ShapeError(
                f"{who}: expected code grids of shape (N, {self.grid_size[0]}, "
                f"{self.grid_size[1]}), got {shape}"
            )
        if codes.dtype.kind not in "iu":
            raise TypeError(f"{who}: code grids must be integers, got dtype {codes.dtype}")
        if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= self.num_codes):
            raise ValueError(
                f"{who}: codes must lie in [0, {self.num_codes}), got values from "
                f"{int(codes.min())} to {int(codes.max())}"
            )
        return codes

    def one_hot(self, codes):
        """(N, H, W) indices -> (N, K, H, W) float32 one-hot Tensor (no gradient)."""
        xp = backend.xp()
        k = xp.arange(self.num_codes).reshape(1, -1, 1, 1)
        return Tensor((codes[:, None] == k).astype(backend.DEFAULT_DTYPE))

    def forward(self, codes):
        """Logits (N, K, H, W): at (r, c) they depend only on codes before (r, c)."""
        return self.net(self.one_hot(self.check_codes(codes, "PixelCNN")))

    def loss(self, codes):
        """Mean cross-entropy per position (nats, scalar Tensor) of ``codes`` under the
        prior; times H * W it is -log p(grid), nats per grid."""
        codes = self.check_codes(codes, "PixelCNN.loss")
        logits = self.net(self.one_hot(codes))
        flat = logits.permute(0, 2, 3, 1).reshape(-1, self.num_codes)
        return F.cross_entropy(flat, codes.reshape(-1))

    def sample(self, n):
        """n grids (n, H, W) of int64 codes on the backend, filled in raster order.

        One pass per position (eval mode, no graph); each code is drawn by
        inverting its softmax's cumulative sum at a uniform number from
        minigen's host generator, so a seed gives the same grids on every
        backend (up to a float32 rounding that lands exactly on a boundary).
        """
        xp = backend.xp()
        h, w = self.grid_size
        grid = xp.zeros((n, h, w), dtype=xp.int64)
        with nn.eval_mode(self):
            for p in range(h * w):
                r, c = divmod(p, w)
                # self.net, not self(): the grid is ours, so no validation (and its
                # host reads of min and max) in each of the h * w passes
                z = self.net(self.one_hot(grid)).data[:, :, r, c]  # (n, K) logits of p
                e = xp.exp(z - z.max(axis=1, keepdims=True))
                cdf = xp.cumsum(e, axis=1)  # unnormalised: compare with u * total
                u = backend.from_numpy(backend.rng().random((n, 1), dtype=backend.DEFAULT_DTYPE))
                code = (cdf < u * cdf[:, -1:]).sum(axis=1)
                grid[:, r, c] = xp.minimum(code, self.num_codes - 1)
        return grid


def fit_prior(
    vqvae, images, epochs=2, *, prior=None, batch_size=128, lr=1e-3, max_seconds=None, quiet=True
):
    """Train a PixelCNN prior on the code grids of ``images`` and attach it to ``vqvae``.

    ``images``: the VQ-VAE's training images (host uint8 (N, 28, 28), or floats
    in [0, 1]); they are encoded once (``vqvae.encode_indices``), then the
    prior is trained with Adam on shuffled minibatches drawn from minigen's
    generator (``backend.manual_seed`` first for a repeatable run), by the
    loop every training shares (minigen/loop.py: a NaN loss stops it with
    ``DivergenceError``). ``prior`` defaults to a fresh ``PixelCNN`` sized to
    the VQ-VAE. ``max_seconds``: a wall-clock budget (encoding included);
    fitting ends after the step during which it runs out, as ``train``'s
    does. ``quiet=False`` shows a progress bar. Returns (prior, losses): the
    mean loss per epoch in nats per position (the last epoch's over the steps
    run).
    """
    budget = loop.Budget(max_seconds, "fit_prior")
    codes = vqvae.encode_indices(images)
    k = vqvae.quantizer.codebook.shape[0]
    if prior is None:
        prior = PixelCNN(num_codes=k, grid_size=vqvae.grid_size)
    opt = optim.Adam(prior.parameters(), lr=lr)
    steps = len(codes) // batch_size
    if steps == 0:
        raise ValueError(f"fit_prior: {len(codes)} images are fewer than one batch of {batch_size}")

    def step(batch):
        opt.zero_grad()
        loss = prior.loss(batch)
        loss.backward()
        opt.step()
        return {"loss": loss.data}

    def batches(epoch):
        order = backend.from_numpy(backend.permutation(len(codes)))
        parts = (codes[order[i * batch_size : (i + 1) * batch_size]] for i in range(steps))
        return parts, steps

    history, losses = {}, []

    def end_epoch(epoch, stopped):  # the mean over this epoch's steps
        done = history["loss"][len(losses) * steps :]
        losses.append(sum(done) / len(done))

    loop.run(
        prior, step, batches, epochs, name="prior", history=history, budget=budget,
        end_epoch=end_epoch, quiet=quiet,
    )  # fmt: skip
    vqvae.attach_prior(prior)
    return prior, losses
