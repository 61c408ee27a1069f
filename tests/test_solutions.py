"""Every lesson's worked solutions run in quick mode and answer each exercise the lesson lists."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
LESSONS = sorted(p.name for p in (ROOT / "lessons").glob("[0-9][0-9]_*.py"))
SOLUTIONS = ROOT / "lessons" / "solutions"


def exercise_count(lesson):
    """How many exercises the lesson's last markdown lists (numbered items under '## Exercises')."""
    text = (ROOT / "lessons" / lesson).read_text()
    assert "# ## Exercises" in text, f"{lesson} has no '## Exercises' section"
    exercises = text.rsplit("# ## Exercises", 1)[1]
    return len(re.findall(r"^# (\d+)\. \*\*", exercises, flags=re.M))


def test_every_lesson_has_its_solutions():
    assert sorted(p.name for p in SOLUTIONS.glob("[0-9][0-9]_*.py")) == LESSONS
    for lesson in LESSONS:
        assert 3 <= exercise_count(lesson) <= 5, lesson


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_solutions_quick(lesson, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "MINIGEN_PROGRESS": "0"}
    # this checkout's minigen, whether or not one is installed
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, str(SOLUTIONS / lesson), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    headings = re.findall(r"^== Exercise (\d+): (.+)$", result.stdout, flags=re.M)
    n = exercise_count(lesson)
    assert [int(k) for k, _ in headings] == list(range(1, n + 1)), result.stdout[-2000:]
    # each exercise's title in the lesson is the one its solution prints
    text = (ROOT / "lessons" / lesson).read_text().rsplit("# ## Exercises", 1)[1]
    titles = re.findall(r"^# \d+\. \*\*(.+?)\.?\*\*", text, flags=re.M)
    assert [t for _, t in headings] == titles
    # and every exercise printed an answer below its heading
    answers = re.split(r"^== Exercise \d+: .+$", result.stdout, flags=re.M)[1:]
    assert all(re.search(r"\d", a.rsplit("(", 1)[0]) for a in answers), result.stdout[-2000:]
