"""Command line: train a reference model, or draw samples from a checkpoint.

python -m minigen train MODEL --epochs 5 --out runs/MODEL
python -m minigen train MODEL --help          # MODEL's own options, as flags (--lr ...)
python -m minigen train MODEL --epochs 10 --resume runs/MODEL/checkpoint.npz
python -m minigen sample runs/MODEL/checkpoint.npz --n 64 --out samples.png
python -m minigen PART runs/MODEL/checkpoint.npz   # fit an optional part (a prior)

Nothing here knows a model: the models, their options (flags of ``train
MODEL``, from each model's ``Option`` declarations) and their optional parts
(one command each) all come from ``minigen.models.MODELS``.

Every minigen error (a bad checkpoint, missing data, an unavailable backend,
divergence, ...) ends the command with one line on stderr and exit status 1;
a bad flag is reported by argparse, naming the flag, with exit status 2.
Ctrl-C ends it with one line saying what the checkpoint holds and how to go
on, and exit status 130 (128 + SIGINT, as a shell reports it).
"""

import argparse
import sys
import textwrap
from pathlib import Path

from minigen import backend, distributed
from minigen.argtypes import nonnegative_int, option_value, path, positive_int
from minigen.data import CLASSES
from minigen.errors import MinigenError
from minigen.models import MODELS, flags, sample_images

MAX_SAMPLES = 10_000  # more would be a grid nobody can read, or gigabytes of .npy


def sample_count(text):
    """argparse type for --n: 1 to MAX_SAMPLES."""
    value = positive_int(text)
    if value > MAX_SAMPLES:
        raise argparse.ArgumentTypeError(f"at most {MAX_SAMPLES:,} samples, got {text!r}")
    return value


def parts():
    """{command: (Part, [names of the models that have it])}: the optional parts of
    the registered models, each fitted by a command of its name."""
    found = {}
    for name, (cls, _) in MODELS.items():
        for part in cls.parts:
            found.setdefault(part.name, (part, []))[1].append(name)
    return found


# ----------------------------------------------------------------------- parsing


def parse(argv):
    """The command line as an argparse Namespace; ``args.command`` names the command."""
    first = list(MODELS)[0]
    parser = argparse.ArgumentParser(
        prog="python -m minigen",
        description="Train minigen's reference generative models and sample from them.",
        epilog=examples(first),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common, writes = shared_flags()
    add_train(commands, [common, writes])
    add_sample(commands, [common])
    for part, owners in parts().values():
        add_part(commands, [common, writes], part, owners)
    return parser.parse_args(argv)


def examples(model):
    """The help's examples, with ``model`` and each optional part's first owner."""
    lines = [
        f"python -m minigen train {model} --epochs 5 --out runs/{model}",
        f"python -m minigen train {model} --help    # its options, as flags",
        f"python -m minigen train {model} --epochs 8 --resume runs/{model}/checkpoint.npz",
        f"python -m minigen sample runs/{model}/checkpoint.npz --n 64 --out {model}.png",
    ]
    for part, owners in parts().values():
        ckpt = f"runs/{owners[0]}/checkpoint.npz"
        lines.append(f"python -m minigen {part.name} {ckpt} --epochs {part.epochs}")
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def shared_flags():
    """Parent parsers: ``common`` (every command) and ``writes`` (the commands that
    write a checkpoint: what data it learns from, and whether it may replace)."""
    common = argparse.ArgumentParser(prog="", add_help=False)
    common.add_argument(
        "--backend", choices=backend.NAMES, default=None, help="numpy (default), cupy or strict"
    )
    common.add_argument(
        "--seed",
        type=nonnegative_int,
        default=None,
        help="random seed (default 0; a resumed run goes on with its checkpoint's)",
    )
    writes = argparse.ArgumentParser(prog="", add_help=False)
    writes.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what is already there (a checkpoint in OUT, a part the checkpoint holds); "
        "otherwise the command refuses to",
    )
    writes.add_argument(
        "--dataset",
        choices=list(CLASSES),
        default="fashion-mnist",
        help="the training data: fashion-mnist (default) or mnist",
    )
    return common, writes


