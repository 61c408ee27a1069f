"""Training a model over epochs, with checkpoints and exact resume.

Each model family defines what one step means (``model.train_step(x,
optimizers)`` in minigen/models/); ``train`` runs the steps over epochs with
the loop every training shares (minigen/loop.py):

    for epoch:                        # data order fixed by (seed, epoch)
        for x in batches:             # float32 on the current backend
            losses = model.train_step(x, optimizers)
        save a checkpoint             # model, optimizers, RNG, history

A checkpoint holds everything the next epoch depends on, so resuming from
epoch k gives bit-for-bit the parameters of a run that never stopped (on the
same backend). Resuming asks the model what training would make stale
(``on_resume``: a part fitted on what training will move is dropped).

Nothing is lost: a fresh run refuses to replace a checkpoint it did not
write (``overwrite=True`` to allow it), the output folder is checked before
the first step, and a loss that becomes NaN or infinite stops training at
once with ``DivergenceError``. No checkpoint holding NaN or inf is ever
written or loaded. One writer per folder: ``train`` and ``fit_part`` hold
its lock (``checkpoint.lock``) while they run, so a second run into the same
folder is refused, naming the process that writes there.

``fit_part`` fits an optional part of a model (one of its ``parts``) into a
checkpoint after training; the command line calls it.
"""

import math
import numbers
import tempfile
from pathlib import Path

from minigen import backend, checkpoint, data, distributed, loop
from minigen.loop import DivergenceError
from minigen.models import MAX_SIZE, MODELS, build, check_options

CHECKPOINT = "checkpoint.npz"
# what load() needs from a checkpoint, as "/"-paths into its tree
SECTIONS = (
    "meta/model",
    "meta/options",
    "meta/epoch",
    "meta/seed",
    "meta/history",
    "meta/rng",
    "model",
    "optim",
)


