"""Where the dataset files come from, and ``load``.

``load(name, split)`` looks for the two IDX files of a split (images and
labels) in these places, in order, and reads the first complete pair:

1. ``root=``, a directory the caller names (then nothing else is tried);
2. ``$MINIGEN_DATA/<name>/``, when ``MINIGEN_DATA`` is set (then nothing else
   is tried either: a missing folder or file is a DataError naming it, and
   files directly in ``$MINIGEN_DATA`` serve no dataset, so ``mnist`` never
   reads Fashion-MNIST files); set to nothing (or blanks) it counts as unset,
   as ``MINIGEN_DATA= python ...`` means in a shell, and the first line of
   a run says where the images came from;
3. the system's copy: Debian's ``dataset-fashion-mnist`` package installs the
   official files in ``/usr/share/datasets/fashion-mnist``;
4. the user cache, ``$MINIGEN_CACHE/<name>`` (default ``~/.cache/minigen``);
5. a download from the dataset's published location into the cache, checked
   against the published SHA-256 (``download=False`` skips it);
6. the subset of Fashion-MNIST shipped inside minigen (6,000 training and
   1,000 test images), announced by one line on stderr, once per process.
   No MNIST subset is shipped: without files, MNIST raises DataError.

A download is written to a hidden ``.part`` file next to its destination and
renamed into place only when every file of the split has arrived whole and
matches its checksum, so the cache never holds half a file. When the network
is unreachable the download fails within ``TIMEOUT`` seconds and ``load``
falls through to the subset; a download that starts but goes wrong
(checksum mismatch, interrupted transfer, HTTP error) raises DataError.
"""

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from minigen import backend
from minigen.data.idx import DataError, read_idx

# One image as the models see it: (channels, height, width). The files hold (N, 28, 28).
IMAGE_SHAPE = (1, 28, 28)

np = backend.host

CLASSES = {
    "fashion-mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "mnist": [str(d) for d in range(10)],
}
TITLES = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST"}

# split -> (images file, labels file), without the .gz the published files carry
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# Published locations, tried in order (tests point these at a local server).
MIRRORS = {
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",  # PyTorch's mirror
        "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow's mirror
        "http://yann.lecun.com/exdb/mnist/",  # the original, often refuses scripts
    ],
}


def _sha256sums(text):
    """{file name: hash} from lines in the format of the sha256sum tool."""
    return {name: digest for digest, name in (line.split() for line in text.strip().splitlines())}


# SHA-256 of the official .gz files, as listed by TensorFlow Datasets and other
# loaders (Zalando's README gives MD5s). Debian's package holds the same data
# recompressed (no file name in the gzip header), so its .gz files hash
# differently; minigen never downloads those, so that does not matter.
SHA256 = {
    "fashion-mnist": _sha256sums("""
        3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84  train-images-idx3-ubyte.gz
        a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845  train-labels-idx1-ubyte.gz
        346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073  t10k-images-idx3-ubyte.gz
        67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5  t10k-labels-idx1-ubyte.gz
    """),
    "mnist": _sha256sums("""
        440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609  train-images-idx3-ubyte.gz
        3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c  train-labels-idx1-ubyte.gz
        8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6  t10k-images-idx3-ubyte.gz
        f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6  t10k-labels-idx1-ubyte.gz
    """),
}

SYSTEM_DIRS = {
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
    "mnist": [],
}
SHIPPED_DIR = Path(__file__).resolve().parent / "files"
SHIPPED = {"fashion-mnist": "fashion-mnist-"}  # name -> file prefix in SHIPPED_DIR
TIMEOUT = 10.0  # seconds to connect, and between two packets of a download

_HOW_TO_GET = {
    "fashion-mnist": "`apt install dataset-fashion-mnist`, connect to the network once "
    "(minigen downloads and caches the files), or put the four files in a folder and "
    "pass root=, or put them in MINIGEN_DATA/fashion-mnist/",
    "mnist": "connect to the network once (minigen downloads and caches the files), "
    "or put the four files in a folder and pass root=, or put them in MINIGEN_DATA/mnist/",
}
_announced = set()


@dataclass
class Source:
    """Where a split was found: kind is root, env, system, cache, download or subset."""

    kind: str
    images: Path
    labels: Path
    note: str = ""
    name: str = "fashion-mnist"
    split: str = "train"

    def describe(self):
        """Where the images came from, for a line such as "data: 6,000 <describe()>"."""
        what = f"{TITLES[self.name]} {self.split} images"
        if self.kind == "subset":
            return f"{what} from the subset shipped with minigen ({self.images.parent})"
        return f"{what} from {self.images.parent}"


