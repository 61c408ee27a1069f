"""Datasets for the lessons: MNIST and Fashion-MNIST, and minibatches of them.

    images, labels = minigen.data.load("fashion-mnist", split="train")
    for x, y in minigen.data.batches(images, labels, batch_size=64, seed=0):
        ...   # x: float32 (64, 1, 28, 28) on the current backend, y: int64 (64,)

- ``idx``: the IDX file format (read_idx, write_idx).
- ``sources``: where the files come from (directory, $MINIGEN_DATA, Debian
  package, cache, download, the subset shipped with minigen).
- ``batches``: shuffled minibatches moved to the device and scaled
  (``scale_pixels``); ``unit_batches`` walks images in order, in [0, 1].
"""

from minigen.data.batches import batches, num_batches, scale_pixels, unit_batches
from minigen.data.idx import DataError, read_idx, write_idx
from minigen.data.sources import (
    CLASSES,
    IMAGE_SHAPE,
    DownloadError,
    cache_dir,
    load,
    locate,
    read,
)

__all__ = [
    "CLASSES",
    "DataError",
    "DownloadError",
    "IMAGE_SHAPE",
    "batches",
    "cache_dir",
    "load",
    "locate",
    "num_batches",
    "read",
    "read_idx",
    "scale_pixels",
    "unit_batches",
    "write_idx",
]
