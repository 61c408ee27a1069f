"""train()'s wall-clock budget (max_seconds): where it stops, what it records."""

import numpy as np
import pytest

from minigen import checkpoint, train

IMAGES = np.random.default_rng(0).integers(0, 256, size=(384, 28, 28), dtype=np.uint8)


def test_a_zero_budget_stops_after_the_first_step_and_says_where(tmp_path):
    calls = []
    model, _, history = train.train(
        "mlp-vae", 5, images=IMAGES, out=tmp_path, quiet=True, max_seconds=0,
        on_epoch_end=lambda m, epoch, h: calls.append(epoch),
    )  # fmt: skip
    assert len(history["loss"]) == 1 and calls == [0]
    _, _, meta = train.load(tmp_path / train.CHECKPOINT)
    assert meta["epoch"] == 1
    assert meta["stopped"] == {"epoch": 1, "step": 1, "max_seconds": 0.0}


def test_an_ample_budget_changes_nothing(tmp_path):
    _, _, plain = train.train("mlp-vae", 2, images=IMAGES, quiet=True)
    _, _, timed = train.train(
        "mlp-vae", 2, images=IMAGES, out=tmp_path, quiet=True, max_seconds=1e6
    )
    assert timed == plain and len(plain["loss"]) == 2 * (384 // 128)
    assert "stopped" not in checkpoint.load(tmp_path / train.CHECKPOINT)["meta"]


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "10", True])
def test_a_bad_budget_is_refused_with_a_reason(bad):
    with pytest.raises(ValueError, match="max_seconds must be a finite number"):
        train.train("mlp-vae", 1, images=IMAGES, max_seconds=bad)
