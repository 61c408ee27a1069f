"""The few lines every generative lesson starts with: options, backend, data.

Every lesson runs three ways:

    python lessons/05_vae.py                      # full run, the numbers in its header
    python lessons/05_vae.py --quick              # smoke run on a small slice, < 30 s
    python lessons/05_vae.py --backend cupy --epochs 20   # a bigger run on a GPU
"""

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import minigen  # noqa: E402
from minigen import data  # noqa: E402
from minigen.__main__ import nonnegative_int, positive_int  # noqa: E402
from minigen.errors import MinigenError  # noqa: E402

QUICK_TRAIN, QUICK_TEST = 512, 256


def setup(name, description, epochs):
    """Parse the lesson's options; return (args, out_dir, train_images, test_images, test_labels).

    ``--quick`` keeps only 512 training and 256 test images and one epoch;
    ``args.epochs`` is the number of epochs to train. A bad option is an
    argparse error naming it; a minigen error (no data, no GPU) ends the
    lesson with one line and exit status 1.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny data, 1 epoch")
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help=f"epochs (default {epochs})"
    )
    parser.add_argument(
        "--backend",
        choices=minigen.backend.NAMES,
        default=None,
        help="numpy (default), cupy or strict",
    )
    parser.add_argument(
        "--dataset",
        choices=list(data.CLASSES),
        default="fashion-mnist",
        help="fashion-mnist (default) or mnist",
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--out", default=f"figures/{name}", help="folder for figures and checkpoints"
    )
    args = parser.parse_args()
    if args.epochs is None:
        args.epochs = 1 if args.quick else epochs
    try:
        if args.backend:
            minigen.use_backend(args.backend)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        src = data.locate(args.dataset, split="train")
        train_images, _ = data.read(src)
        test_images, test_labels = data.load(args.dataset, split="test")
    except (MinigenError, OSError) as e:
        sys.exit(f"{name}: error: {' '.join(str(e).split())}")
    print(f"data: {len(train_images):,} {src.describe()}")
    if args.quick:
        train_images = train_images[:QUICK_TRAIN]
        test_images, test_labels = test_images[:QUICK_TEST], test_labels[:QUICK_TEST]
    print(
        f"{name}: backend {minigen.backend.name()}, {len(train_images)} training images, "
        f"{args.epochs} epoch(s), figures in {out}/"
    )
    return args, out, train_images, test_images, test_labels
