"""Checkpoints: one ``.npz`` file, written atomically, read without pickle.

A checkpoint is a flat mapping from names to arrays. Nested state (a model's
``state_dict``, each optimizer's state, the random generator's state, the loss
history) is flattened with "/" in the names, e.g. ``model/encoder.0.weight``
or ``optim/adam/state/3/exp_avg``. Anything that is not an array (numbers,
strings, lists, and empty dicts) is stored as JSON text in a 0-d string
array, so ``numpy.load(allow_pickle=False)`` can read everything back, and
``unflatten(flatten(tree)) == tree`` whatever the tree holds.

Atomic: the file is written under a temporary name in the same folder,
flushed to disk, then renamed over the target. A crash mid-write leaves the
previous checkpoint intact, never half a file; the temporary files of a
killed write are removed by the next ``save`` to the same path.
"""

import json
import os
import tempfile
from pathlib import Path

from minigen import backend
from minigen.errors import MinigenError

np = backend.host
_JSON = "__json__:"


class CheckpointError(MinigenError, RuntimeError):
    """A checkpoint file is missing, unreadable, or not what was expected."""


def flatten(tree, prefix=""):
    """Nested dicts of arrays and plain values -> {"a/b/c": host array}."""
    flat = {}
    for key, value in tree.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise CheckpointError(
                f"checkpoint: key {prefix}{key!r} must be a non-empty string without '/'"
            )
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:  # an empty dict is stored as JSON "{}"
            flat.update(flatten(value, name + "/"))
        elif hasattr(value, "shape") and hasattr(value, "dtype"):
            flat[name] = backend.to_numpy(value)
        else:
            try:
                text = json.dumps(value, allow_nan=True)
            except TypeError as e:
                raise CheckpointError(
                    f"checkpoint: {name} is a {type(value).__name__}, which a checkpoint cannot "
                    "hold; store arrays, numbers, strings, lists or dicts"
                ) from e
            flat[name] = np.array(_JSON + text)
    return flat


def unflatten(flat):
    """The inverse of ``flatten``: host arrays and decoded JSON values, nested."""
    tree = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        if value.dtype.kind == "U" and value.ndim == 0 and str(value).startswith(_JSON):
            value = json.loads(str(value)[len(_JSON) :])
        node[leaf] = value
    return tree


def save(path, tree):
    """Write nested state to ``path`` (.npz) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = flatten(tree)  # before any file is touched: a bad tree leaves the folder as it was
    for stale in path.parent.glob(f"{path.name}*.tmp"):  # left by a write that was killed
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **flat)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path):
    """Read a checkpoint written by ``save`` as nested dicts of host arrays."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        f = np.load(path, allow_pickle=False)
        if not hasattr(f, "files"):  # a bare .npy array, not an .npz archive
            raise ValueError("a single array, not an archive")
        with f:
            flat = {name: f[name] for name in f.files}
        return unflatten(flat)
    except Exception as e:
        # zip, format or JSON errors, pickled objects: never suggest allow_pickle
        raise CheckpointError(
            f"{path} is not a minigen checkpoint (an .npz archive of plain arrays written by "
            f"`python -m minigen train` or minigen.checkpoint.save); pass the checkpoint.npz "
            f"that training wrote"
        ) from e
