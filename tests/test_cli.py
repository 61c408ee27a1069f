"""The command line: help, training with checkpoints, sampling, clear errors."""

import subprocess
import sys

import numpy as np
import pytest

from minigen import train
from minigen.__main__ import main


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
    from minigen.data import write_idx

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 256), ("t10k", 64)):
        write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte",
            (rng.random((n, 28, 28)) * 255).astype(np.uint8),
        )
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))
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
