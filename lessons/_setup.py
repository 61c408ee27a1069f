"""The few lines every generative lesson starts with: options, backend, data.

Every lesson runs three ways:

    python lessons/05_vae.py                      # full run, the numbers in its header
    python lessons/05_vae.py --quick              # smoke run on a small slice, < 30 s
    python lessons/05_vae.py --backend cupy --epochs 20   # a bigger run on a GPU
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import minigen  # noqa: E402
from minigen import data  # noqa: E402

QUICK_TRAIN, QUICK_TEST = 512, 256


def setup(name, description, epochs):
    """Parse the lesson's options; return (args, out_dir, train_images, test_images, test_labels).

    ``--quick`` keeps only 512 training and 256 test images and one epoch;
    ``args.epochs`` is the number of epochs to train.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny data, 1 epoch")
    parser.add_argument("--epochs", type=int, default=None, help=f"epochs (default {epochs})")
    parser.add_argument("--backend", default=None, help="numpy (default), cupy or strict")
    parser.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist or mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", default=f"figures/{name}", help="folder for figures and checkpoints"
    )
    args = parser.parse_args()
    if args.backend:
        minigen.use_backend(args.backend)
    args.epochs = args.epochs or (1 if args.quick else epochs)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_images, _ = data.load(args.dataset, split="train")
    test_images, test_labels = data.load(args.dataset, split="test")
    if args.quick:
        print("--quick: a smoke test on a small slice; its numbers mean nothing.")
        train_images = train_images[:QUICK_TRAIN]
        test_images, test_labels = test_images[:QUICK_TEST], test_labels[:QUICK_TEST]
    print(
        f"{name}: backend {minigen.backend.name()}, {len(train_images)} training images, "
        f"{args.epochs} epoch(s), figures in {out}/"
    )
    return args, out, train_images, test_images, test_labels
