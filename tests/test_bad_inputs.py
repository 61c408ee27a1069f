"""Bad and unlucky inputs: each ends in one clear sentence and never costs a trained model.

Sections follow issue 10: checkpoints are never lost; divergence is caught,
never saved; the data is what the user asked for; every bad input is one
clear error. Command-line cases run ``python -m minigen`` as a subprocess on a
small data folder, so they check the exit status and what the user reads.
"""

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigen
from minigen import checkpoint, data, nn, optim, train
from minigen.__main__ import main
from minigen.data import DataError, sources, write_idx
from minigen.errors import MinigenError
from minigen.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
N_TRAIN = 256  # two mlp-vae steps (batch 128), four GAN steps (batch 64)


def write_split(folder, n_train=N_TRAIN, n_test=64, seed=0):
    """A fake Fashion-MNIST train and test split in ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        pixels = (rng.random((n, 28, 28)) * 255).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", pixels)
        write_idx(
            folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8)
        )
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A MINIGEN_DATA folder: fashion-mnist/ with 256 training images."""
    root = tmp_path_factory.mktemp("data")
    write_split(root / "fashion-mnist")
    return root


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    """A folder holding an mlp-vae checkpoint after one epoch (two steps)."""
    out = tmp_path_factory.mktemp("vae")
    images = (np.random.default_rng(1).random((N_TRAIN, 28, 28)) * 255).astype(np.uint8)
    train.train("mlp-vae", 1, images=images, out=out, quiet=True)
    return out


@pytest.fixture
def run_copy(vae_run, tmp_path):
    """A private copy of the mlp-vae run, free to be changed."""
    return Path(shutil.copytree(vae_run, tmp_path / "run"))


def cli(*args, cwd, data_dir=None, script=None, **env):
    """Run the command line (or a lesson ``script``) in a fresh process; returns the result."""
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MINIGEN_PROGRESS": "0",
        "MPLBACKEND": "Agg",
        "MINIGEN_CACHE": str(Path(cwd) / "cache"),
        **env,
    }
    if data_dir is not None:
        environment["MINIGEN_DATA"] = str(data_dir)
    command = [sys.executable, *([str(script)] if script else ["-m", "minigen"]), *args]
    return subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )


def one_line_error(result):
    """The command failed with exit status 1 and said so in exactly one line, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minigen: error: "), result.stderr
    return lines[0]


def main_error(capsys, *args):
    """``one_line_error`` for ``main(args)`` in this process (faster than a subprocess)."""
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return one_line_error(subprocess.CompletedProcess(args, code, "", err))


def edited(run, tmp_path, edit, name="edited.npz"):
    """A copy of the run's checkpoint with ``edit(tree)`` applied."""
    tree = checkpoint.load(run / "checkpoint.npz")
    edit(tree)
    return checkpoint.save(tmp_path / name, tree)


# ------------------------------------------------- 1. a checkpoint is never lost


def test_resume_refuses_a_checkpoint_of_another_model(vae_run, data_dir, tmp_path):
    out = tmp_path / "dcgan"
    result = cli(
        "train", "dcgan", "--epochs", "2", "--resume", str(vae_run / "checkpoint.npz"),
        "--out", str(out), cwd=tmp_path, data_dir=data_dir,
    )  # fmt: skip
    line = one_line_error(result)
    assert "holds a 'mlp-vae' model, not 'dcgan'" in line
    assert not out.exists() or not any(out.iterdir()), "nothing may be written"


def test_fresh_train_refuses_to_replace_a_checkpoint(run_copy, data_dir, tmp_path, monkeypatch):
    before = (run_copy / "checkpoint.npz").read_bytes()
    args = ("train", "mlp-vae", "--epochs", "1", "--out", str(run_copy))
    line = one_line_error(cli(*args, cwd=tmp_path, data_dir=data_dir))
    assert "already exists" in line
    assert "--resume" in line and "--out" in line and "--overwrite" in line
    assert (run_copy / "checkpoint.npz").read_bytes() == before
    # the explicit flag replaces it
    monkeypatch.setenv("MINIGEN_DATA", str(data_dir))
    assert main([*args, "--overwrite"]) == 0
    assert (run_copy / "checkpoint.npz").read_bytes() != before


