"""Check minigen on a machine with a GPU: one command, a summary at the end.

    python tools/gpu_check.py                    # everything, on CuPy
    python tools/gpu_check.py --only train       # one part: suite, lessons, train, bench

Parts:

1. suite: the default test suite with ``MINIGEN_BACKEND=cupy``;
2. lessons: each lesson with ``--quick --backend cupy``;
3. train: a short run of each model on CuPy and on NumPy from the same seed,
   step by step; float32 kernels differ in rounding, so the losses are close,
   not equal: the worst relative difference is reported per model;
4. bench: ``benchmarks/steps.py --backend cupy``.

Without a usable GPU it says why and exits with status 2 before running
anything. ``--backend strict`` runs the same parts on the CPU stand-in (a dry
run of this script).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import minigen  # noqa: E402
from minigen import data, train  # noqa: E402
from minigen.models import MODELS  # noqa: E402

PARTS = ("suite", "lessons", "train", "bench")
TRAIN_IMAGES = 1024  # a short run: a few steps per model
TOLERANCE = 1e-3  # worst relative loss difference accepted over a short run


def gpu_problem(name):
    """Why backend ``name`` cannot run here, or None when it can."""
    try:
        minigen.use_backend(name)  # for cupy: finds the GPU and runs a smoke computation
    except minigen.BackendError as e:
        return str(e)
    finally:
        minigen.use_backend("numpy")
    return None


def run(command, env_backend):
    """Run a command from the repository root with MINIGEN_BACKEND set; True if it passed."""
    env = {**os.environ, "MINIGEN_BACKEND": env_backend, "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, cwd=ROOT, env=env).returncode == 0


def check_suite(name):
    return run([sys.executable, "-m", "pytest", "-m", "not slow", "-q"], name), ""


def check_lessons(name):
    failed = []
    with tempfile.TemporaryDirectory() as out:
        for lesson in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py")):
            command = [sys.executable, str(lesson), "--quick", "--backend", name, "--out", out]
            if not run(command, name):
                failed.append(lesson.name)
    return not failed, f"failed: {', '.join(failed)}" if failed else "all ten"


def losses_on(name, model, images, seed=0):
    """Per-step losses of a one-epoch run of ``model`` on backend ``name``."""
    minigen.use_backend(name)
    try:
        _, _, history = train.train(model, 1, images=images, seed=seed, quiet=True)
    finally:
        minigen.use_backend("numpy")
    return history


def worst_difference(reference, other):
    """The largest relative difference between two histories, step by step."""
    worst = 0.0
    for key, values in reference.items():
        for a, b in zip(values, other[key], strict=True):
            worst = max(worst, abs(a - b) / max(abs(a), 1e-6))
    return worst


def check_train(name, models, images=None, reference="numpy"):
    """Each model trained on ``name`` and on ``reference`` from the same seed."""
    if images is None:
        images = data.load("fashion-mnist", split="train")[0][:TRAIN_IMAGES]
    rows, ok = [], True
    for model in models:
        ref = losses_on(reference, model, images)
        worst = worst_difference(ref, losses_on(name, model, images))
        ok &= worst <= TOLERANCE
        rows.append(f"{model} {worst:.2e}")
        print(f"train {model}: worst relative loss difference {name} vs {reference}: {worst:.2e}")
    return ok, "; ".join(rows)


def check_bench(name):
    return run([sys.executable, "benchmarks/steps.py", "--backend", name], name), ""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="cupy", choices=("cupy", "strict"))
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = parser.parse_args(argv)

    problem = gpu_problem(args.backend)
    if problem is not None:
        print(f"gpu_check: no usable GPU here, nothing was run.\n{problem}", file=sys.stderr)
        return 2
    checks = {
        "suite": lambda: check_suite(args.backend),
        "lessons": lambda: check_lessons(args.backend),
        "train": lambda: check_train(args.backend, args.models),
        "bench": lambda: check_bench(args.backend),
    }
    results = []
    for part in args.only:
        start = time.perf_counter()
        ok, note = checks[part]()
        results.append((part, ok, time.perf_counter() - start, note))
    print(f"\n=== gpu_check on backend {args.backend}")
    for part, ok, seconds, note in results:
        print(f"{part:8s} {'PASS' if ok else 'FAIL'} {seconds:7.1f} s  {note}")
    return 0 if all(ok for _, ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
