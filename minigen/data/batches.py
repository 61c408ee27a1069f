"""Minibatches: shuffle on the host, move uint8 to the device, scale there.

Two ways through a dataset: ``batches`` (shuffled, for training) and
``unit_batches`` (in order, pixels in [0, 1], for evaluation: the metrics).

One epoch visits every example once, in an order drawn from a NumPy
generator seeded by ``(seed, epoch)``: the same seed and epoch give the same
batches on every backend, and each epoch has its own order::

    for epoch in range(epochs):
        for x, y in batches(images, labels, 64, seed=0, epoch=epoch):
            ...

Only one batch at a time is moved and turned into float32, so the whole
dataset stays as compact uint8 on the host. Pixels p in 0..255 become

    scale="unit":       x = p / 255            in [0, 1]   (VAEs)
    scale="symmetric":  x = p / 127.5 - 1      in [-1, 1]  (GANs, tanh output)

(``scale_pixels``, the one place that formula is written.)
"""

from minigen import backend
from minigen.autograd import Tensor

np = backend.host
SCALES = ("unit", "symmetric")


def num_batches(n, batch_size, drop_last=True):
    """How many batches one epoch of ``n`` examples gives."""
    return n // batch_size if drop_last else -(-n // batch_size)


def batches(
    images,
    labels=None,
    batch_size=64,
    *,
    shuffle=True,
    seed=0,
    epoch=0,
    drop_last=True,
    scale="unit",
    shard=(0, 1),
):
    """Yield ``(x, y)`` minibatches for one epoch.

    images: host uint8 array (N, H, W) or (N, C, H, W); labels: (N,) or None.
    x: float32 (B, C, H, W) on the current backend (C = 1 for (N, H, W) input).
    y: int64 (B,) on the current backend, or None without labels.
    drop_last=True skips the final short batch, so every batch has B = batch_size.
    shard=(rank, size): each batch is cut into ``size`` equal parts and only part
    ``rank`` is yielded (B / size examples): data-parallel processes together see
    exactly the batches of one process (minigen/distributed.py).
    """
    images, labels = _check(images, labels, batch_size, scale)
    rank, size = shard
    if batch_size % size or not 0 <= rank < size:
        raise ValueError(
            f"batches: shard={shard!r} must be (rank, size) with 0 <= rank < size and size "
            f"dividing batch_size {batch_size}"
        )
    n = len(images)
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(n)
    else:
        order = np.arange(n)
    count = num_batches(n, batch_size, drop_last)
    part = batch_size // size
    return _generate(images, labels, order, batch_size, count, scale, (rank * part, part))


def scale_pixels(pixels, scale="unit"):
    """uint8 pixels 0..255 (host or backend array, any shape) as a float32 backend
    array: p / 255 in [0, 1] for scale="unit", p / 127.5 - 1 in [-1, 1] for
    "symmetric". A host array is moved to the backend first, still as uint8."""
    if pixels.dtype != np.uint8:
        raise TypeError(f"scale_pixels: expected uint8 pixels 0..255, got dtype {pixels.dtype}")
    if scale not in SCALES:
        raise ValueError(f"scale_pixels: scale must be one of {SCALES}, got {scale!r}")
    if isinstance(pixels, np.ndarray):
        pixels = backend.from_numpy(pixels)  # the explicit transfer, in compact uint8
    x = pixels.astype(backend.DEFAULT_DTYPE)
    x *= 1.0 / 255.0 if scale == "unit" else 1.0 / 127.5
    if scale == "symmetric":
        x -= 1.0
    return x


def _generate(images, labels, order, batch_size, count, scale, part):
    # a separate generator function, so that the checks above run at the call
    first, length = part
    for i in range(count):
        idx = order[i * batch_size : (i + 1) * batch_size][first : first + length]
        x = scale_pixels(images[idx], scale)
        y = None if labels is None else backend.from_numpy(labels[idx], dtype=np.int64)
        yield x, y


def _check(images, labels, batch_size, scale):
    # the order is drawn and applied on the host: device arrays come back once
    images = backend.to_numpy(images)
    if images.dtype != np.uint8:
        raise TypeError(
            f"batches: images must be uint8 pixels 0..255 (as minigen.data.load returns), "
            f"got {images.dtype}"
        )
    if images.ndim == 3:
        images = images[:, None]  # (N, H, W) -> (N, 1, H, W): one channel
    if images.ndim != 4:
        raise ValueError(
            f"batches: images must have shape (N, H, W) or (N, C, H, W), got {images.shape}"
        )
    if labels is not None:
        labels = backend.to_numpy(labels)
        if labels.shape != (len(images),):
            raise ValueError(
                f"batches: labels must have shape ({len(images)},) to match the images, "
                f"got {labels.shape}"
            )
    if not (isinstance(batch_size, int) and batch_size > 0):
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}")
    if scale not in SCALES:
        raise ValueError(f"batches: scale must be one of {SCALES}, got {scale!r}")
    return images, labels


def unit_batches(images, batch_size, who):
    """Yield float32 backend batches (B, 1, H, W) of ``images``, in order, pixels in [0, 1].

    ``images``: host or backend array (or Tensor), (N, H, W) or (N, 1, H, W);
    uint8 is scaled by ``scale_pixels``, floats must already lie in [0, 1].
    ``who`` names the caller in error messages.
    """
    images = images.data if isinstance(images, Tensor) else images
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[1] != 1):
        raise ValueError(
            f"{who}: expected images of shape (N, H, W) or (N, 1, H, W), got {tuple(images.shape)}"
        )
    if images.dtype != np.uint8 and images.dtype.kind != "f":
        raise TypeError(f"{who}: expected uint8 or float images, got dtype {images.dtype}")
    if batch_size < 1:
        raise ValueError(f"{who}: batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        if images.dtype == np.uint8:
            x = scale_pixels(chunk, "unit")
        else:
            if isinstance(chunk, np.ndarray):
                chunk = backend.from_numpy(chunk)  # the explicit transfer, in its own dtype
            x = chunk.astype(backend.DEFAULT_DTYPE)
            _check_unit_range(x, who)
        yield x.reshape(len(x), 1, *x.shape[-2:])


def _check_unit_range(x, who):
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise ValueError(
            f"{who}: float images must have pixels in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; "
            "a generator with tanh output (in [-1, 1]) needs (x + 1) / 2 first"
        )
