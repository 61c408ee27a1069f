"""Write the lessons as Jupyter notebooks.

    python tools/notebooks.py notebooks/                # every lesson
    python tools/notebooks.py notebooks/ 01 05          # lessons 01 and 05

Each lesson is a plain script in ``# %%`` cells (the "percent" format), which jupytext reads:
a ``# %% [markdown]`` cell becomes a text cell, any other cell a code cell. One change is made
on the way: the lesson's ``from _setup import ...`` is replaced by a cell holding the helper
itself (``lessons/_setup.py``), so that a notebook needs nothing but an installed minigen and
runs from any folder, on a hosted notebook too.

In a notebook, ``MINIGEN_QUICK=1`` in the kernel's environment (or ``%env MINIGEN_QUICK=1`` in a
first cell) stands for ``--quick``. jupytext and nbformat come with ``pip install ".[test]"``;
minigen itself does not need them.
"""

import argparse
import ast
import re
import sys
from pathlib import Path

import jupytext
import nbformat

LESSONS = Path(__file__).resolve().parent.parent / "lessons"
HELPER = LESSONS / "_setup.py"
HELPER_IMPORT = re.compile(r"^from _setup import .*(\n|$)", re.MULTILINE)
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def helper_cells():
    """The helper as two cells: its docstring as text, its code as code."""
    source = HELPER.read_text()
    module = ast.parse(source)
    docstring = ast.get_docstring(module)
    code = "\n".join(source.splitlines()[module.body[0].end_lineno :]).strip()
    intro = (
        "### The lesson's helper\n\n"
        "`lessons/_setup.py`, copied in so that this notebook needs only an installed minigen.\n\n"
        + docstring
    )
    return [nbformat.v4.new_markdown_cell(intro), nbformat.v4.new_code_cell(code)]


def lesson_notebook(path):
    """The lesson at ``path`` as a notebook, with its helper inlined before first use."""
    nb = jupytext.read(path, fmt="py:percent")
    first = nb.cells[0]
    if first.cell_type == "code" and ast.get_docstring(ast.parse(first.source)) is not None:
        # a module docstring alone in the first cell reads better as text
        nb.cells[0] = nbformat.v4.new_markdown_cell(ast.get_docstring(ast.parse(first.source)))
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and HELPER_IMPORT.search(cell.source):
            cells += helper_cells()
            cell.source = HELPER_IMPORT.sub("", cell.source).strip()
        cells.append(cell)
    nb.cells = cells
    nb.metadata = {"kernelspec": KERNEL, "language_info": {"name": "python"}}
    return nb


def write_notebooks(out, lessons=None):
    """Write ``NN_name.ipynb`` into ``out`` for each lesson (all, or those numbered in
    ``lessons``); return the paths written."""
    paths = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
    if lessons:
        unknown = set(lessons) - {p.name[:2] for p in paths}
        if unknown:
            raise SystemExit(
                f"no lesson numbered {', '.join(sorted(unknown))}; "
                f"the lessons are {', '.join(p.name[:2] for p in paths)}"
            )
        paths = [p for p in paths if p.name[:2] in lessons]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        nb = lesson_notebook(path)
        nbformat.validate(nb)
        target = out / (path.stem + ".ipynb")
        nbformat.write(nb, target)
        written.append(target)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder for the .ipynb files")
    parser.add_argument("lessons", nargs="*", help="lesson numbers, e.g. 01 05 (default: all)")
    args = parser.parse_args(argv)
    try:
        written = write_notebooks(args.out, [n.zfill(2) for n in args.lessons])
    except OSError as e:  # OUT is a file, or a folder that cannot be written: one line
        file = Path(args.out).exists() and not Path(args.out).is_dir()
        parser.exit(
            1, f"{parser.prog}: error: cannot write notebooks to {args.out} "
            f"({'it is a file' if file else e.strerror or e}); pass a folder you can write\n",
        )  # fmt: skip
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
