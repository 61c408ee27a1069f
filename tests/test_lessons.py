"""Every lesson's --quick smoke run finishes, quickly, and saves the figures it talks about."""

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

LESSONS = sorted(p.name for p in (Path(__file__).parent.parent / "lessons").glob("[0-9][0-9]_*.py"))
# lessons/_setup.py promises a quick run in under 30 s on 2 cores. Checked as CPU time, which
# grows far less than wall time when other work shares the machine (a lesson uses one core)
QUICK_CPU_SECONDS = 20


def test_all_ten_lessons_are_here():
    assert [name[:2] for name in LESSONS] == [f"{i:02d}" for i in range(1, 11)]


@pytest.mark.parametrize("lesson", LESSONS)
def test_quick_run(lesson, tmp_path):
    root = Path(__file__).parent.parent
    env = {**os.environ, "MPLBACKEND": "Agg", "MINIGEN_PROGRESS": "0"}
    # this checkout's minigen, whether or not one is installed
    env["PYTHONPATH"] = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the lessons' times are measured
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [sys.executable, str(root / "lessons" / lesson), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < QUICK_CPU_SECONDS, f"{lesson} --quick took {cpu:.1f} s of CPU time"
    figures = list(tmp_path.glob("*.png"))
    assert figures, f"{lesson} saved no figure"
    for png in figures:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_a_number_is_placed_against_the_full_runs_spread(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent / "lessons"))
    from _setup import against_full_runs

    runs = (98.3, 91.04, 104.2)  # seeds 0, 1, 2
    assert against_full_runs(95.0, runs, quick=False) == (
        "a full run: 98.3 (91.0-104.2 over 3 seeds); this run is inside"
    )
    # compared as printed: 91.0 is at the edge, 90.9 and 104.3 fall outside
    assert against_full_runs(91.0, runs, quick=False).endswith("inside")
    assert against_full_runs(90.9, runs, quick=False).endswith(
        "this run is outside it (three seeds only sketch the spread)"
    )
    assert against_full_runs(104.3, runs, quick=False).endswith(
        "this run is outside it (three seeds only sketch the spread)"
    )
    # a quick run is shown the spread only, whatever it printed
    quick = against_full_runs(500.0, runs, quick=True)
    assert quick == "a full run: 98.3 (91.0-104.2 over 3 seeds)"
    assert against_full_runs(7, (9, 6, 10), quick=False, fmt="d") == (
        "a full run: 9 (6-10 over 3 seeds); this run is inside"
    )
    # a value that could not be computed (a correlation of a constant) is shown the spread only
    assert against_full_runs(float("nan"), runs, quick=False) == quick
    # signed numbers (correlations) read "lo to hi", not "-0.80--0.67"
    assert against_full_runs(-0.7, (-0.76, -0.80, -0.67), quick=True, fmt="+.2f") == (
        "a full run: -0.76 (-0.80 to -0.67 over 3 seeds)"
    )