def add_train(commands, parents):
    """``train MODEL``: one sub-command per model, with the run's flags and the model's."""
    run = argparse.ArgumentParser(prog="", add_help=False)  # the flags of a training run
    run.add_argument(
        "--epochs", type=positive_int, default=5, help="total epochs to reach (default 5)"
    )
    run.add_argument(
        "--out",
        type=path,
        default=None,
        help="folder for checkpoint.npz and samples (default runs/MODEL, or CKPT's folder "
        "with --resume)",
    )
    run.add_argument(
        "--resume", type=path, default=None, metavar="CKPT", help="continue from this checkpoint"
    )
    every = " ".join(p.format_usage().split(":", 1)[1].strip() for p in [*parents, run])
    every = textwrap.fill(f"every MODEL takes {every}, and its own options:", 78)
    train = commands.add_parser(
        "train",
        help="train a model on Fashion-MNIST, checkpointing every epoch",
        description="Train a reference model; a checkpoint is written to OUT after every epoch.",
        epilog=f"{every}\n  python -m minigen train MODEL --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    models = train.add_subparsers(dest="model", required=True, metavar="MODEL", title="models")
    set_by_parts = {key for part, _ in parts().values() for key in part.options}
    for name, (cls, fixed) in MODELS.items():
        sub = models.add_parser(
            name,
            parents=[*parents, run],
            help=f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in fixed.items())})",
            description=f"Train {name}; a checkpoint is written to OUT after every epoch.",
        )
        options = sub.add_argument_group(
            f"{name} options (declared in {cls.__module__.replace('.', '/')}.py; a resumed run "
            "keeps the checkpoint's)"
        )
        for key, option in flags(name).items():
            if key not in set_by_parts:  # those are the flags of the part's own command
                add_option(options, key, option)


def add_option(group, key, option):
    """Offer a model option as a flag, from its declaration: --latent-dim N, checked;
    absent unless given (the model's default applies)."""
    flag = "--" + key.replace("_", "-")
    default = "None" if option.default is None else option.default
    text = f"{option.help}; {option.describe()} (default {default})"
    if option.kind is bool:
        group.add_argument(
            flag, dest=key, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
            help=text,
        )  # fmt: skip
        return
    group.add_argument(
        flag, dest=key, type=option_value(option), nargs=option.size, metavar=key.upper(),
        default=argparse.SUPPRESS, help=text,
    )  # fmt: skip


def add_sample(commands, parents):
    sample = commands.add_parser(
        "sample",
        parents=parents,
        help="draw samples from a checkpoint into a PNG grid or a .npy file",
        description="Draw N samples from a trained model. OUT ending in .npy saves the images "
        "as a float32 array (N, 28, 28) in [0, 1], OUT ending in .png a grid (either suffix in "
        "any case); other names, and a checkpoint, are refused.",
    )
    sample.add_argument("checkpoint", metavar="CKPT", help="a checkpoint.npz written by 'train'")
    sample.add_argument("--n", type=sample_count, default=64, help="number of samples (default 64)")
    sample.add_argument(
        "--out", type=path, default="samples.png", help="output .png or .npy (default samples.png)"
    )


def add_part(commands, parents, part, owners):
    """The command that fits ``part`` (a ``Part``) into a checkpoint of one of ``owners``."""
    command = commands.add_parser(
        part.name, parents=parents, help=part.help, description=part.description
    )
    command.add_argument(
        "checkpoint", metavar="CKPT", help=f"a {' or '.join(owners)} checkpoint.npz from 'train'"
    )
    command.add_argument(
        "--epochs",
        type=positive_int,
        default=part.epochs,
        help=f"epochs over the training data (default {part.epochs})",
    )
    declared = flags(owners[0])
    for key in part.options:
        add_option(command, key, declared[key])


# ----------------------------------------------------------------------- commands


def train_out(args):
    """The folder ``train`` writes to: --out, else the resumed checkpoint's, else runs/MODEL."""
    if args.out is not None:
        return Path(args.out)
    return Path(args.resume).parent if args.resume else Path(f"runs/{args.model}")


def run_train(args):
    from minigen import checkpoint

    if args.resume is not None:  # before a folder is made for it
        checkpoint.existing(args.resume)
    # the plots too: nobody writes there meanwhile (of N data-parallel processes, rank 0 writes)
    with checkpoint.lock(train_out(args) if distributed.world().is_main else None):
        train_and_plot(args)


def train_and_plot(args):
    from minigen import plots, train

    out = train_out(args)
    options = {key: getattr(args, key) for key in flags(args.model) if hasattr(args, key)}
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
        **options,
    )
    if not distributed.world().is_main:  # rank 0 alone writes and prints
        return
    if not epochs_run:  # resumed at an epoch already reached: train said so, nothing written
        return
    print(f"checkpoint: {out / train.CHECKPOINT} (epoch {epochs_run[-1] + 1})")
    print("losses: " + ", ".join(f"{k} {v[-1]:.4g}" for k, v in history.items()))
    plots.loss_curves(history, out / "losses.png", title=args.model)
    grid = plots.image_grid(sample_images(model, 64), out / "samples.png", value_range=(0, 1))
    print(f"samples: {grid}")


