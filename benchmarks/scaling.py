"""Data-parallel scaling: measured on this machine, projected to many processes.

For each reference model, one training step (``train_step``, as
benchmarks/steps.py times it) is timed twice on real Fashion-MNIST batches:

- 1 process x 2 threads, batch b (the reference batch size);
- 2 processes x 1 thread each under ``mpiexec -n 2``, batch b each, so
  2b images per step, the gradients averaged (minigen/distributed.py).

It prints steps/s and images/s of both, the bytes all-reduced per step (every
gradient of the step, once per optimizer step) and the time of one allreduce
of that many bytes between the two local processes.

From these it projects to N processes on a network of a stated bandwidth B and
latency L (``--bandwidth`` in Gbit/s, ``--latency`` in microseconds). A ring
allreduce of S bytes over N processes takes

    t_ring(N) = 2 (N - 1) / N * S / B  +  2 (N - 1) * L     (per allreduce call)

minigen reduces after the backward pass, with no overlap, so a step of N
processes (batch b each) takes t(N) = t_compute + t_ring(N) summed over the
step's calls (its optimizer steps, plus one for the losses the training loop
averages), where t_compute = the 2-process step less its measured allreduce.
Efficiency = t_compute / t(N): the share of a process's time spent computing.
A model "stops gaining" where efficiency falls below 50%: from there on,
each added process adds less than half a process's worth of images/s.

    python benchmarks/scaling.py                              # all seven
    python benchmarks/scaling.py --models mlp-vae --steps 3 --warmup 1   # a smoke test
    python benchmarks/scaling.py --bandwidth 100 --latency 5  # another network

It needs the mpi extra (pip install "minigen[mpi]"); as root, Open MPI also
needs OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1. Run it on
an otherwise idle machine with at least 2 cores.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.modules.setdefault("torch", None)  # steps.py's PyTorch twins are not needed: a faster start

import numpy as np  # noqa: E402
import steps  # noqa: E402  (benchmarks/steps.py: the model list, the stepper, the summary)

from minigen import backend, data, distributed, models  # noqa: E402

SIZES = (2, 8, 64, 512)
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--models", nargs="+", default=list(steps.MODEL_NAMES), choices=steps.MODEL_NAMES
    )
    p.add_argument("--steps", type=int, default=30, help="timed steps per model and setting")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before timing")
    p.add_argument("--repeats", type=int, default=20, help="timed allreduces of a step's bytes")
    p.add_argument("--bandwidth", type=float, default=25.0, help="network Gbit/s (default 25)")
    p.add_argument("--latency", type=float, default=10.0, help="network latency in µs (default 10)")
    p.add_argument("--worker", metavar="MODEL", help=argparse.SUPPRESS)  # one measurement
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.repeats < 1:
        p.error("--steps and --repeats must be >= 1, --warmup >= 0")
    return args


# ------------------------------------------------------ one measurement (a worker)


def measure(name, args):
    """Time ``name``'s steps in this process (one of 1 or N); rank 0 returns a dict."""
    world = distributed.world()
    backend.manual_seed(0)
    model = models.build(name)
    optimizers = model.make_optimizers()
    world.seed(0, 0)
    world.attach(model, optimizers)
    b = model.batch_size
    images, _ = data.load("fashion-mnist")
    source = data.batches(
        images, None, b * world.size, scale=model.scale, seed=0, shard=(world.rank, world.size)
    )
    batches = [x for _, (x, _) in zip(range(8), source)]

    sent = {"bytes": 0, "calls": 0}
    reduce = world.allreduce_sum

    def counted(flat):  # the step's allreduces, counted as they go
        sent["bytes"] += flat.nbytes
        sent["calls"] += 1
        reduce(flat)

    world.allreduce_sum = counted
    step = steps.stepper(model, optimizers, batches)
    for _ in range(args.warmup):
        step()
    sent.update(bytes=0, calls=0)
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    result = {
        "batch": b,
        "size": world.size,
        "ms": steps.summary(seconds)[0],
        "bytes": sent["bytes"] / args.steps,
        "calls": sent["calls"] / args.steps,
        "transport": world.transport,
    }
    if world.size > 1:
        result["allreduce_ms"] = allreduce_ms(world, int(result["bytes"]) // 4, args.repeats)
    return result if world.is_main else None


def allreduce_ms(world, count, repeats):
    """Median ms of one allreduce of ``count`` float32 (a step's gradients in one buffer)."""
    flat = backend.xp().zeros(max(count, 1), dtype=np.float32)
    world.comm.Barrier()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        world.allreduce_sum(flat)
        seconds.append(time.perf_counter() - start)
    return steps.summary(seconds)[0]


# ---------------------------------------------------------------- the driver


def run_worker(name, args, processes, threads):
    """Launch one measurement: ``processes`` processes of ``threads`` threads each."""
    env = {**os.environ, **{var: str(threads) for var in THREAD_VARS}}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    command = [sys.executable, __file__, "--worker", name]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    command += ["--repeats", str(args.repeats)]
    if processes > 1:
        command = [mpiexec(), "-n", str(processes), *command]
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{name} on {processes} process(es) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def mpiexec():
    found = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}"
                         f"{os.environ.get('PATH', '')}")  # fmt: skip
    if found is None:
        raise SystemExit('no mpiexec found: pip install "minigen[mpi]" (mpi4py and Open MPI)')
    return found