def test_the_output_folder_is_checked_before_the_first_step(tmp_path, monkeypatch):
    from minigen.models.vae import VAE

    def no_step(*args):
        raise AssertionError("a step ran before the output folder was checked")

    monkeypatch.setattr(VAE, "train_step", no_step)
    (tmp_path / "a-file").write_text("not a folder")
    images = np.zeros((128, 28, 28), np.uint8)
    with pytest.raises(checkpoint.CheckpointError, match="cannot write checkpoints to .*a-file"):
        train.train("mlp-vae", 1, images=images, out=tmp_path / "a-file" / "run", quiet=True)


def test_save_removes_the_temporaries_of_a_killed_write_and_nothing_else(tmp_path):
    """Only save's own temporary files (hidden, named after their process) of processes
    that have ended; a user's own checkpoint.npz.my-backup.tmp is theirs (issue 20)."""
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    target = tmp_path / "checkpoint.npz"
    stale = tmp_path / f".checkpoint.npz.{ended}.q1w2e3.minigen-tmp"  # what a killed save leaves
    stale.write_bytes(b"half a file")
    running = tmp_path / f".checkpoint.npz.{os.getpid()}.a1s2d3.minigen-tmp"  # a live writer's
    running.write_bytes(b"being written")
    mine = ["checkpoint.npz.my-backup.tmp", "checkpoint.npzq1w2e3.tmp", "other.npz.tmp"]
    for name in mine:  # not ours: left alone
        (tmp_path / name).write_bytes(b"x")
    checkpoint.save(target, {"x": np.arange(3)})
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["checkpoint.npz", running.name, *mine]
    )


def test_a_rewritten_checkpoint_keeps_its_mode(tmp_path):
    target = tmp_path / "checkpoint.npz"
    checkpoint.save(target, {"x": np.arange(3)})
    os.chmod(target, 0o640)
    checkpoint.save(target, {"x": np.arange(4)})
    assert (target.stat().st_mode & 0o777) == 0o640
    assert checkpoint.load(target)["x"].tolist() == [0, 1, 2, 3]


def test_resuming_to_a_reached_epoch_does_nothing_and_claims_nothing(run_copy, data_dir, tmp_path):
    before = (run_copy / "checkpoint.npz").read_bytes()
    (run_copy / "samples.png").unlink(missing_ok=True)
    result = cli(
        "train", "mlp-vae", "--epochs", "1", "--resume", str(run_copy / "checkpoint.npz"),
        cwd=tmp_path, data_dir=data_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "already at epoch 1" in result.stdout and "nothing to do" in result.stdout
    assert "checkpoint:" not in result.stdout and "samples:" not in result.stdout
    assert (run_copy / "checkpoint.npz").read_bytes() == before
    assert not (run_copy / "samples.png").exists()


@pytest.mark.parametrize(
    "tree",
    [
        {"meta": {"options": {}, "epoch": 1}},
        {"a": {"b": {}, "c": {"d": {}}}, "e": []},
        {"s": "text", "n": None, "f": 0.5, "l": [1, [2, 3]], "t": True, "x": {"": 1}},
    ],
    ids=["empty-options", "nested-empty", "plain-values"],
)
def test_nested_state_survives_a_round_trip(tree, tmp_path):
    if "x" in tree:  # an empty key cannot be a path segment: refused, never silently mangled
        with pytest.raises(checkpoint.CheckpointError, match="key"):
            checkpoint.save(tmp_path / "c.npz", tree)
        tree = {k: v for k, v in tree.items() if k != "x"}
    checkpoint.save(tmp_path / "c.npz", tree)
    assert checkpoint.load(tmp_path / "c.npz") == tree


def test_a_file_that_is_not_a_checkpoint_never_suggests_allow_pickle(tmp_path, capsys):
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, x=np.array([{"a": 1}], dtype=object))
    text = tmp_path / "text.npz"
    text.write_text("hello")
    array = tmp_path / "array.npy"
    np.save(array, np.arange(3))
    for path in (pickled, text, array):
        line = main_error(capsys, "sample", path, "--out", tmp_path / "s.png")
        assert "is not a minigen checkpoint" in line and "allow_pickle" not in line
        assert not (tmp_path / "s.png").exists()