def sample_out(args):
    """--out, checked before anything is read: .png or .npy, never a checkpoint."""
    out = Path(args.out)
    if out.is_file():
        with open(out, "rb") as f:
            archive = f.read(4) == b"PK\x03\x04"  # an .npz (a zip): a checkpoint, maybe renamed
        if archive or out.resolve() == Path(args.checkpoint).resolve():
            raise ValueError(
                f"--out {out} is a checkpoint, which sampling would replace; pick another --out"
            )
    if out.suffix.lower() not in (".png", ".npy"):
        raise ValueError(
            f"--out {out}: sample writes a PNG grid (.png) or an array (.npy), not "
            f"{out.suffix or 'a name without a suffix'}; pick a name ending in .png or .npy"
        )
    return out


def run_sample(args):
    from minigen import plots, train

    out = sample_out(args)
    backend.manual_seed(args.seed or 0)
    model, _, meta = train.load(args.checkpoint)
    for part in model.parts:
        if model.has_part(part.name):
            print(part.uses)
    images = sample_images(model, args.n)
    if not backend.host.isfinite(images).all():
        raise train.DivergenceError(
            f"{args.checkpoint}: the {meta['model']} made NaN or infinite pixels, so nothing "
            "was written. Use an earlier checkpoint or train again."
        )
    if out.suffix.lower() == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as f:  # a file object: np.save would append .npy to x.NPY
            backend.host.save(f, images[:, 0], allow_pickle=False)
    else:
        plots.image_grid(
            images, out, value_range=(0, 1), title=f"{meta['model']}, epoch {meta['epoch']}"
        )
    print(f"wrote {args.n} samples of {meta['model']} to {out}")


def run_part(args):
    """Fit the optional part ``args.command`` into the checkpoint, then sample with it."""
    from minigen import checkpoint

    with checkpoint.lock(checkpoint.existing(args.checkpoint).parent):
        fit_and_plot(args)


def fit_and_plot(args):
    from minigen import plots, train

    part, _ = parts()[args.command]
    options = {key: getattr(args, key) for key in part.options if hasattr(args, key)}
    model, losses = train.fit_part(
        args.checkpoint,
        part.name,
        args.epochs,
        dataset=args.dataset,
        seed=args.seed or 0,
        overwrite=args.overwrite,
        **options,
    )
    print(f"{part.losses}: " + ", ".join(f"{v:.3f}" for v in losses))
    print(f"checkpoint: {args.checkpoint} now holds the {part.name} (sample uses it)")
    backend.manual_seed(args.seed or 0)
    out = Path(args.checkpoint).parent / f"{part.name}_samples.png"
    grid = plots.image_grid(sample_images(model, 64), out, value_range=(0, 1))
    print(f"samples: {grid}")


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        if args.backend:
            backend.use_backend(args.backend)
        if args.command != "train" and distributed.world().size > 1:
            raise distributed.DistributedError(
                f"only train runs data-parallel; run {args.command} as one process, without mpiexec"
            )
        {"train": run_train, "sample": run_sample}.get(args.command, run_part)(args)
    except (MinigenError, OSError, ValueError) as e:
        message = " ".join(str(e).split())  # always one line
        print(f"minigen: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: what is on disk, and how to go on
        end_bar = "\n" if sys.stderr.isatty() else ""  # a progress bar may hold the line
        print(f"{end_bar}minigen: interrupted. {interrupted(args)}", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports it
    return 0


def interrupted(args):
    """What an interrupted command left on disk, and how to go on, in a sentence or two.
    Read from the file itself: checkpoints are written atomically, so it is whole."""
    from minigen import train

    if args.command == "sample":
        return f"{args.out} may be missing or incomplete; run the command again."
    ckpt = Path(args.checkpoint) if args.command != "train" else train_out(args) / train.CHECKPOINT
    try:
        model, _, meta = train.load(ckpt)
    except MinigenError:
        return f"No checkpoint was written to {ckpt}."
    data = "" if args.dataset == "fashion-mnist" else f" --dataset {args.dataset}"
    if args.command == "train":
        return (
            f"{ckpt} holds epoch {meta['epoch']} of {meta['model']}; continue with: "
            f"python -m minigen train {meta['model']} --resume {ckpt} --epochs {args.epochs}{data}"
        )
    has = model.has_part(args.command)
    return (
        f"{ckpt} holds epoch {meta['epoch']} of {meta['model']}, {'with' if has else 'without'} "
        f"a {args.command}; fit it with: python -m minigen {args.command} {ckpt}{data}"
        + (" --overwrite" if has else "")
    )


if __name__ == "__main__":
    sys.exit(distributed.exit_status(main()))
