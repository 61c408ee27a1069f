"""Make the Fashion-MNIST subset that ships inside minigen (minigen/data/files/).

Takes, from the full files, the first 600 training images of each class and
the first 100 test images of each class, in file order (no randomness, so
anyone rerunning this gets byte-identical files), and writes them as gzipped
IDX files with the same layout as the originals.

    python tools/make_subset.py [SOURCE_DIR]

SOURCE_DIR holds the four official files; the default is the Debian package's
/usr/share/datasets/fashion-mnist (apt install dataset-fashion-mnist).
"""

import shutil
import sys
from pathlib import Path

import numpy as np

from minigen.data.idx import read_idx, write_idx

SOURCE = Path("/usr/share/datasets/fashion-mnist")
DEST = Path(__file__).resolve().parent.parent / "minigen" / "data" / "files"
PER_CLASS = {"train": 600, "t10k": 100}
LICENCE = Path("/usr/share/doc/dataset-fashion-mnist/copyright")


def first_per_class(labels, per_class):
    """Indices of the first ``per_class`` examples of each class, in file order."""
    keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)])
    return np.sort(keep)


def main(source=SOURCE):
    source = Path(source)
    DEST.mkdir(parents=True, exist_ok=True)
    for split, per_class in PER_CLASS.items():
        images = read_idx(source / f"{split}-images-idx3-ubyte.gz")
        labels = read_idx(source / f"{split}-labels-idx1-ubyte.gz")
        keep = first_per_class(labels, per_class)
        assert len(keep) == 10 * per_class, "a class has too few examples"
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            out = DEST / f"fashion-mnist-{split}-{kind}-ubyte.gz"
            write_idx(out, array[keep])
            print(f"{out.name}: {array[keep].shape}, {out.stat().st_size:,} bytes")
    if LICENCE.exists():
        shutil.copyfile(LICENCE, DEST / "LICENSE-fashion-mnist")


if __name__ == "__main__":
    main(*sys.argv[1:])