class DownloadError(DataError):
    """A download failed; ``offline`` is True when no server could be reached."""

    def __init__(self, message, offline=False):
        super().__init__(message)
        self.offline = offline


def cache_dir():
    """The user cache: ``$MINIGEN_CACHE`` or ``~/.cache/minigen``."""
    env = os.environ.get("MINIGEN_CACHE", "").strip()  # empty: unset, as MINIGEN_DATA
    return Path(env).expanduser() if env else Path.home() / ".cache" / "minigen"


# ---------------------------------------------------------------- loading


def load(name, split="train", root=None, download=True):
    """Images and labels of a dataset split, as host NumPy arrays.

    name: "fashion-mnist" or "mnist"; split: "train" or "test".
    Returns images uint8 (N, 28, 28) and labels int64 (N,).
    See the module docstring for where the files are looked for.
    """
    return read(locate(name, split, root=root, download=download))


def read(src):
    """Images and labels from a Source found by ``locate``, checked as ``load`` does."""
    name, split = src.name, src.split
    images, labels = read_idx(src.images), read_idx(src.labels)
    _check_pair(src, images, labels)
    if src.kind == "subset" and (name, split) not in _announced:
        _announced.add((name, split))
        print(
            f"minigen: no {TITLES[name]} files found{src.note}; using the "
            f"{len(labels):,}-image {split} subset shipped with minigen. For the full set: "
            f"{_HOW_TO_GET[name]}.",
            file=sys.stderr,
        )
    return images, labels.astype(np.int64)


def locate(name, split="train", root=None, download=True):
    """Find (or download) the split's two files; returns a Source."""
    name, split = _check_name(name, split)
    if root is not None:
        found = _find_in(Path(root).expanduser(), name, split)
        if found is None:
            raise DataError(
                f"{root}: no {TITLES[name]} {split} files here (looked for "
                f"{_wanted(split)}, also in {Path(root) / name}). Put them there, or "
                "leave root=None to let minigen look in its usual places."
            )
        return Source("root", *found, name=name, split=split)
    env = os.environ.get("MINIGEN_DATA", "").strip()
    if env:
        return Source(
            "env", *_find_in_env(Path(env).expanduser(), name, split), name=name, split=split
        )
    places = [("system", d) for d in SYSTEM_DIRS.get(name, [])]
    places.append(("cache", cache_dir() / name))
    for kind, directory in places:
        found = _find_pair(directory, split)
        if found is not None:
            return Source(kind, *found, name=name, split=split)
    note = ""
    if download:
        try:
            found = fetch(name, split, cache_dir() / name)
            return Source("download", *found, name=name, split=split)
        except DownloadError as e:
            if not e.offline:
                raise
            note = " and the download site cannot be reached"
    if name in SHIPPED:
        found = _find_pair(SHIPPED_DIR, split, prefix=SHIPPED[name])
        if found is not None:
            return Source("subset", *found, note=note, name=name, split=split)
        raise DataError(f"{SHIPPED_DIR}: the shipped subset is missing; reinstall minigen.")
    looked = ", ".join(str(d) for _, d in places)
    why = "the download site cannot be reached" if download else "download=False"
    raise DataError(
        f"no {TITLES[name]} {split} files found (looked for {_wanted(split)} in {looked}; "
        f"{why}; minigen ships no {TITLES[name]} subset). To get them: {_HOW_TO_GET[name]}."
    )


def _check_name(name, split):
    key = str(name).lower().replace("_", "-")
    if key not in CLASSES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(CLASSES)}")
    if split not in FILES:
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
    return key, split


def _wanted(split):
    return " and ".join(f"{f}[.gz]" for f in FILES[split])


def _find_in_env(env, name, split):
    """The pair in ``$MINIGEN_DATA/<name>/``, or a DataError naming what is missing."""
    folder = env / name
    found = _find_pair(folder, split)
    if found is not None:
        return found
    if not env.is_dir():
        problem = f"MINIGEN_DATA is set to {env}, which is not a folder"
    else:
        missing = next(
            f
            for f in FILES[split]
            if not any((folder / f"{f}{gz}").is_file() for gz in ("", ".gz"))
        )
        problem = f"MINIGEN_DATA is set, but {folder / missing}[.gz] does not exist"
        if _find_pair(env, split) is not None:
            problem += f" (files directly in {env} serve no dataset: move them into {folder})"
    raise DataError(
        f"{problem}. With MINIGEN_DATA set, minigen reads {TITLES[name]} only from "
        f"MINIGEN_DATA/{name}/: put {_wanted(split)} there, or unset MINIGEN_DATA."
    )


def _find_in(directory, name, split):
    """The pair in ``directory/name`` or, failing that, ``directory`` itself."""
    for d in (directory / name, directory):
        found = _find_pair(d, split)
        if found is not None:
            return found
    return None


