"""What every solution script shares: its options, its data, and running its exercises.

A solution file (``lessons/solutions/05_vae.py``) holds one function per exercise of
its lesson, ``exercise_1`` ... ``exercise_n``, in the order the lesson lists them;
each function's docstring starts with the exercise's title, and the function prints
the quantity the exercise asks for, computed. ``run_exercises`` runs them all (or
the one ``--exercise K`` names) and prints a heading before each:

    python lessons/solutions/05_vae.py --quick          # every exercise, seconds
    python lessons/solutions/05_vae.py --exercise 2     # one exercise, its full size

The options are the lessons' own (``--quick``, ``--seed``, ``--backend``, ``--dataset``;
``MINIGEN_QUICK=1`` stands for ``--quick``, as in a lesson), parsed by
``lessons/_setup.py``. In a quick run the data are the same small slice a quick lesson
uses, and every loop is cut short: the printed numbers then only show that the solution
runs; the full run (without ``--quick``) gives the answers the exercises ask about.
"""

import argparse
import inspect
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # lessons/, for _setup

from _setup import QUICK_TEST, QUICK_TRAIN, parse_options, start_lesson  # noqa: E402

import minigen  # noqa: E402
from minigen import data  # noqa: E402
from minigen.argtypes import nonnegative_int, positive_int  # noqa: E402
from minigen.errors import MinigenError  # noqa: E402


class Data:
    """The lesson's images, read once on first use: ``train`` (uint8 (N, 28, 28)),
    ``test`` and ``test_labels``; in a quick run, the quick lessons' slices."""

    def __init__(self, dataset, quick):
        self.dataset, self.quick = dataset, quick
        self._loaded = None

    def _load(self):
        if self._loaded is None:
            try:
                train, _ = data.read(data.locate(self.dataset, split="train"))
                test, labels = data.load(self.dataset, split="test")
            except (MinigenError, OSError) as e:
                sys.exit(f"solutions: error: {' '.join(str(e).split())}")
            if self.quick:
                train, test, labels = train[:QUICK_TRAIN], test[:QUICK_TEST], labels[:QUICK_TEST]
            self._loaded = train, test, labels
        return self._loaded

    @property
    def train(self):
        return self._load()[0]

    @property
    def test(self):
        return self._load()[1]

    @property
    def test_labels(self):
        return self._load()[2]


def exercises_of(namespace):
    """The functions exercise_1, exercise_2, ... of a solution module, in order."""
    found = {}
    for name, f in namespace.items():
        if name.startswith("exercise_") and callable(f):
            found[int(name.split("_")[1])] = f
    assert sorted(found) == list(range(1, len(found) + 1)), "exercises must be numbered 1..n"
    return [found[k] for k in sorted(found)]


def run_exercises(lesson, namespace):
    """Parse the options, then run the exercises of ``namespace`` (a module's ``globals()``),
    each as ``exercise_k(args, images)``, with a heading naming it and its time."""
    exercises = exercises_of(namespace)
    parser = argparse.ArgumentParser(description=f"Worked solutions to the exercises of {lesson}")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny data, short loops")
    parser.add_argument(
        "--exercise", type=positive_int, default=None, help="run only this exercise (1, 2, ...)"
    )
    parser.add_argument(
        "--backend",
        choices=minigen.backend.NAMES,
        default=None,
        help="numpy (default), cupy or strict",
    )
    parser.add_argument("--dataset", choices=list(data.CLASSES), default="fashion-mnist")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    args = parse_options(parser)
    if args.exercise is not None and args.exercise > len(exercises):
        parser.error(f"--exercise {args.exercise}: {lesson} has exercises 1 to {len(exercises)}")
    args.out = "."  # start_lesson wants a folder; the solutions write no files
    start_lesson(f"solutions to {lesson}", args)
    if args.quick:
        print("--quick: a smoke test on a small slice; its numbers mean nothing.")
    images = Data(args.dataset, args.quick)
    for k, exercise in enumerate(exercises, start=1):
        if args.exercise not in (None, k):
            continue
        title = inspect.getdoc(exercise).splitlines()[0]
        print(f"\n== Exercise {k}: {title}")
        began = time.perf_counter()
        minigen.manual_seed(args.seed)
        exercise(args, images)
        print(f"   ({time.perf_counter() - began:.1f} s)")
