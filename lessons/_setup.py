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

# scripts draw to files only; in a notebook plots.save_figure (and every minigen.plots figure)
# also shows each figure inline, in the cell that saves it
if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")

import minigen  # noqa: E402
from minigen import data  # noqa: E402
from minigen.argtypes import nonnegative_int, positive_int  # noqa: E402
from minigen.errors import MinigenError  # noqa: E402

QUICK_TRAIN, QUICK_TEST = 512, 256


def parse_options(parser):
    """``parser.parse_args()``, for a script and for a Jupyter kernel alike.

    A kernel was started with its own arguments (``-f kernel-1234.json``): inside one, those the
    parser does not know are ignored; outside one they are an error, as usual. A notebook has no
    command line, so ``MINIGEN_QUICK=1`` in the environment also selects ``--quick``.
    """
    quick = os.environ.get("MINIGEN_QUICK", "").strip()
    if quick not in ("", "0", "1"):  # one line and exit status 2, as a bad flag
        parser.error(
            f"MINIGEN_QUICK is {quick!r}; set it to 1 for a quick run, or to 0 or nothing for a full one"
        )
    args, unknown = parser.parse_known_args()
    if unknown and "ipykernel" not in sys.modules:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.quick = args.quick or quick == "1"
    return args


def relative_gap(a, b):
    """max |a - b| / max |b| over the arrays of two dicts with the same keys: how far
    a step written in a lesson lands from the library's (lessons 03-08)."""
    return max(
        float(abs(minigen.to_numpy(a[k]) - minigen.to_numpy(b[k])).max())
        / float(abs(minigen.to_numpy(b[k])).max())
        for k in b
    )


def against_full_runs(value, full_runs, quick, fmt=".1f"):
    """How one trained number of this run compares with full runs over several seeds.

    ``full_runs`` are what full runs (default options, full data) printed for seeds 0, 1, 2.
    A trained number moves from seed to seed, and from one CPU or BLAS to another (float sums
    round differently and training amplifies it), so a single run's digits are no fact to
    match; the spread is. Returns, for example,
    ``"a full run: 98.3 (91.0-104.2 over 3 seeds); this run is inside"``, or outside, which
    three seeds allow more often than a true spread would. A quick run trains
    on a slice, and a value that could not be computed (NaN) has nothing to place, so both
    are only shown the spread.
    """
    lo, hi = f"{min(full_runs):{fmt}}", f"{max(full_runs):{fmt}}"
    span = f"{lo} to {hi}" if lo[0] in "+-" else f"{lo}-{hi}"  # not "-0.80--0.67"
    text = f"a full run: {full_runs[0]:{fmt}} ({span} over {len(full_runs)} seeds)"
    if quick or value != value:  # NaN != NaN
        return text
    # compared as printed, so 98.30 and 98.3 agree
    if float(lo) <= float(f"{value:{fmt}}") <= float(hi):
        return f"{text}; this run is inside"
    return f"{text}; this run is outside it (three seeds only sketch the spread)"


def check_vae_step(reference, encoder, decoder, vae_losses, x, latent, lr=1e-3):
    """One training step of the VAE a lesson writes (``encoder``, ``decoder`` and
    ``vae_losses(x, eps)``) against the library's ``reference.train_step`` (lessons 05, 06).

    Both start from the reference's weights, take the batch ``x`` and the same
    noise (eps (N, ``latent``) drawn after the same seed; the library draws it
    with ``backend.randn`` too) and one Adam step of rate ``lr``. Prints the
    losses side by side and the largest relative differences of losses and
    gradients, which must be float32 rounding (< 1e-5), and the largest
    difference of Adam's updates as a share of ``lr``: its first step moves
    each weight by about +-lr whatever the gradient's size, so a rounding-level
    difference in a gradient near zero shows there.
    """
    encoder.load_state_dict(reference.encoder.state_dict())
    decoder.load_state_dict(reference.decoder.net.state_dict())
    ours = {**dict(encoder.named_parameters()), **dict(decoder.named_parameters())}
    theirs = {
        **dict(reference.encoder.named_parameters()),
        **dict(reference.decoder.net.named_parameters()),
    }
    opt = minigen.optim.Adam(list(ours.values()), lr=lr)
    minigen.manual_seed(123)
    eps = minigen.backend.randn(x.shape[0], latent)
    opt.zero_grad()
    our_losses = vae_losses(x, eps)
    our_losses["loss"].backward()
    opt.step()
    minigen.manual_seed(123)
    their_losses = reference.train_step(x, reference.make_optimizers())

    for key in ("loss", "rec", "kl"):
        print(f"{key:4s}  ours {our_losses[key].item():10.4f}   library {their_losses[key]:10.4f}")
    loss_gap = relative_gap(
        {k: v.data for k, v in our_losses.items()},
        {k: minigen.backend.xp().asarray(v) for k, v in their_losses.items()},
    )
    grad_gap = relative_gap(
        {k: p.grad for k, p in ours.items()}, {k: p.grad for k, p in theirs.items()}
    )
    step_gap = (
        max(float(abs(minigen.to_numpy(ours[k].data - theirs[k].data)).max()) for k in ours) / lr
    )  # both moved from the same weights: the difference of the two updates
    print(f"losses: largest relative difference {loss_gap:.1e}")
    print(f"gradients: largest relative difference {grad_gap:.1e}")
    print(f"Adam's updates: largest difference {step_gap:.1e} of the step size lr = {lr:g}")
    assert max(loss_gap, grad_gap) < 1e-5, "the step written here differs from the library's"


def start_lesson(name, args):
    """Switch to ``args.backend`` (when given) and create ``args.out``; return the folder.

    A minigen error (an unknown backend, no usable GPU) or a folder that cannot be made ends the
    lesson with one line naming it and exit status 1, not a traceback.
    """
    try:
        if args.backend:
            minigen.use_backend(args.backend)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
    except (MinigenError, OSError) as e:
        sys.exit(f"{name}: error: {' '.join(str(e).split())}")
    return out


def setup(name, description, epochs, add_options=None):
    """Parse the lesson's options; return (args, out_dir, train_images, test_images, test_labels).

    ``add_options(parser)``, when given, adds the lesson's own flags (an ablation's
    setting, say) to the common ones.

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
    if add_options is not None:
        add_options(parser)
    args = parse_options(parser)
    if args.epochs is None:
        args.epochs = 1 if args.quick else epochs
    if args.quick:
        print("--quick: a smoke test on a small slice; its numbers mean nothing.")
    out = start_lesson(name, args)
    try:
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