def ring_seconds(n, nbytes, bandwidth, latency):
    """One ring allreduce of ``nbytes`` over ``n`` processes: 2(n-1)/n S/B + 2(n-1) L."""
    return 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency


def projection(row, bandwidth, latency, n):
    """(step seconds, efficiency) at n processes, batch b each."""
    calls = row["calls"] + 1  # + the losses' allreduce of the training loop
    comm = ring_seconds(n, row["bytes"], bandwidth, 0) + calls * ring_seconds(n, 0, 1, latency)
    return row["compute"] + comm, row["compute"] / (row["compute"] + comm)


def half_efficiency(row, bandwidth, latency, limit=1 << 20):
    """The smallest N with efficiency below 50%, or None up to ``limit``."""
    n = 2
    while n <= limit:
        if projection(row, bandwidth, latency, n)[1] < 0.5:
            lo = n // 2 + 1  # the first one in (n/2, n]: efficiency falls with N
            while lo < n:
                mid = (lo + n) // 2
                if projection(row, bandwidth, latency, mid)[1] < 0.5:
                    n = mid
                else:
                    lo = mid + 1
            return n
        n *= 2
    return None


def main(args):
    bandwidth, latency = args.bandwidth * 1e9 / 8, args.latency * 1e-6  # bytes/s, s
    rows = []
    for name in args.models:
        one = run_worker(name, args, 1, 2)
        two = run_worker(name, args, 2, 1)
        row = {"name": name, "batch": one["batch"], "one": one, "two": two}
        row["bytes"], row["calls"] = two["bytes"], two["calls"]
        measured = two["allreduce_ms"] * 1e-3
        row["compute"] = max(two["ms"] * 1e-3 - measured, 1e-6)
        rows.append(row)
        print(f"  {name} measured", flush=True)
    first = rows[0]["two"]["transport"] if rows else "?"
    print(
        f"\ndata-parallel steps on {os.cpu_count()} CPUs; 2 processes: gradients by {first}; "
        f"median of {args.steps} steps after {args.warmup} warm-up"
    )
    print(
        f"{'model':<9} {'batch':>5} | {'1 x 2 threads':>18} | {'2 x 1 thread (2 b/step)':>27} | "
        f"{'allreduced/step':>18} | {'allreduce':>9}"
    )
    print(
        f"{'':<9} {'b':>5} | {'steps/s':>8} {'img/s':>9} | {'steps/s':>8} {'img/s':>9} "
        f"{'speedup':>8} | {'MB':>7} {'calls':>10} | {'ms':>9}"
    )
    for r in rows:
        one, two = r["one"], r["two"]
        img1 = r["batch"] * 1e3 / one["ms"]
        img2 = 2 * r["batch"] * 1e3 / two["ms"]
        print(
            f"{r['name']:<9} {r['batch']:>5} | {1e3 / one['ms']:>8.2f} {img1:>9.0f} | "
            f"{1e3 / two['ms']:>8.2f} {img2:>9.0f} {img2 / img1:>7.2f}x | "
            f"{r['bytes'] / 1e6:>7.2f} {r['calls']:>10.2f} | {two['allreduce_ms']:>9.3f}"
        )
    print(
        f"\nprojection: N processes x batch b, ring allreduce at {args.bandwidth:g} Gbit/s and "
        f"{args.latency:g} µs latency, no overlap with compute; step ms (efficiency)"
    )
    print(
        f"{'model':<9} {'compute':>8} | "
        + " | ".join(f"{'N=' + str(n):>15}" for n in SIZES)
        + " | below 50% from"
    )
    for r in rows:
        cells = []
        for n in SIZES:
            t, eff = projection(r, bandwidth, latency, n)
            cells.append(f"{t * 1e3:>8.1f} ({eff:>4.0%})")
        n_half = half_efficiency(r, bandwidth, latency)
        print(
            f"{r['name']:<9} {r['compute'] * 1e3:>8.1f} | "
            + " | ".join(cells)
            + f" | {'N = ' + str(n_half) if n_half else 'never (N <= 2^20)'}"
        )
    print(
        "compute = the 2-process step less its measured allreduce; each added process adds "
        "less than half its images/s past the last column's N"
    )


if __name__ == "__main__":
    ARGS = parse_args()
    if ARGS.worker:
        found = measure(ARGS.worker, ARGS)
        if found is not None:
            print(json.dumps(found))
    else:
        main(ARGS)