def _set(path, value):
    """An edit that sets (or, for value None, deletes) the entry at a "/"-path."""

    def edit(tree):
        *parents, leaf = path.split("/")
        for part in parents:
            tree = tree[part]
        if value is None:
            del tree[leaf]
        else:
            tree[leaf] = value(tree[leaf]) if callable(value) else value

    return edit


BAD_CHECKPOINTS = {
    "no-optim": (_set("optim", None), "optim is missing"),
    "no-options": (_set("meta/options", None), "meta/options is missing"),
    "no-rng": (_set("meta/rng", None), "meta/rng is missing"),
    "epoch-negative": (_set("meta/epoch", -5), "meta/epoch is -5, not a non-negative integer"),
    "epoch-string": (_set("meta/epoch", "three"), "meta/epoch is 'three'"),
    "options-string": (_set("meta/options", "mlp"), "meta/options is 'mlp', not a dict"),
    "options-huge": (_set("meta/options/latent_dim", 10**12), "meta/options/latent_dim"),
    "options-mismatch": (_set("meta/options/latent_dim", 5), "does not fit a mlp-vae"),
    "model-unknown": (_set("meta/model", "stylegan"), "meta/model is 'stylegan'"),
    "weights-text": (
        lambda t: t["model"].__setitem__(next(iter(t["model"])), np.array(["a", "b"])),
        "not numbers",
    ),
    "weights-nan": (
        lambda t: [w.fill(np.nan) for w in t["model"].values()],
        "holds NaN or inf",
    ),
    "lr-nan": (
        lambda t: t["optim"]["adam"].__setitem__("lr", math.nan),
        "optim/adam/lr is nan, not a finite number >= 0",
    ),
}


@pytest.mark.parametrize("bad", list(BAD_CHECKPOINTS))
def test_a_bad_checkpoint_is_one_clear_line(bad, vae_run, tmp_path, capsys):
    edit, expected = BAD_CHECKPOINTS[bad]
    path = edited(vae_run, tmp_path, edit)
    line = main_error(capsys, "sample", path, "--n", "4", "--out", tmp_path / "s.npy")
    assert expected in line and str(path) in line
    assert not (tmp_path / "s.npy").exists()
    line = main_error(capsys, "train", "mlp-vae", "--resume", path, "--out", tmp_path / "r")
    assert expected in line
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


def test_a_bad_checkpoint_from_a_fresh_process(vae_run, tmp_path):
    path = edited(vae_run, tmp_path, _set("meta/rng", None))
    line = one_line_error(cli("sample", str(path), "--out", "s.png", cwd=tmp_path))
    assert line == (
        f"minigen: error: {path}: meta/rng is missing, so this is not a complete minigen "
        "training checkpoint (it was edited, or written by something else). Use a "
        "checkpoint.npz that `python -m minigen train` wrote."
    )


def test_train_load_checks_before_building(vae_run, tmp_path, monkeypatch):
    """options-huge must be refused before a model (and 10**12-wide layers) is built."""
    path = edited(vae_run, tmp_path, _set("meta/options/latent_dim", 10**12))
    monkeypatch.setattr(train, "build", lambda *a, **k: pytest.fail("built before checking"))
    with pytest.raises(checkpoint.CheckpointError, match="integers up to"):
        train.load(path)


# ------------------------------------------------- 2. divergence is caught, never saved


def test_divergence_stops_at_once_and_keeps_the_last_good_checkpoint(run_copy, data_dir, tmp_path):
    ckpt = run_copy / "checkpoint.npz"
    tree = checkpoint.load(ckpt)
    tree["optim"]["adam"]["lr"] = 1e30  # finite, so accepted, and certain to blow up
    checkpoint.save(ckpt, tree)
    before = ckpt.read_bytes()
    result = cli("train", "mlp-vae", "--epochs", "3", "--resume", str(ckpt), cwd=tmp_path,
                 data_dir=data_dir, PYTHONWARNINGS="ignore")  # fmt: skip
    line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1, result.stderr
    assert "mlp-vae diverged at epoch 2, step 2: loss" in line, line
    assert "nan" in line or "inf" in line
    assert f"{ckpt} still holds epoch 1" in line
    assert ckpt.read_bytes() == before
    assert not (run_copy / "samples.png").exists() or "samples:" not in result.stdout


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow warnings on the way
def test_divergence_in_the_library_raises_and_writes_nothing(tmp_path):
    images = (np.random.default_rng(0).random((256, 28, 28)) * 255).astype(np.uint8)
    with pytest.raises(train.DivergenceError, match=r"mlp-vae diverged at epoch 1, step \d"):
        train.train("mlp-vae", 1, images=images, out=tmp_path, quiet=True, lr=1e30)
    assert not (tmp_path / "checkpoint.npz").exists()


