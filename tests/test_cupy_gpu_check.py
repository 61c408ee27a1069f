"""tools/gpu_check.py, the one-command check for a machine with a GPU, tested on the CPU.

Where no GPU can be used it must say so and stop with status 2; its training
comparison is run here on the strict stand-in.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "tools" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def _gpu_usable():
    try:
        import cupy
    except ImportError:
        return False
    return cupy.is_available()


@pytest.mark.skipif(_gpu_usable(), reason="a GPU is usable here: the script would run")
def test_without_a_gpu_it_says_so_and_exits_2():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--only", "train"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no usable GPU here, nothing was run" in result.stderr
    assert "cupy" in result.stderr.lower()  # the BackendError that says what is missing
    assert "PASS" not in result.stdout


def test_worst_difference():
    a = {"loss": [1.0, 2.0], "kl": [0.5, 0.5]}
    b = {"loss": [1.0, 2.002], "kl": [0.5, 0.4995]}
    assert gpu_check.worst_difference(a, a) == 0.0
    assert gpu_check.worst_difference(a, b) == pytest.approx(1e-3)
    with pytest.raises(ValueError):
        gpu_check.worst_difference(a, {"loss": [1.0], "kl": [0.5, 0.5]})


def test_training_comparison_on_the_stand_in():
    """Two runs on the stand-in from one seed are bit-identical, VQ-VAE included: its
    codebook gradient is a matrix product, so the stand-in's add.at in no set order
    (CuPy's atomic adds) cannot reach it; indexing's add.at gave 6.6e-08 here. Against
    NumPy the stand-in is close, not equal (``x ** 2`` runs power, as on CuPy, where
    NumPy takes a square fast path)."""
    images = (np.random.default_rng(0).random((640, 28, 28)) * 255).astype(np.uint8)
    ok, note = gpu_check.check_train("strict", ["vq-vae"], images=images, reference="strict")
    assert ok and note == "vq-vae 0.00e+00"
    ok, note = gpu_check.check_train("strict", ["vq-vae"], images=images)
    assert ok and float(note.split()[1]) < 1e-6