def train(
    name,
    epochs,
    *,
    dataset="fashion-mnist",
    seed=None,
    out=None,
    resume=None,
    images=None,
    on_epoch_end=None,
    quiet=False,
    overwrite=False,
    max_seconds=None,
    **options,
):
    """Train model ``name`` (see ``minigen.models.MODELS``, or a model instance) for
    ``epochs`` epochs; ``options`` are the model's (``build(name, **options)``).

    ``images`` (host uint8 (N, 28, 28)) overrides the dataset, e.g. a small
    slice for a quick run. ``out``: folder for ``checkpoint.npz`` after every
    epoch; a checkpoint already there is only replaced when it is ``resume``
    itself or ``overwrite`` is True. ``resume``: a checkpoint of model
    ``name`` to continue from (with its options and its random state: giving
    other options, or a ``seed``, is an error). ``seed``: of a fresh run (default 0).
    ``on_epoch_end(model, epoch, history)`` runs after each epoch. Returns
    (model, optimizers, history); history maps each loss to its per-step
    values. Raises DivergenceError when a loss becomes NaN or infinite.

    ``max_seconds``: a wall-clock budget for this call (equal compute for
    models compared side by side). Training ends after the step during which
    the budget runs out; that epoch then counts as the last one (its
    checkpoint is written and ``on_epoch_end`` runs), and the checkpoint's
    ``meta/stopped`` records {"epoch", "step", "max_seconds"}: where the
    budget stopped it. Resuming such a checkpoint goes on with the next epoch,
    so it is not bit-for-bit a run that was never stopped.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"train: epochs must be a positive integer, got {epochs!r}")
    budget = loop.Budget(max_seconds, "train")
    world = distributed.world()  # one process, or N under mpiexec; rank 0 writes and prints
    quiet = quiet or not world.is_main
    target = None if out is None else Path(out) / CHECKPOINT
    if resume is not None:  # before a folder is made for it: --resume with a typo makes none
        checkpoint.existing(resume)
    # one writer per folder, from before the checks until the last checkpoint is written
    with checkpoint.lock(target.parent if target is not None and world.is_main else None):
        model, optimizers, start, history, seed = _begin(name, seed, resume, options)
        world.attach(model, optimizers)
        if distributed.launched() and not quiet:
            print(world.describe(model.batch_size))
        if target is not None:  # before the data (maybe a download) and before the first step
            check_out(target, resume, overwrite)
        if start >= epochs:
            _nothing_to_do(model, resume, start, epochs, quiet)
            return model, optimizers, history
        images = training_images(dataset, quiet) if images is None else images
        images = _enough_images(model, images, world.size)

        def end_epoch(epoch, stopped):
            if target is not None and world.is_main:
                save(target, model, optimizers, epoch + 1, history, seed, stopped)
            world.barrier()  # no process goes on before the checkpoint is there
            if on_epoch_end is not None:
                on_epoch_end(model, epoch, history)

        loop.run(
            model, lambda x: world.average_losses(model.train_step(x, optimizers)),
            _batches(images, model, seed, world), epochs,
            name=model.name, start=start, history=history, budget=budget, end_epoch=end_epoch,
            advice=lambda epoch: f"{_kept(target, epoch)} Lower the learning rate or change the "
            "seed.",
            quiet=quiet,
        )  # fmt: skip
    return model, optimizers, history


def _batches(images, model, seed, world):
    """batches(epoch) for the loop: the epoch's shuffled batches of images (no labels),
    in the model's pixel scale, and how many there are. With N processes each gets
    its part of every global batch of N * model.batch_size."""
    size = model.batch_size * world.size

    def batches(epoch):
        world.seed(seed, epoch)  # ranks > 0: noise from (seed, epoch, rank), so resume is exact
        pairs = data.batches(
            images, batch_size=size, seed=seed, epoch=epoch, scale=model.scale,
            shard=(world.rank, world.size),
        )  # fmt: skip
        total = data.num_batches(len(images), size, drop_last=True)
        return (x for x, _ in pairs), total

    return batches


def _nothing_to_do(model, resume, start, epochs, quiet):
    if not quiet:
        print(
            f"{model.name}: {resume} is already at epoch {start}, and {epochs} epoch(s) were "
            "asked for: nothing to do. Ask for more epochs to train further."
        )


def _begin(name, seed, resume, options):
    """(model, optimizers, first epoch, history, seed): a fresh model, or one resumed."""
    if resume is None:
        seed = 0 if seed is None else seed
        backend.manual_seed(seed)
        model = build(name, **options) if isinstance(name, str) else name
        return model, model.make_optimizers(), 0, {}, seed
    if options:
        raise ValueError(
            f"train: a resumed run keeps the options of {resume}, so "
            f"{', '.join(options)} cannot be given; train afresh to change them"
        )
    if seed is not None:
        raise ValueError(
            f"train: a resumed run goes on with the random state saved in {resume}, so a seed "
            f"({seed!r}) cannot be given; leave it out, or train afresh with that seed"
        )
    model, optimizers, meta = load(resume, name)
    note = model.on_resume(resume, meta["epoch"])  # what the model drops, if anything
    if note:
        print(note)
    return model, optimizers, meta["epoch"], meta["history"], meta["seed"]


def training_images(dataset, quiet=False):
    """The training split of ``dataset`` (host uint8 (N, 28, 28)), saying where from."""
    src = data.locate(dataset, split="train")
    images, _ = data.read(src)
    if not quiet:
        print(f"data: {len(images):,} {src.describe()}")
    return images


def _enough_images(model, images, processes=1):
    need = model.batch_size * processes
    if len(images) < need:
        raise data.DataError(
            f"{model.name} trains on batches of {need} images"
            + (f" ({processes} processes x {model.batch_size})" if processes > 1 else "")
            + f", but only {len(images)} were given: not one step. Pass at least {need} images."
        )
    return images


def fit_part(
    path, part, epochs, *, dataset="fashion-mnist", seed=0, overwrite=False, images=None,
    quiet=False, **options,
):  # fmt: skip
    """Fit the optional part ``part`` of the model in checkpoint ``path`` (one of its
    ``parts``) on the training images, and write it into
    that checkpoint. Returns (model, the part's loss per epoch).

    The rest of the checkpoint stays as it was, its RNG state included, so
    ``--resume`` goes on as if no part had been fitted. ``options``: the
    model options that size the part (its ``Part.options``). A part already
    there is only replaced with ``overwrite``.
    """
    with checkpoint.lock(checkpoint.existing(path).parent):  # no run may write there meanwhile
        return _fit_part(path, part, epochs, dataset, seed, overwrite, images, quiet, options)


def _fit_part(path, part, epochs, dataset, seed, overwrite, images, quiet, options):
    model, optimizers, meta = load(path)
    if part not in {p.name for p in model.parts}:
        owners = [n for n, (cls, _) in MODELS.items() if part in {p.name for p in cls.parts}]
        raise checkpoint.CheckpointError(
            f"{path} holds model {meta['model']!r}; only a {' or a '.join(owners)} has a {part} "
            "to fit (the other models sample on their own)."
        )
    if model.has_part(part) and not overwrite:
        raise checkpoint.CheckpointError(
            f"{path} already holds a {part}; replace it with --overwrite (overwrite=True), or "
            "sample with it as it is."
        )
    images = training_images(dataset, quiet) if images is None else images
    if not quiet:
        print(f"fitting the {part} on them for {epochs} epoch(s) ...")
    backend.manual_seed(seed)
    losses = model.fit_part(part, images, epochs, quiet=quiet, **options)
    resave(path, model, optimizers, meta)
    return model, losses


def _kept(target, epoch):
    """What a failed epoch left on disk, for the error message."""
    if target is None:
        return "No checkpoint was written."
    if epoch == 0 or not target.is_file():
        return f"No checkpoint was written to {target}."
    return f"Nothing was written: {target} still holds epoch {epoch}."


def check_out(target, resume=None, overwrite=False):
    """Refuse to replace a checkpoint by a fresh run; check the folder is writable.

    Replacing ``target`` is fine when it is the ``resume`` checkpoint itself
    (training goes on from it) or when ``overwrite`` is True.
    """
    continuing = resume is not None and Path(resume).resolve() == target.resolve()
    if target.exists() and not (continuing or overwrite):
        raise checkpoint.CheckpointError(
            f"{target} already exists and this run would replace it. Continue it with "
            f"--resume {target} (resume=), keep it by picking another --out, or replace it "
            "with --overwrite (overwrite=True)."
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target.parent):
            pass
    except OSError as e:
        raise checkpoint.CheckpointError(
            f"cannot write checkpoints to {target.parent} ({e.strerror or e}). Pick another "
            "--out (out=), a folder you can write."
        ) from e


def resave(path, model, optimizers, meta):
    """Write ``model`` and ``optimizers`` to ``path`` with the training state of
    ``meta`` (a checkpoint's, from ``load``): epoch, seed, history, where a budget
    stopped, and the RNG state as it was then."""
    fields = [meta[key] for key in ("epoch", "history", "seed")]
    return save(path, model, optimizers, *fields, meta.get("stopped"), rng=meta["rng"])


def save(path, model, optimizers, epoch, history, seed, stopped=None, *, rng=None):
    """Write model, optimizer and RNG state, history and options, atomically.

    ``stopped``: where a time budget ended training (``train``'s
    ``max_seconds``), kept as ``meta/stopped``; None for a whole epoch.
    ``rng``: the random generator's state to record; None for the current one.

    Refuses (DivergenceError) to write weights or optimizer state that hold
    NaN or inf, so a diverged run never replaces the last good checkpoint.
    """
    state = model.state_dict()
    optim_state = {key: opt.state_dict() for key, opt in optimizers.items()}
    arrays = [a for a in state.values() if a.dtype.kind == "f"]
    arrays += [a for sd in optim_state.values() for a in sd.values() if backend.is_array(a)]
    xp = backend.xp()
    finite = xp.asarray(True)
    for a in arrays:
        finite = finite & xp.isfinite(a).all()
    if not bool(backend.to_numpy(finite)):  # one sync per checkpoint
        raise DivergenceError(
            f"{model.name}: after epoch {epoch} some weights or optimizer state are NaN or "
            f"infinite, so {path} was not written. {_kept(Path(path), epoch - 1)} Lower the "
            "learning rate or change the seed."
        )
    meta = {
        "model": model.name,
        "options": model.options,
        "epoch": epoch,
        "seed": seed,
        "history": history,
        "rng": backend.get_rng_state() if rng is None else rng,
    }
    if stopped is not None:
        meta["stopped"] = stopped
    return checkpoint.save(path, {"meta": meta, "model": state, "optim": optim_state})


def load(path, name=None):
    """Rebuild (model, optimizers, meta) from a checkpoint and restore the RNG.

    ``name``, when given, must match the checkpoint's model. Everything is
    checked before it is used (CheckpointError naming the entry otherwise):
    every section is there, epoch, seed and options have the right types and
    ranges, and the weights and optimizer state are finite numbers.
    """
    tree = checkpoint.load(path)
    meta = check_meta(path, tree, name)
    model_name, options = meta["model"], meta["options"]
    check_arrays(path, tree)
    try:
        model = build(model_name, **options)
    except (TypeError, ValueError, MemoryError) as e:
        raise checkpoint.CheckpointError(
            f"{path}: meta/options {options} do not build a {model_name} ({e}). The "
            "checkpoint was edited or written by another version of minigen."
        ) from e
    try:
        model.load_state_dict(tree["model"])
        optimizers = model.make_optimizers()
        missing = [key for key in optimizers if key not in tree["optim"]]
        if missing:
            raise ValueError(f"optim/{missing[0]} is missing")
        for key, opt in optimizers.items():
            opt.load_state_dict(tree["optim"][key])
    except (TypeError, ValueError) as e:  # StateDictError is a ValueError
        raise checkpoint.CheckpointError(
            f"{path}: the saved state does not fit a {model_name} built with its options: {e}"
        ) from e
    try:
        backend.set_rng_state(meta["rng"])
    except (TypeError, ValueError, KeyError) as e:
        raise checkpoint.CheckpointError(
            f"{path}: meta/rng is not the state of a NumPy random generator ({e})"
        ) from e
    return model, optimizers, meta


def check_meta(path, tree, name=None):
    """The checkpoint's meta section, after checking every entry load() uses."""

    def fail(what):
        raise checkpoint.CheckpointError(f"{path}: {what}")

    for section in SECTIONS:
        node = tree
        for part in section.split("/"):
            if not isinstance(node, dict) or part not in node:
                fail(
                    f"{section} is missing, so this is not a complete minigen training "
                    "checkpoint (it was edited, or written by something else). Use a "
                    "checkpoint.npz that `python -m minigen train` wrote."
                )
            node = node[part]
    meta = tree["meta"]
    model_name = meta["model"]
    if not isinstance(model_name, str) or model_name not in MODELS:
        fail(f"meta/model is {model_name!r}, not one of {', '.join(MODELS)}")
    if name is not None and model_name != name:
        fail(
            f"it holds a {model_name!r} model, not {name!r}. Resume it as {model_name!r}, "
            f"or train {name!r} afresh with another --out."
        )
    for key in ("epoch", "seed"):
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            fail(f"meta/{key} is {value!r}, not a non-negative integer")
    _check_options(path, model_name, meta["options"])
    history = meta["history"]
    if not isinstance(history, dict):
        fail(f"meta/history is a {type(history).__name__}, not a dict of loss lists")
    for key, losses in history.items():
        if not isinstance(losses, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in losses
        ):
            fail(f"meta/history/{key} is not a list of finite numbers (one loss per step)")
    if not isinstance(meta["rng"], dict):
        fail("meta/rng is not the state of a NumPy random generator")
    return meta


def _check_options(path, model_name, options):
    """meta/options: plain values first (so nothing huge is ever built), then the
    model's own declaration of each option."""
    if not isinstance(options, dict):
        raise checkpoint.CheckpointError(
            f"{path}: meta/options is {options!r}, not a dict of options"
        )
    for key, value in options.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, bool) or v is None or isinstance(v, str):
                continue
            if isinstance(v, int) and 0 <= v <= MAX_SIZE:
                continue
            if isinstance(v, float) and math.isfinite(v):
                continue
            raise checkpoint.CheckpointError(
                f"{path}: meta/options/{key} is {value!r}: options are strings, booleans, "
                f"finite numbers and integers up to {MAX_SIZE}"
            )
    try:  # against the model's declaration, before anything is built
        check_options(model_name, options)
    except (TypeError, ValueError) as e:
        raise checkpoint.CheckpointError(
            f"{path}: meta/options do not fit a {model_name}: {e}"
        ) from e


def check_arrays(path, tree):
    """Every weight and optimizer entry is a finite number or array of numbers."""

    def leaves(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from leaves(value, f"{prefix}{key}/")
            else:
                yield f"{prefix}{key}", value

    for section in ("model", "optim"):
        if not isinstance(tree[section], dict):
            raise checkpoint.CheckpointError(f"{path}: {section} is not a section of arrays")
        for name, value in leaves(tree[section], f"{section}/"):
            if hasattr(value, "dtype"):
                numeric = value.dtype.kind in "biuf"
                good = numeric and (value.dtype.kind != "f" or backend.host.isfinite(value).all())
                problem = "holds NaN or inf"
            else:  # a hyperparameter or step count, stored as JSON
                numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
                good = numeric and math.isfinite(value) and value >= 0
                problem = f"is {value!r}, not a finite number >= 0"
            if not numeric:
                raise checkpoint.CheckpointError(
                    f"{path}: {name} is {getattr(value, 'dtype', type(value).__name__)}, not "
                    "numbers. The checkpoint was edited or damaged; use another one."
                )
            if not good:
                raise checkpoint.CheckpointError(
                    f"{path}: {name} {problem}: it comes from training that diverged, or was "
                    "edited. Use an earlier checkpoint or train again."
                )
