"""Command line: train a reference model, or draw samples from a checkpoint.

python -m minigen train dcgan --epochs 5 --out runs/dcgan
python -m minigen train dcgan --epochs 10 --resume runs/dcgan/checkpoint.npz
python -m minigen sample runs/dcgan/checkpoint.npz --n 64 --out samples.png
python -m minigen prior runs/vq-vae/checkpoint.npz --epochs 2   # the VQ-VAE's prior

Every minigen error (a bad checkpoint, missing data, an unavailable backend,
divergence, ...) ends the command with one line on stderr and exit status 1;
a bad flag is reported by argparse, naming the flag, with exit status 2.
"""

import argparse
import sys
from pathlib import Path

from minigen import backend
from minigen.data import CLASSES
from minigen.errors import MinigenError
from minigen.models import MODELS, sample_images

MAX_SAMPLES = 10_000  # more would be a grid nobody can read, or gigabytes of .npy

EXAMPLES = """examples:
  python -m minigen train mlp-vae --epochs 10 --out runs/vae
  python -m minigen train dcgan --epochs 5 --backend cupy --out runs/dcgan
  python -m minigen train dcgan --epochs 8 --resume runs/dcgan/checkpoint.npz
  python -m minigen sample runs/dcgan/checkpoint.npz --n 64 --out dcgan.png
  python -m minigen train vq-vae --epochs 5 --out runs/vq-vae
  python -m minigen prior runs/vq-vae/checkpoint.npz --epochs 2
  python -m minigen sample runs/vq-vae/checkpoint.npz --out vq-vae.png   # from its prior
"""


def positive_int(text):
    """argparse type: an integer >= 1 (argparse names the flag in its message)."""
    return _int_at_least(text, 1, "a positive integer")


def nonnegative_int(text):
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def _int_at_least(text, low, what):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def sample_count(text):
    """argparse type for --n: 1 to MAX_SAMPLES."""
    value = positive_int(text)
    if value > MAX_SAMPLES:
        raise argparse.ArgumentTypeError(f"at most {MAX_SAMPLES:,} samples, got {text!r}")
    return value


def parse(argv):
    parser = argparse.ArgumentParser(
        prog="python -m minigen",
        description="Train minigen's reference generative models and sample from them.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)  # the options every command takes
    common.add_argument(
        "--backend", choices=backend.NAMES, default=None, help="numpy (default), cupy or strict"
    )
    common.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")

    train = commands.add_parser(
        "train",
        parents=[common],
        help="train a model on Fashion-MNIST, checkpointing every epoch",
        description="Train a reference model; a checkpoint is written to OUT after every epoch.",
    )
    train.add_argument("model", choices=list(MODELS), metavar="MODEL", help=", ".join(MODELS))
    train.add_argument(
        "--epochs", type=positive_int, default=5, help="total epochs to reach (default 5)"
    )
    train.add_argument(
        "--out",
        default=None,
        help="folder for checkpoint.npz and samples (default runs/MODEL, or CKPT's folder "
        "with --resume)",
    )
    train.add_argument(
        "--resume", default=None, metavar="CKPT", help="continue from this checkpoint"
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a checkpoint already in OUT (otherwise a fresh run refuses to)",
    )
    train.add_argument(
        "--dataset",
        choices=list(CLASSES),
        default="fashion-mnist",
        help="fashion-mnist (default) or mnist",
    )

    sample = commands.add_parser(
        "sample",
        parents=[common],
        help="draw samples from a checkpoint into a PNG grid or a .npy file",
        description="Draw N samples from a trained model. OUT ending in .npy saves the images "
        "as a float32 array (N, 28, 28) in [0, 1]; anything else saves a PNG grid.",
    )
    sample.add_argument("checkpoint", metavar="CKPT", help="a checkpoint.npz written by 'train'")
    sample.add_argument("--n", type=sample_count, default=64, help="number of samples (default 64)")
    sample.add_argument(
        "--out", default="samples.png", help="output .png or .npy (default samples.png)"
    )

    prior = commands.add_parser(
        "prior",
        parents=[common],
        help="fit a PixelCNN prior to a trained VQ-VAE, so that 'sample' draws from it",
        description="Fit a PixelCNN prior (minigen/models/prior.py) on the code grids of the "
        "training images of a vq-vae checkpoint, and store it in that checkpoint: 'sample' then "
        "decodes code grids drawn from the prior instead of uniformly random ones. Training the "
        "VQ-VAE further (--resume) drops the prior, since its codes change.",
    )
    prior.add_argument("checkpoint", metavar="CKPT", help="a vq-vae checkpoint.npz from 'train'")
    prior.add_argument(
        "--epochs", type=positive_int, default=2, help="epochs over the code grids (default 2)"
    )
    prior.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a prior the checkpoint already holds (otherwise this refuses to)",
    )
    prior.add_argument(
        "--dataset",
        choices=list(CLASSES),
        default="fashion-mnist",
        help="the VQ-VAE's training data: fashion-mnist (default) or mnist",
    )
    return parser.parse_args(argv)


