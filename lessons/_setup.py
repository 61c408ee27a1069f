"""The few lines every generative lesson starts with: options, backend, data.

Every lesson runs three ways:

    python lessons/05_vae.py                      # full run, the numbers in its header
    python lessons/05_vae.py --quick              # smoke run on a small slice, < 30 s
    python lessons/05_vae.py --backend cupy --epochs 20   # a bigger run on a GPU

and as a notebook (``python tools/notebooks.py OUT``): a kernel's own arguments are not the
lesson's, and ``MINIGEN_QUICK=1`` in the environment stands for ``--quick``.
"""

import argparse
import os
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # scripts draw to files; a notebook keeps its inline figures
    matplotlib.use("Agg")

import minigen  # noqa: E402
from minigen import data  # noqa: E402

QUICK_TRAIN, QUICK_TEST = 512, 256


def parse_options(parser):
    """``parser.parse_args()``, for a script and for a Jupyter kernel alike.

    A kernel was started with its own arguments (``-f kernel-1234.json``): inside one, those the
    parser does not know are ignored; outside one they are an error, as usual. A notebook has no
    command line, so ``MINIGEN_QUICK=1`` in the environment also selects ``--quick``.
    """
    quick = os.environ.get("MINIGEN_QUICK", "").strip()
    if quick not in ("", "0", "1"):
        raise ValueError(
            f"MINIGEN_QUICK is {quick!r}; set it to 1 for a quick run, or to 0 or nothing for a full one"
        )
    args, unknown = parser.parse_known_args()
    if unknown and "ipykernel" not in sys.modules:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.quick = args.quick or quick == "1"
    return args


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
    args = parse_options(parser)
    if args.backend:
        minigen.use_backend(args.backend)
    args.epochs = args.epochs or (1 if args.quick else epochs)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_images, _ = data.load(args.dataset, split="train")
    test_images, test_labels = data.load(args.dataset, split="test")
    if args.quick:
        train_images = train_images[:QUICK_TRAIN]
        test_images, test_labels = test_images[:QUICK_TEST], test_labels[:QUICK_TEST]
    print(
        f"{name}: backend {minigen.backend.name()}, {len(train_images)} training images, "
        f"{args.epochs} epoch(s), figures in {out}/"
    )
    return args, out, train_images, test_images, test_labels