def test_save_refuses_weights_that_are_not_finite(tmp_path):
    model = minigen.models.build("mlp-vae")
    optimizers = model.make_optimizers()
    model.parameters()[0].data[0, 0] = np.inf
    with pytest.raises(train.DivergenceError, match="NaN or infinite"):
        train.save(tmp_path / "c.npz", model, optimizers, 1, {}, 0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda p: optim.Adam(p, lr=math.nan),
        lambda p: optim.Adam(p, lr="0.001"),
        lambda p: optim.Adam(p, lr=None),
        lambda p: optim.Adam(p, lr=True),
        lambda p: optim.Adam(p, lr=math.inf),
        lambda p: optim.Adam(p, eps=math.nan),
        lambda p: optim.Adam(p, weight_decay=-1.0),
        lambda p: optim.Adam(p, betas=(math.nan, 0.9)),
        lambda p: optim.SGD(p, lr=0.1, momentum=math.inf),
        lambda p: optim.SGD(p, lr="fast"),
    ],
    ids=["lr-nan", "lr-str", "lr-none", "lr-bool", "lr-inf", "eps-nan", "wd-neg", "beta-nan",
         "momentum-inf", "sgd-lr-str"],
)  # fmt: skip
def test_optimizers_reject_bad_hyperparameters(make):
    with pytest.raises(ValueError, match=r"(Adam|SGD): \w+ must be"):
        make(nn.Linear(2, 2).parameters())


def test_sample_refuses_weights_that_are_not_finite(vae_run, tmp_path, capsys):
    path = edited(vae_run, tmp_path, lambda t: [w.fill(np.nan) for w in t["model"].values()])
    line = main_error(capsys, "sample", path, "--out", tmp_path / "s.npy")
    assert "NaN" in line
    assert not (tmp_path / "s.npy").exists()


# ------------------------------------------------- 3. the data is what the user asked for


@pytest.fixture
def no_other_source(tmp_path, monkeypatch):
    """No system copy, an empty cache, no network: only what the test provides."""
    monkeypatch.setenv("MINIGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"fashion-mnist": [], "mnist": []})
    monkeypatch.setattr(sources, "MIRRORS", {"fashion-mnist": [], "mnist": []})


def test_minigen_data_missing_is_an_error_naming_it(tmp_path, monkeypatch, no_other_source):
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"MINIGEN_DATA is set to .*nowhere, which is not a folder"):
        data.load("fashion-mnist")
    write_split(tmp_path / "data" / "fashion-mnist")
    (tmp_path / "data" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "data"))
    assert len(data.load("fashion-mnist", "train")[0]) == N_TRAIN
    with pytest.raises(DataError, match=r"MINIGEN_DATA.*t10k-labels-idx1-ubyte\[\.gz\] does not"):
        data.load("fashion-mnist", "test")


def test_mnist_never_reads_fashion_mnist_files(tmp_path, monkeypatch, no_other_source):
    write_split(tmp_path / "flat")  # Fashion-MNIST files directly in MINIGEN_DATA
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "flat"))
    for name in ("mnist", "fashion-mnist"):
        with pytest.raises(DataError, match=f"move them into .*MINIGEN_DATA/{name}/"):
            data.load(name)


