"""Checkpoints: one ``.npz`` file, written atomically, read without pickle.

A checkpoint is a flat mapping from names to arrays. Nested state (a model's
``state_dict``, each optimizer's state, the random generator's state, the loss
history) is flattened with "/" in the names, e.g. ``model/encoder.0.weight``
or ``optim/adam/state/3/exp_avg``. Anything that is not an array (numbers,
strings, lists, and empty dicts) is stored as JSON text in a 0-d string
array, so ``numpy.load(allow_pickle=False)`` can read everything back, and
``unflatten(flatten(tree)) == tree`` whatever the tree holds.

Atomic: the file is written under a temporary name in the same folder,
flushed to disk, then renamed over the target, with the mode the file had.
A crash mid-write leaves the previous checkpoint intact, never half a file.
The temporary name is hidden and says who made it,
``.checkpoint.npz.<pid>.<random>.minigen-tmp``; the next ``save`` to the
same path removes those of processes that no longer run, and nothing else.

One writer per folder: ``lock(folder)`` holds an OS advisory lock
(``fcntl.flock`` on ``folder/.minigen.lock``, which holds the writer's process
id and is removed when the lock is released) while a run writes there. A
second writer is refused at once, naming that process; a killed process
releases its lock with it. Where the OS has no ``fcntl`` (Windows) no lock
is taken.
"""

import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (see the module docstring)
    fcntl = None

from minigen import backend
from minigen.errors import MinigenError

np = backend.host
_JSON = "__json__:"
LOCK = ".minigen.lock"
_TMP = ".minigen-tmp"  # the suffix of save's temporary files: no user picks it
_held = {}  # folder (resolved) -> [its open lock file, how many lock() bodies hold it]


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
    for stale in path.parent.glob(f".{path.name}.*{_TMP}"):  # left by a write that was killed
        pid = stale.name[len(path.name) + 2 :].split(".")[0]
        if pid.isdigit() and not _running(int(pid)):
            stale.unlink(missing_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)  # a rewritten checkpoint keeps its mode
    except FileNotFoundError:
        mode = 0o666 & ~_umask()  # a new one gets what open() would give it
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=_TMP)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **flat)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _running(pid):
    """Whether process ``pid`` still runs (its temporary file may be in use)."""
    if pid == os.getpid():
        return True
    if os.name != "posix":  # no harmless probe there; the folder's lock is all there is
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def lock(folder):
    """Hold the write lock of ``folder`` (created if needed) while the body runs.

    Re-entrant within a process (``train`` inside a command that holds it);
    a lock held by another process is a CheckpointError naming its process id.
    ``folder`` None takes no lock: a process that writes nothing (ranks > 0 of
    a data-parallel run, minigen/distributed.py).
    """
    if folder is None:
        yield
        return
    key = _acquire(Path(folder))
    try:
        yield
    finally:
        _held[key][1] -= 1
        if not _held[key][1]:
            f = _held.pop(key)[0]
            if f is not None:  # remove the file while it is locked, then release it
                (key / LOCK).unlink(missing_ok=True)
                f.close()


def _acquire(folder):
    try:
        folder.mkdir(parents=True, exist_ok=True)
        key = folder.resolve()
        if key in _held:
            _held[key][1] += 1
            return key
        f = _locked(key / LOCK)
    except OSError as e:
        raise CheckpointError(
            f"cannot write checkpoints to {folder} ({e.strerror or e}). Pick another "
            "--out (out=), a folder you can write."
        ) from e
    _held[key] = [f, 1]
    return key


def _locked(path):
    """The lock file ``path``, opened, locked and holding this process's id (None
    without fcntl); a CheckpointError naming the holder when another has it."""
    if fcntl is None:
        return None
    while True:
        f = open(path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip()
            f.close()
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise CheckpointError(
                f"{path.parent} is in use: minigen {who} is writing checkpoints there. Wait "
                "for it to end (or stop it), or pick another --out."
            ) from None
        try:  # still the file at that name, not one its holder removed as it ended
            if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        f.close()
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def existing(path):
    """``path`` as a Path, or a CheckpointError when no file is there."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def load(path):
    """Read a checkpoint written by ``save`` as nested dicts of host arrays."""
    path = existing(path)
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
