"""Where load() finds its files, in order, and what it says when it cannot."""

import socket
from pathlib import Path

import numpy as np
import pytest

import minigen.data
from minigen.data import DataError, load, locate, sources, write_idx

FULL = Path("/usr/share/datasets/fashion-mnist")


def closed_port_url():
    """A 127.0.0.1 URL nobody listens on: connecting is refused at once (offline)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real cache, no $MINIGEN_DATA, no Debian package, no network."""
    monkeypatch.setenv("MINIGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MINIGEN_DATA", raising=False)
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"fashion-mnist": [], "mnist": []})
    url = closed_port_url()
    monkeypatch.setattr(sources, "MIRRORS", {"fashion-mnist": [url], "mnist": [url]})
    monkeypatch.setattr(sources, "_announced", set())


def make_split(directory, n, split="train", gz=True, prefix=""):
    """Write n tiny fake examples (image pixels all equal to n) for a split."""
    directory.mkdir(parents=True, exist_ok=True)
    images_name, labels_name = sources.FILES[split]
    ext = ".gz" if gz else ""
    write_idx(directory / f"{prefix}{images_name}{ext}", np.full((n, 28, 28), n, np.uint8))
    write_idx(directory / f"{prefix}{labels_name}{ext}", np.arange(n, dtype=np.uint8) % 10)
    return directory


# ---------------------------------------------------------------- lookup order


def test_order_root_env_system_cache(tmp_path, monkeypatch):
    root = make_split(tmp_path / "root", 2)
    env = make_split(tmp_path / "env" / "fashion-mnist", 3).parent
    system = make_split(tmp_path / "system", 4)
    make_split(sources.cache_dir() / "fashion-mnist", 5)
    monkeypatch.setenv("MINIGEN_DATA", str(env))
    monkeypatch.setitem(sources.SYSTEM_DIRS, "fashion-mnist", [system])

    images, labels = load("fashion-mnist", root=root)
    assert len(images) == 2 and images.dtype == np.uint8 and labels.dtype == np.int64
    assert locate("fashion-mnist").kind == "env" and len(load("fashion-mnist")[0]) == 3
    monkeypatch.delenv("MINIGEN_DATA")
    assert locate("fashion-mnist").kind == "system" and len(load("fashion-mnist")[0]) == 4
    monkeypatch.setitem(sources.SYSTEM_DIRS, "fashion-mnist", [])
    assert locate("fashion-mnist").kind == "cache" and len(load("fashion-mnist")[0]) == 5


def test_env_reads_only_the_dataset_subfolder(tmp_path, monkeypatch):
    make_split(tmp_path / "data", 3)  # flat: serves no dataset
    make_split(tmp_path / "data" / "mnist", 7)
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "data"))
    assert len(load("mnist")[0]) == 7
    with pytest.raises(DataError, match=r"MINIGEN_DATA.*fashion-mnist/train-images.*move them"):
        load("fashion-mnist")


def test_plain_files_and_test_split(tmp_path):
    make_split(tmp_path, 4, split="test", gz=False)
    images, labels = load("mnist", split="test", root=tmp_path)
    assert images.shape == (4, 28, 28) and (images == 4).all()
    np.testing.assert_array_equal(labels, [0, 1, 2, 3])


def test_a_half_pair_is_not_a_source(tmp_path, monkeypatch):
    system = make_split(tmp_path / "system", 3)
    (system / "train-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setitem(sources.SYSTEM_DIRS, "fashion-mnist", [system])
    assert locate("fashion-mnist", download=False).kind == "subset"


def test_root_without_files_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"empty: no Fashion-MNIST train files here.*root=None"):
        load("fashion-mnist", root=tmp_path / "empty")


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load("cifar")
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        load("mnist", split="valid")
    assert locate("Fashion_MNIST", download=False).kind == "subset"


def test_cache_dir_from_env(tmp_path, monkeypatch):
    assert sources.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("MINIGEN_CACHE")
    assert sources.cache_dir() == Path.home() / ".cache" / "minigen"


# ---------------------------------------------------------------- shipped subset