def run_train(args):
    from minigen import plots, train

    if args.out:
        out = Path(args.out)
    else:
        out = Path(args.resume).parent if args.resume else Path(f"runs/{args.model}")
    epochs_run = []
    model, _, history = train.train(
        args.model,
        args.epochs,
        dataset=args.dataset,
        seed=args.seed,
        out=out,
        resume=args.resume,
        overwrite=args.overwrite,
        on_epoch_end=lambda model, epoch, history: epochs_run.append(epoch),
    )
    if not epochs_run:  # resumed at an epoch already reached: train said so, nothing written
        return
    print(f"checkpoint: {out / train.CHECKPOINT} (epoch {epochs_run[-1] + 1})")
    print("losses: " + ", ".join(f"{k} {v[-1]:.4g}" for k, v in history.items()))
    plots.loss_curves(history, out / "losses.png", title=args.model)
    grid = plots.image_grid(sample_images(model, 64), out / "samples.png", value_range=(0, 1))
    print(f"samples: {grid}")


def run_sample(args):
    from minigen import plots, train

    backend.manual_seed(args.seed)
    model, _, meta = train.load(args.checkpoint)
    if getattr(model, "prior", None) is not None:
        print("drawing code grids from the checkpoint's PixelCNN prior")
    images = sample_images(model, args.n)
    if not backend.host.isfinite(images).all():
        raise train.DivergenceError(
            f"{args.checkpoint}: the {meta['model']} made NaN or infinite pixels, so nothing "
            "was written. Use an earlier checkpoint or train again."
        )
    out = Path(args.out)
    if out.suffix == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        backend.host.save(out, images[:, 0], allow_pickle=False)
    else:
        plots.image_grid(
            images, out, value_range=(0, 1), title=f"{meta['model']}, epoch {meta['epoch']}"
        )
    print(f"wrote {args.n} samples of {meta['model']} to {out}")


def run_prior(args):
    from minigen import checkpoint, data, plots, train
    from minigen.models import fit_prior

    model, optimizers, meta = train.load(args.checkpoint)
    if meta["model"] != "vq-vae":
        raise checkpoint.CheckpointError(
            f"{args.checkpoint} holds model {meta['model']!r}; only a vq-vae has a prior to fit "
            "(the other models sample on their own)."
        )
    if model.prior is not None and not args.overwrite:
        raise checkpoint.CheckpointError(
            f"{args.checkpoint} already holds a prior; replace it with --overwrite, or sample "
            "with it as it is."
        )
    src = data.locate(args.dataset, split="train")
    images, _ = data.read(src)
    print(f"data: {len(images):,} {src.describe()}")
    print(f"fitting a PixelCNN prior on their code grids for {args.epochs} epoch(s) ...")
    backend.manual_seed(args.seed)
    _, losses = fit_prior(model, images, args.epochs)
    print("prior loss per epoch (nats per position; uniform codes: log K): " + ", ".join(
        f"{v:.3f}" for v in losses
    ))  # fmt: skip
    # the VQ-VAE's own RNG state goes back in, so --resume continues as if no prior was fitted
    backend.set_rng_state(meta["rng"])
    path = train.save(
        args.checkpoint, model, optimizers, meta["epoch"], meta["history"], meta["seed"],
        meta.get("stopped"),
    )  # fmt: skip
    print(f"checkpoint: {path} now holds the prior (sample uses it)")
    backend.manual_seed(args.seed)
    grid = plots.image_grid(
        sample_images(model, 64), Path(path).parent / "prior_samples.png", value_range=(0, 1)
    )
    print(f"samples: {grid}")


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        if args.backend:
            backend.use_backend(args.backend)
        {"train": run_train, "sample": run_sample, "prior": run_prior}[args.command](args)
    except (MinigenError, OSError, ValueError) as e:
        message = " ".join(str(e).split())  # always one line
        print(f"minigen: error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
