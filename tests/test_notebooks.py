"""Every lesson runs as a notebook in a real Jupyter kernel, in quick mode.

tools/notebooks.py writes the lesson as .ipynb; nbclient runs it cell by cell in an ipykernel,
from a folder outside the repository (so the lesson cannot lean on ``lessons/`` being the working
directory), with quick mode asked for the only way a notebook can: ``MINIGEN_QUICK=1`` in the
kernel's environment. The kernel's own arguments (``-f kernel-*.json``) are on its command line,
as they are for a learner. Each figure the lesson saves must also show inline, once, in the
notebook's outputs. Lessons 01 and 05 run in the default suite, the others in the slow one.
"""

import base64
import os
import subprocess
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted(p.stem for p in (ROOT / "lessons").glob("[0-9][0-9]_*.py"))
DEFAULT = {"01_autograd", "05_vae"}


def run_notebook(lesson, folder, monkeypatch):
    """Write ``lesson`` as a notebook into ``folder``, execute it there; return the notebook."""
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "notebooks.py"), str(folder), lesson[:2]],
        check=True,
        capture_output=True,
        text=True,
    )
    path = folder / f"{lesson}.ipynb"
    nb = nbformat.read(path, as_version=4)
    # what the kernel inherits: quick mode, no progress bars, this checkout's minigen
    monkeypatch.setenv("MINIGEN_QUICK", "1")
    monkeypatch.setenv("MINIGEN_PROGRESS", "0")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as for a learner
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails
    return nb


def printed(nb):
    """Everything the notebook's cells printed."""
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "stream"
    )


def shown_images(nb):
    """The PNG bytes of every image the notebook's cells displayed, in order."""
    return [
        base64.b64decode(out["data"]["image/png"])
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "image/png" in out.get("data", {})
    ]


def check_ran(nb, lesson, folder):
    """Every code cell ran; the lesson saved PNGs, and showed each of them inline, once."""
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code), "a code cell did not run"
    figures = sorted((folder / "figures" / lesson).rglob("*.png"))
    assert figures, f"{lesson} saved no figure under {folder / 'figures' / lesson}"
    for png in figures:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    shown = shown_images(nb)
    assert len(shown) == len(figures), (
        f"{lesson} saved {len(figures)} figures and showed {len(shown)} images inline"
    )
    missing = [png.name for png in figures if png.read_bytes() not in shown]
    assert not missing, f"{lesson} saved figures it did not show inline: {missing}"


def test_notebook_helper_is_inlined(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "notebooks.py"), str(tmp_path), "5"], check=True
    )
    assert [p.name for p in tmp_path.iterdir()] == ["05_vae.ipynb"]
    source = "\n".join(c.source for c in nbformat.read(tmp_path / "05_vae.ipynb", 4).cells)
    assert "from _setup import" not in source and "def setup(" in source


def test_unknown_lesson_number_is_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "notebooks.py"), str(tmp_path), "42"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "no lesson numbered 42" in result.stderr


def test_lesson_01_in_a_kernel(tmp_path, monkeypatch):
    nb = run_notebook("01_autograd", tmp_path, monkeypatch)
    check_ran(nb, "01_autograd", tmp_path)
    text = printed(nb)
    assert "hand-made engine" in text and "minigen" in text
    assert (tmp_path / "figures" / "01_autograd" / "graph.png").exists()


def test_lesson_05_in_a_kernel(tmp_path, monkeypatch):
    nb = run_notebook("05_vae", tmp_path, monkeypatch)
    check_ran(nb, "05_vae", tmp_path)
    quick = "512 training images, 1 epoch(s)"
    assert quick in printed(nb), "MINIGEN_QUICK=1 did not pick quick mode"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", sorted(set(LESSONS) - DEFAULT))
def test_lesson_in_a_kernel(lesson, tmp_path, monkeypatch):
    nb = run_notebook(lesson, tmp_path, monkeypatch)
    check_ran(nb, lesson, tmp_path)


@pytest.mark.parametrize(
    "argv, env, message",
    [
        (["--bogus"], {}, "unrecognized arguments: --bogus"),
        ([], {"MINIGEN_QUICK": "yes"}, "MINIGEN_QUICK is 'yes'; set it to 1"),
    ],
)
def test_a_script_still_refuses_bad_options(argv, env, message, tmp_path):
    """Outside a kernel an unknown argument is an error; so is a MINIGEN_QUICK not 0 or 1."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "lessons" / "01_autograd.py"), "--out", str(tmp_path), *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **env},
    )
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