def _find_pair(directory, split, prefix=""):
    """(images, labels) paths if both exist in ``directory``, gzipped or plain."""
    pair = []
    for base in FILES[split]:
        for candidate in (directory / f"{prefix}{base}.gz", directory / f"{prefix}{base}"):
            if candidate.is_file():
                pair.append(candidate)
                break
        else:
            return None
    return tuple(pair)


def _check_pair(src, images, labels):
    """Images (N, 28, 28) uint8 and N labels 0..9, or a DataError naming the files."""
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE[1:] or images.dtype != np.uint8:
        raise DataError(
            f"{src.images}: expected uint8 images of shape (N, 28, 28), found "
            f"{images.dtype} {images.shape}. Is this an images file of MNIST or Fashion-MNIST?"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(
            f"{src.labels}: expected a uint8 label vector, found {labels.dtype} {labels.shape}. "
            "Is this a labels file?"
        )
    if len(labels) != len(images):
        raise DataError(
            f"{src.images} has {len(images):,} images but {src.labels} has {len(labels):,} "
            "labels: the two files do not belong together. Replace them with a matching pair."
        )
    if len(labels) and labels.max() > 9:
        raise DataError(f"{src.labels}: label {labels.max()} is outside 0..9. Is this MNIST?")


# ---------------------------------------------------------------- downloading


def fetch(name, split, dest, mirrors=None, checksums=None, timeout=None):
    """Download the split's missing files into ``dest``; returns (images, labels) paths.

    Each file is tried at each mirror in turn. Nothing is renamed into ``dest``
    until every file has arrived whole with the published SHA-256; on any
    failure the ``.part`` files are removed and DownloadError is raised.
    """
    mirrors = MIRRORS[name] if mirrors is None else mirrors
    checksums = SHA256[name] if checksums is None else checksums
    timeout = TIMEOUT if timeout is None else timeout
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"{dest}: cannot create the cache folder ({e.strerror or e}). "
            "Set MINIGEN_CACHE to a folder you can write."
        ) from e
    targets = [dest / f"{base}.gz" for base in FILES[split]]
    parts = {}
    try:
        for target in targets:
            if not target.is_file():
                part = target.with_name(f".{target.name}.part")
                parts[target] = part
                _fetch_from_mirrors(target.name, part, mirrors, checksums[target.name], timeout)
        for target, part in parts.items():
            os.replace(part, target)  # atomic: the target is whole or absent
    finally:
        for part in parts.values():
            part.unlink(missing_ok=True)
    return tuple(targets)


def _fetch_from_mirrors(filename, part, mirrors, sha256, timeout):
    errors = []
    for base in mirrors:
        try:
            _download(base.rstrip("/") + "/" + filename, part, sha256, timeout)
            return
        except DownloadError as e:
            errors.append(e)
    if not errors:
        raise DownloadError(f"{filename}: no download location configured", offline=True)
    if all(e.offline for e in errors):
        raise DownloadError(
            f"{filename}: cannot reach "
            + "; ".join(str(e) for e in errors)
            + ". Check the network connection.",
            offline=True,
        )
    failures = [e for e in errors if not e.offline]
    raise DownloadError(" Also: ".join(str(e) for e in failures))


def _download(url, part, sha256, timeout):
    """Stream ``url`` into ``part`` while hashing it; check length and SHA-256."""
    request = urllib.request.Request(url, headers={"User-Agent": "minigen"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"{url}: the server answered HTTP {e.code} {e.reason}.") from e
    except (urllib.error.URLError, OSError) as e:  # no DNS, refused, timed out
        raise DownloadError(f"{url} ({getattr(e, 'reason', e)})", offline=True) from e
    digest, received = hashlib.sha256(), 0
    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        try:
            with open(part, "wb") as f:
                while chunk := response.read(1 << 16):
                    f.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
        except (TimeoutError, http.client.IncompleteRead, ConnectionError) as e:
            raise _interrupted(url, received, length, e) from e
    if length is not None and received != length:
        raise _interrupted(url, received, length, "connection closed early")
    got = digest.hexdigest()
    if got != sha256:
        raise DownloadError(
            f"{url}: SHA-256 mismatch: got {got}, expected {sha256}. The file is damaged "
            "or not the published one, and was not kept. Try again later, or get the "
            "files another way and pass root= or set MINIGEN_DATA."
        )


def _interrupted(url, received, length, why):
    of = f" of {length:,}" if length is not None else ""
    return DownloadError(
        f"{url}: transfer interrupted after {received:,}{of} bytes ({why}); nothing was "
        "kept. Try again, or pass download=False to use what is available offline."
    )
