"""Lesson 02 runs end to end in smoke mode and writes its figures."""

import os
import subprocess
import sys
from pathlib import Path

LESSON = Path(__file__).resolve().parents[1] / "lessons" / "02_layers.py"


def test_lesson02_quick_run(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, str(LESSON), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "test accuracy" in result.stdout
    pngs = list(tmp_path.glob("*.png"))
    assert pngs, f"no PNG written to {tmp_path}"
    assert all(p.stat().st_size > 1000 for p in pngs)
