"""The command line: help, training with checkpoints, sampling, clear errors."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minigen import backend, train
from minigen.__main__ import main
from minigen.data import write_idx
from minigen.models import MODELS, build

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "minigen", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_commands_and_models():
    result = run("train", "--help")
    assert result.returncode == 0
    for word in ("mlp-gan", "dcgan", "vq-vae", "--resume", "--backend"):
        assert word in result.stdout


def test_unknown_model_is_a_clear_error():
    result = run("train", "stylegan")
    assert result.returncode == 2
    assert "invalid choice: 'stylegan'" in result.stderr


def test_sample_writes_png_and_npy(tmp_path):
    images = (np.random.default_rng(0).random((128, 28, 28)) * 255).astype(np.uint8)
    train.train("mlp-vae", 1, images=images, out=tmp_path, quiet=True)
    ckpt = str(tmp_path / "checkpoint.npz")
    assert main(["sample", ckpt, "--n", "6", "--out", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (6, 28, 28) and samples.dtype == np.float32
    assert 0 <= samples.min() and samples.max() <= 1
    assert main(["sample", ckpt, "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "nope.npz")]) == 1
    assert "nope.npz does not exist" in capsys.readouterr().err


def test_unavailable_backend_is_a_clear_error(tmp_path, capsys):
    try:
        import cupy  # noqa: F401

        pytest.skip("CuPy is installed here")
    except ImportError:
        pass
    assert main(["sample", str(tmp_path / "x.npz"), "--backend", "cupy"]) == 1
    assert "CuPy" in capsys.readouterr().err


def test_train_then_resume_from_the_command_line(tmp_path, monkeypatch):
    """`train` on a small data folder (MINIGEN_DATA), then `--resume` to a later epoch."""
    write_data(tmp_path / "fashion-mnist", 256)
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path))
    out = tmp_path / "run"
    assert main(["train", "mlp-vae", "--epochs", "1", "--out", str(out)]) == 0
    assert (
        main(
            [
                "train",
                "mlp-vae",
                "--epochs",
                "2",
                "--resume",
                str(out / "checkpoint.npz"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    model, _, meta = train.load(out / "checkpoint.npz")
    assert meta["epoch"] == 2 and len(meta["history"]["loss"]) == 2 * (256 // 128)
    assert (out / "samples.png").is_file() and (out / "losses.png").is_file()


def write_data(folder, n_train, n_test=64):
    """A fake Fashion-MNIST in ``folder`` (MINIGEN_DATA/fashion-mnist/)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte",
            (rng.random((n, 28, 28)) * 255).astype(np.uint8),
        )
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))


# ~10 s each on 2 busy cores (wgan-gp: one critic step an epoch, ~7 s); the other
# four together ~60 s
QUICK = ("mlp-vae", "vq-vae", "wgan-gp")


@pytest.mark.parametrize(
    "name", [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in MODELS]
)
def test_every_model_trains_samples_and_resumes_from_the_command_line(name, tmp_path):
    """One epoch on a slice of one batch (a single step), sample it, resume it to epoch 2."""
    batch_size = build(name).batch_size
    write_data(tmp_path / "data" / "fashion-mnist", batch_size)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MINIGEN_DATA": str(tmp_path / "data")}
    env.update(MINIGEN_PROGRESS="0", MPLBACKEND="Agg")

    def cli(*args):
        result = subprocess.run(
            [sys.executable, "-m", "minigen", *args],
            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    out = cli("train", name, "--epochs", "1", "--out", "run")
    assert f"data: {batch_size} Fashion-MNIST train images from" in out
    assert "checkpoint: run/checkpoint.npz (epoch 1)" in out
    out = cli("sample", "run/checkpoint.npz", "--n", "3", "--out", "s.npy")
    assert f"wrote 3 samples of {name}" in out
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (3, 28, 28) and np.isfinite(samples).all()
    out = cli("train", name, "--epochs", "2", "--resume", "run/checkpoint.npz")
    assert "checkpoint: run/checkpoint.npz (epoch 2)" in out
    _, _, meta = train.load(tmp_path / "run" / "checkpoint.npz", name)
    assert meta["epoch"] == 2 and all(len(v) == 2 for v in meta["history"].values())


def test_prior_fits_into_the_checkpoint_sample_uses_it_and_resume_drops_it(
    tmp_path, monkeypatch, capsys
):
    """`prior` on a vq-vae checkpoint: stored, used by `sample`, refused twice without
    --overwrite, dropped (with a line) by --resume, which then goes on bit for bit as if
    no prior had been fitted."""
    write_data(tmp_path / "fashion-mnist", 128)
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path))
    monkeypatch.setenv("MINIGEN_PROGRESS", "0")
    run, plain = tmp_path / "run", tmp_path / "plain"
    for out in (run, plain):
        assert main(["train", "vq-vae", "--epochs", "1", "--out", str(out)]) == 0
    ckpt = str(run / "checkpoint.npz")
    capsys.readouterr()

    assert main(["prior", ckpt, "--epochs", "1"]) == 0
    said = capsys.readouterr().out
    assert "now holds the prior" in said and (run / "prior_samples.png").is_file()
    model, _, meta = train.load(ckpt)
    assert model.prior is not None and meta["epoch"] == 1
    assert main(["sample", ckpt, "--n", "2", "--out", str(tmp_path / "s.npy")]) == 0
    assert "PixelCNN prior" in capsys.readouterr().out

    assert main(["prior", ckpt, "--epochs", "1"]) == 1
    assert "already holds a prior; replace it with --overwrite" in capsys.readouterr().err
    assert main(["prior", ckpt, "--epochs", "1", "--overwrite"]) == 0
    capsys.readouterr()

    for out in (run, plain):
        resume = str(out / "checkpoint.npz")
        assert main(["train", "vq-vae", "--epochs", "2", "--resume", resume]) == 0
    said = capsys.readouterr().out
    assert said.count("prior is stale and is dropped") == 1
    resumed, _, meta = train.load(ckpt)
    assert resumed.prior is None and "prior_hidden" not in meta["options"]
    again, _, _ = train.load(plain / "checkpoint.npz")
    for key, value in again.state_dict().items():
        got = backend.to_numpy(resumed.state_dict()[key])
        np.testing.assert_array_equal(got, backend.to_numpy(value), err_msg=key)


def test_prior_refuses_a_model_without_codes(tmp_path, capsys):
    images = (np.random.default_rng(0).random((128, 28, 28)) * 255).astype(np.uint8)
    train.train("mlp-vae", 1, images=images, out=tmp_path, quiet=True)
    assert main(["prior", str(tmp_path / "checkpoint.npz")]) == 1
    assert "holds model 'mlp-vae'; only a vq-vae has a prior" in capsys.readouterr().err