def test_offline_new_user_gets_the_subset_in_one_call(capsys):
    images, labels = minigen.data.load("fashion-mnist")  # tries the (refused) download
    assert images.shape == (6000, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels), [600] * 10)
    err = capsys.readouterr().err
    assert err.count("\n") == 1, "announced in exactly one line"
    assert "6,000-image train subset shipped with minigen" in err
    assert "cannot be reached" in err and "apt install dataset-fashion-mnist" in err
    load("fashion-mnist")
    assert capsys.readouterr().err == "", "announced once per process"

    images, labels = load("fashion-mnist", split="test", download=False)
    assert images.shape == (1000, 28, 28)
    np.testing.assert_array_equal(np.bincount(labels), [100] * 10)
    assert "1,000-image test subset" in capsys.readouterr().err
    assert images.std() > 50, "real pictures, not blanks"


def test_subset_is_small_and_licensed():
    files = list(sources.SHIPPED_DIR.iterdir())
    assert sum(f.stat().st_size for f in files) < 5_000_000
    licence = (sources.SHIPPED_DIR / "LICENSE-fashion-mnist").read_text()
    assert "Zalando SE" in licence and "Permission is hereby granted" in licence
    assert (sources.SHIPPED_DIR / "README.md").is_file()


def test_mnist_without_any_source_says_what_to_do():
    with pytest.raises(DataError) as e:
        load("mnist")
    msg = str(e.value)
    assert "no MNIST train files found" in msg and "cache/mnist" in msg
    assert "cannot be reached" in msg and "ships no MNIST subset" in msg
    assert "MINIGEN_DATA" in msg
    with pytest.raises(DataError, match="download=False"):
        load("mnist", download=False)


# ---------------------------------------------------------------- bad files via load


def test_corrupt_file_in_a_source_names_it(tmp_path):
    root = make_split(tmp_path, 3)
    images = root / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-5])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: damaged gzip data"):
        load("fashion-mnist", root=root)


def test_images_of_the_wrong_shape(tmp_path):
    root = make_split(tmp_path, 3)
    write_idx(root / "train-images-idx3-ubyte.gz", np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(DataError, match=r"train-images.*expected uint8 images of shape"):
        load("fashion-mnist", root=root)


def test_labels_not_an_idx1_vector(tmp_path):
    root = make_split(tmp_path, 3)
    write_idx(root / "train-labels-idx1-ubyte.gz", np.zeros((3, 2), np.int32))
    with pytest.raises(DataError, match="expected a uint8 label vector"):
        load("fashion-mnist", root=root)


def test_images_and_labels_that_do_not_match(tmp_path):
    root = make_split(tmp_path, 3)
    write_idx(root / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="3 images but .* 4 labels: the two files do not belong"):
        load("fashion-mnist", root=root)


def test_labels_out_of_range(tmp_path):
    root = make_split(tmp_path, 3)
    write_idx(root / "train-labels-idx1-ubyte.gz", np.array([0, 1, 12], np.uint8))
    with pytest.raises(DataError, match="label 12 is outside 0..9"):
        load("fashion-mnist", root=root)


# ---------------------------------------------------------------- the Debian package


@pytest.mark.skipif(not (FULL / "t10k-labels-idx1-ubyte.gz").exists(), reason="no Debian package")
def test_debian_package_gives_all_70000(monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"fashion-mnist": [FULL], "mnist": []})
    train_x, train_y = load("fashion-mnist", "train")
    test_x, test_y = load("fashion-mnist", "test")
    assert locate("fashion-mnist").kind == "system"
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
    np.testing.assert_array_equal(np.bincount(train_y), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(test_y), [1000] * 10)
    # the shipped subset is exactly the first 600 (100) of each class, in file order
    sub_x, sub_y = load("fashion-mnist", "test", root=None, download=False)
    assert len(sub_x) == 10000  # the system copy still wins over the subset
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"fashion-mnist": [], "mnist": []})
    sub_x, sub_y = load("fashion-mnist", "test", download=False)
    keep = np.sort(np.concatenate([np.flatnonzero(test_y == c)[:100] for c in range(10)]))
    np.testing.assert_array_equal(sub_x, test_x[keep])
    np.testing.assert_array_equal(sub_y, test_y[keep])


def test_classes():
    assert minigen.data.CLASSES["fashion-mnist"][9] == "Ankle boot"
    assert minigen.data.CLASSES["mnist"] == [str(d) for d in range(10)]