def test_train_names_where_the_images_came_from(data_dir, tmp_path):
    result = cli("train", "mlp-vae", "--epochs", "1", "--out", "run", cwd=tmp_path,
                 data_dir=data_dir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    folder = data_dir / "fashion-mnist"
    assert f"data: {N_TRAIN} Fashion-MNIST train images from {folder}" in result.stdout


def test_the_shipped_subset_is_named_as_such(no_other_source, monkeypatch):
    monkeypatch.delenv("MINIGEN_DATA", raising=False)
    src = data.locate("fashion-mnist", download=False)
    assert src.describe().startswith("Fashion-MNIST train images from the subset shipped")


def test_a_lesson_names_where_the_images_came_from(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("MINIGEN_DATA", str(data_dir))
    monkeypatch.syspath_prepend(str(ROOT / "lessons"))
    from _setup import setup

    monkeypatch.setattr(sys, "argv", ["lesson", "--quick", "--out", str(data_dir / "figs")])
    args, _, train_images, _, _ = setup("lesson", "a test", epochs=3)
    assert args.epochs == 1 and len(train_images) == N_TRAIN
    assert f"data: {N_TRAIN} Fashion-MNIST train images from {data_dir / 'fashion-mnist'}" in (
        capsys.readouterr().out
    )


def test_fewer_images_than_one_batch_is_an_error(tmp_path, monkeypatch, capsys):
    images = np.zeros((100, 28, 28), np.uint8)
    with pytest.raises(DataError, match="batches of 128 images, but only 100 were given"):
        train.train("mlp-vae", 1, images=images, quiet=True)
    small = write_split(tmp_path / "small" / "fashion-mnist", n_train=100).parent
    monkeypatch.setenv("MINIGEN_DATA", str(small))
    line = main_error(capsys, "train", "mlp-vae", "--epochs", "1", "--out", tmp_path / "run")
    assert "only 100 were given" in line
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_an_idx_header_whose_sizes_overflow_is_a_data_error(tmp_path):
    path = tmp_path / "overflow-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 4]) + (65536).to_bytes(4, "big") * 4)  # 2**64 elements
    with pytest.raises(DataError, match="overflow-idx3-ubyte: truncated"):
        data.read_idx(path)


# ------------------------------------------------- 4. every bad input is one clear error


@pytest.mark.parametrize(
    "args, flag",
    [
        (("train", "mlp-vae", "--epochs", "0"), "--epochs"),
        (("train", "mlp-vae", "--epochs", "-3"), "--epochs"),
        (("train", "mlp-vae", "--seed", "-1"), "--seed"),
        (("sample", "c.npz", "--n", "0"), "--n"),
        (("sample", "c.npz", "--n", "-5"), "--n"),
        (("sample", "c.npz", "--n", "1000000000000"), "--n"),
        (("sample", "c.npz", "--seed", "-2"), "--seed"),
        (("train", "mlp-vae", "--backend", "bogus"), "--backend"),
        (("train", "mlp-vae", "--dataset", "emnist"), "--dataset"),
    ],
)
def test_bad_flags_are_named_by_argparse(args, flag, capsys):
    with pytest.raises(SystemExit) as exit:
        main(list(args))
    assert exit.value.code == 2
    assert f"error: argument {flag}" in capsys.readouterr().err.strip().splitlines()[-1]


def test_the_backend_flag_wins_over_minigen_backend(vae_run, tmp_path):
    ckpt = str(vae_run / "checkpoint.npz")
    ok = cli("sample", ckpt, "--n", "4", "--out", "s.npy", "--backend", "numpy", cwd=tmp_path,
             MINIGEN_BACKEND="bogus")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert np.load(tmp_path / "s.npy").shape == (4, 28, 28)
    line = one_line_error(cli("sample", ckpt, "--out", "t.npy", cwd=tmp_path,
                              MINIGEN_BACKEND="bogus"))  # fmt: skip
    assert "MINIGEN_BACKEND=bogus" in line and "unknown backend 'bogus'" in line


@pytest.mark.parametrize("other", [None, "3", [None, 1.0], ["a", "b"], {"x": 1}])
def test_a_tensor_operand_that_is_not_numbers_is_a_type_error(other):
    t = minigen.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="as a tensor operand"):
        t + other
    with pytest.raises(TypeError, match="as a tensor operand"):
        other * t


def test_python_lists_work_as_arrays_in_layers_and_losses():
    x = [[1.0, 2.0, 3.0]]
    layer = nn.Linear(3, 2)
    np.testing.assert_array_equal(
        minigen.to_numpy(layer(x)), minigen.to_numpy(layer(minigen.tensor(x)))
    )
    assert nn.Conv2d(1, 2, 3)([[[[0.5] * 3] * 3]]).shape == (1, 2, 1, 1)
    assert math.isclose(F.mse_loss([1.0, 2.0], [1.0, 3.0]).item(), 0.5)
    assert math.isclose(
        F.binary_cross_entropy_with_logits([0.0], [1.0]).item(), math.log(2), rel_tol=1e-6
    )
    assert math.isclose(F.cross_entropy([[0.0, 0.0]], [1]).item(), math.log(2), rel_tol=1e-6)
    assert F.gaussian_kl([[0.0]], [[0.0]]).item() == 0.0
    assert (minigen.tensor([1.0, 2.0]) + [1, 2]).data.dtype == np.float32


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: nn.Conv2d(1, 2, 2.5), TypeError, "kernel_size must be an integer, got 2.5"),
        (lambda: nn.Linear(0, 3), ValueError, "in_features must be a positive integer"),
        (lambda: nn.Linear(3, -1), ValueError, "out_features must be a positive integer"),
        (lambda: nn.Linear(2.0, 3), TypeError, "in_features must be an integer"),
        (lambda: nn.BatchNorm2d(0), ValueError, "num_features must be a positive integer"),
        (lambda: nn.Conv2d(1, 2, 3, stride=0), ValueError, "stride must be a positive"),
        (lambda: nn.Conv2d(1, 2, (3, 0)), ValueError, "kernel_size must be a positive"),
        (lambda: nn.ConvTranspose2d(1, True, 3), TypeError, "out_channels must be an integer"),
        (lambda: nn.ConvTranspose2d(1, 2, 3, padding=-1), ValueError, "padding must be a non"),
    ],
)
def test_layer_sizes_must_be_positive_integers(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_lesson_validates_its_epochs(tmp_path):
    script = ROOT / "lessons" / "05_vae.py"
    result = cli("--quick", "--epochs", "-1", "--out", str(tmp_path), cwd=tmp_path, script=script)
    assert result.returncode == 2
    assert "error: argument --epochs: expected a positive integer, got '-1'" in result.stderr


def test_a_lesson_without_its_data_says_so_in_one_line(tmp_path, monkeypatch):
    script = ROOT / "lessons" / "05_vae.py"
    result = cli("--quick", "--out", str(tmp_path), cwd=tmp_path, script=script,
                 data_dir=tmp_path / "nowhere")  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("05_vae: error: MINIGEN_DATA is set to")


def test_every_minigen_error_derives_from_one_base():
    from minigen.backend import BackendError
    from minigen.nn.module import StateDictError

    for cls in (BackendError, minigen.ShapeError, DataError, StateDictError,
                checkpoint.CheckpointError, train.DivergenceError):  # fmt: skip
        assert issubclass(cls, MinigenError), cls
    assert issubclass(DataError, OSError) and issubclass(minigen.ShapeError, ValueError)


def test_a_state_dict_that_does_not_fit_is_one_line(vae_run, tmp_path, capsys):
    def shrink(tree):
        name = next(iter(tree["model"]))
        tree["model"][name] = tree["model"][name][:1]

    path = edited(vae_run, tmp_path, shrink)
    line = main_error(capsys, "sample", path, "--out", tmp_path / "s.npy")
    assert "the saved state does not fit a mlp-vae" in line and "shape" in line


@pytest.mark.parametrize("lesson", ["01_autograd", "02_layers"])
def test_the_first_lessons_refuse_bad_options_in_one_line(lesson, tmp_path):
    script = ROOT / "lessons" / f"{lesson}.py"
    bogus = cli("--quick", "--backend", "bogus", cwd=tmp_path, script=script)
    assert bogus.returncode == 2 and "argument --backend: invalid choice: 'bogus'" in bogus.stderr
    (tmp_path / "taken").write_text("a file, not a folder")
    result = cli("--quick", "--out", str(tmp_path / "taken"), cwd=tmp_path, script=script)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{lesson}: error: ") and "taken" in lines[0]
