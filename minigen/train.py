"""The training loop every model shares, with checkpoints and exact resume.

Each model family defines what one step means (``model.train_step(x,
optimizers)`` in minigen/models/); this module runs the steps over epochs:

    for epoch:                        # data order fixed by (seed, epoch)
        for x in batches:             # float32 on the current backend
            losses = model.train_step(x, optimizers)
        save a checkpoint             # model, optimizers, RNG, history

A checkpoint holds everything the next epoch depends on, so resuming from
epoch k gives bit-for-bit the parameters of a run that never stopped (on the
same backend).
"""

from pathlib import Path

from minigen import backend, checkpoint, data
from minigen.models import build
from minigen.progress import progress


def train(
    name,
    epochs,
    *,
    dataset="fashion-mnist",
    seed=0,
    out=None,
    resume=None,
    images=None,
    on_epoch_end=None,
    quiet=False,
    **options,
):
    """Train model ``name`` (see ``minigen.models.MODELS``, or a model instance) for
    ``epochs`` epochs.

    ``images`` (host uint8 (N, 28, 28)) overrides the dataset, e.g. a small
    slice for a quick run. ``out``: folder for ``checkpoint.npz`` after every
    epoch. ``resume``: a checkpoint to continue from (its model and options
    win). ``on_epoch_end(model, epoch, history)`` runs after each epoch.
    Returns (model, optimizers, history); history maps each loss to its
    per-step values.
    """
    if resume is not None:
        model, optimizers, state = load(resume)
        start, history, seed = state["epoch"], state["history"], state["seed"]
    else:
        backend.manual_seed(seed)
        model = build(name, **options) if isinstance(name, str) else name
        optimizers = model.make_optimizers()
        start, history = 0, {}
    if images is None:
        images, _ = data.load(dataset, split="train")

    for epoch in range(start, epochs):
        model.train()
        steps = data.batches(
            images, batch_size=model.batch_size, seed=seed, epoch=epoch, scale=model.scale
        )
        total = data.num_batches(len(images), model.batch_size, drop_last=True)
        desc = f"{model.name} epoch {epoch + 1}/{epochs}"
        bar = progress(steps, total=total, desc=desc, **({"disable": True} if quiet else {}))
        for x, _ in bar:
            losses = model.train_step(x, optimizers)
            for key, value in losses.items():
                history.setdefault(key, []).append(float(value))
            bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
        bar.close()
        if out is not None:
            save(Path(out) / "checkpoint.npz", model, optimizers, epoch + 1, history, seed)
        if on_epoch_end is not None:
            on_epoch_end(model, epoch, history)
    return model, optimizers, history


def save(path, model, optimizers, epoch, history, seed):
    """Write model, optimizer and RNG state, history and options, atomically."""
    return checkpoint.save(
        path,
        {
            "meta": {
                "model": model.name,
                "options": model.options,
                "epoch": epoch,
                "seed": seed,
                "history": history,
                "rng": backend.get_rng_state(),
            },
            "model": model.state_dict(),
            "optim": {key: opt.state_dict() for key, opt in optimizers.items()},
        },
    )


def load(path, name=None):
    """Rebuild (model, optimizers, meta) from a checkpoint and restore the RNG.

    ``name``, when given, must match the checkpoint's model (a clear error
    otherwise).
    """
    tree = checkpoint.load(path)
    meta = tree.get("meta")
    if meta is None or "model" not in meta:
        raise checkpoint.CheckpointError(f"{path} is not a minigen training checkpoint")
    if name is not None and meta["model"] != name:
        raise checkpoint.CheckpointError(f"{path} holds a {meta['model']!r} model, not {name!r}")
    model = build(meta["model"], **meta["options"])
    model.load_state_dict(tree["model"])
    optimizers = model.make_optimizers()
    for key, opt in optimizers.items():
        opt.load_state_dict(tree["optim"][key])
    backend.set_rng_state(meta["rng"])
    return model, optimizers, meta
