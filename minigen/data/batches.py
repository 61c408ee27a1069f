"""Minibatches: shuffle on the host, move uint8 to the device, scale there.

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
"""

from minigen import backend

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
):
    """Yield ``(x, y)`` minibatches for one epoch.

    images: host uint8 array (N, H, W) or (N, C, H, W); labels: (N,) or None.
    x: float32 (B, C, H, W) on the current backend (C = 1 for (N, H, W) input).
    y: int64 (B,) on the current backend, or None without labels.
    drop_last=True skips the final short batch, so every batch has B = batch_size.
    """
    images, labels = _check(images, labels, batch_size, scale)
    n = len(images)
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(n)
    else:
        order = np.arange(n)
    return _generate(
        images, labels, order, batch_size, num_batches(n, batch_size, drop_last), scale
    )


def _generate(images, labels, order, batch_size, count, scale):
    # a separate generator function, so that the checks above run at the call
    for i in range(count):
        idx = order[i * batch_size : (i + 1) * batch_size]
        x = backend.from_numpy(images[idx]).astype(backend.DEFAULT_DTYPE)
        x *= 1.0 / 255.0 if scale == "unit" else 1.0 / 127.5
        if scale == "symmetric":
            x -= 1.0
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
