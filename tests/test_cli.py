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
