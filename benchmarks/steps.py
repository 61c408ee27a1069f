"""Time one full training step of each reference model, minigen vs PyTorch.

One step is what the model's ``train_step`` does: every forward pass, the
losses, every backward pass and the optimizer update of every network (for
a GAN one D update and one G update; for WGAN-GP one critic update, and a G
update on every fifth: the median is that of a critic-only step). It runs on
real Fashion-MNIST batches at the reference batch sizes (docs/reference-models.md), float32.

When PyTorch is installed, the PyTorch twin of each model
(benchmarks/twins.py) starts from minigen's weights; one step of each, on
the same batch with the same noise, must give the same losses (the largest
relative difference is printed: a correctness check of minigen and of the
twin). Then the two alternate in short blocks (minigen, PyTorch, PyTorch,
minigen, ...; a pause and one untimed step before each block, as
benchmarks/layers.py does), so machine drift hits both; each gets ``--steps``
timed steps after ``--warmup`` untimed ones.

Per model the table gives the median step time with its interquartile
range, the ratio minigen / PyTorch, images per second, and:

- the floor: the step's GEMM FLOPs divided by the machine's best float32
  GEMM rate (NumPy, and PyTorch when present, on 1024^3 and 2048^3 products
  at the same thread count). FLOPs are counted while minigen runs one step:
  2*m*n*k for each matrix product that autograd actually performs
  (Linear: forward, dx, dW; Conv2d: its im2col GEMMs; ConvTranspose2d: the
  GEMM of its forward, the adjoint, and its two backward GEMMs; VQ-VAE: the
  code-distance GEMM). A backward GEMM counts only where a gradient is
  needed: no dx for a first layer whose input needs none (D's first layer on
  real images, G's first layer on z, the encoder's on x). Elementwise work,
  BatchNorm, losses, im2col copies and Adam are not counted, so the floor is
  a lower bound. With PyTorch present the count is checked against
  torch.utils.flop_counter on the twin's step, less the products that
  PyTorch runs on an all-zero operand (``counting_torch_flops``: its
  LeakyReLU's second derivative is a tensor of zeros, which WGAN-GP's
  penalty pushes back through the critic; minigen does not run those).
- peak memory of one step, above what was allocated before it (activations,
  gradients, temporaries; not the weights or Adam's state). minigen on NumPy:
  tracemalloc (NumPy reports its allocations to it); on CuPy: the memory
  pool's growth. PyTorch on CPU: its profiler's allocation events; on CUDA:
  torch.cuda.max_memory_allocated.

Finally ``--memory-steps`` minigen steps per model check that memory stays
flat (no graph or array survives a step): resident memory (/proc/self/statm)
and live minigen Tensors after step 10 and after the last step.

    python benchmarks/steps.py                       # all seven, 2 threads
    python benchmarks/steps.py --models mlp-gan dcgan --steps 10 --memory-steps 50
    python benchmarks/steps.py --backend cupy        # minigen on CuPy, PyTorch on CUDA
    python benchmarks/steps.py --profile dcgan       # where one step's time goes
    python benchmarks/steps.py --models dcgan --copy-threads 2   # copies on two threads

Each row is checked against its target (issue 13): the ratio minigen / PyTorch
at most ``TARGETS[model]`` and minigen's peak at most 1.5x PyTorch's; the
last column says ok, or SLOW / MEMORY where a target is missed.

``--profile MODEL`` times one model's steps and prints, per
autograd Function, the milliseconds per step spent in its forward and in its
backward, the optimizer steps, the im2col / col2im / sub-pixel kernels and every
GEMM (parts of the Functions' time), and what remains: Python, the autograd
engine, the losses' reductions, then the step's wall time and its CPU time (all
threads). With PyTorch present it then profiles the twin's step by kind of
operator (convolutions, matrix products, optimizer, batch norm, the rest).
On a shared machine wall times say little: compare the CPU times of runs with
OPENBLAS_NUM_THREADS=1. It is the place to start before changing anything.

PyTorch is only a yardstick, never a dependency of minigen; without it the
script prints the minigen columns alone.
"""

import argparse
import gc
import itertools
import math
import os
import statistics
import sys
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

MODEL_NAMES = ("mlp-gan", "mlp-vae", "dcgan", "conv-vae", "vq-vae", "vae-gan", "wgan-gp")
# Issue 6: PyTorch 2.13 on 2 CPU cores (2 threads), ms per step, and the floor in ms
# (wgan-gp came later and has none).
REFERENCE = {
    "mlp-gan": (11.6, 3.5),
    "mlp-vae": (5.4, 2.0),
    "dcgan": (72.8, 49.4),
    "conv-vae": (25.5, 13.1),
    "vq-vae": (33.8, 13.0),
    "vae-gan": (137.9, 75.0),
}

# Issue 13: the ratio minigen / PyTorch each model must reach, and the peak factor.
TARGETS = {
    "mlp-gan": 0.8,
    "mlp-vae": 0.7,
    "dcgan": 1.2,
    "conv-vae": 1.2,
    "vq-vae": 1.2,
    "vae-gan": 1.3,
    "wgan-gp": 1.2,
}
PEAK_TARGET = 1.5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    p.add_argument("--steps", type=int, default=30, help="timed steps per model and framework")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before timing")
    p.add_argument("--block", type=int, default=3, help="timed steps per alternating block")
    p.add_argument("--pause", type=float, default=0.05, help="seconds of rest before a block")
    p.add_argument("--backend", default="numpy", choices=("numpy", "cupy", "strict"))
    p.add_argument("--memory-steps", type=int, default=1000, help="steps of the flatness check")
    p.add_argument("--threads", type=int, default=2, help="BLAS / PyTorch threads")
    p.add_argument("--no-torch", action="store_true", help="minigen alone, even with PyTorch")
    p.add_argument(
        "--copy-threads",
        type=int,
        help="threads of the conv copies on NumPy (minigen.nn.conv.COPY_THREADS; default 1)",
    )
    p.add_argument(
        "--profile",
        metavar="MODEL",
        choices=MODEL_NAMES,
        help="print where one step of MODEL spends its time, per Function, and exit",
    )
    args = p.parse_args(argv)
    if args.memory_steps and args.memory_steps <= 10:
        p.error("--memory-steps compares step 10 with the last: give 0 (no check) or more than 10")
    return args


if __name__ == "__main__":
    ARGS = parse_args()
    # Thread counts must be set before NumPy's BLAS starts; a value already in
    # the environment wins (and is printed).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(ARGS.threads))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402  (host data, the GEMM rate)

import minigen  # noqa: E402
from minigen import backend, data, models, optim  # noqa: E402
from minigen.autograd import Function, Tensor  # noqa: E402
from minigen.models.vqvae import VectorQuantizer  # noqa: E402
from minigen.nn import conv  # noqa: E402
from minigen.nn.layers import LinearFunction  # noqa: E402
from minigen.ops import MatMul  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

# ---------------------------------------------------------------- FLOP counting

GEMM_FUNCTIONS = (LinearFunction, MatMul)


def forward_gemm_flops(cls, arrays, out):
    """2*m*n*k of the GEMM a Linear or MatMul forward performs: every output
    element sums in (Linear: weight.shape[1]) or a.shape[-1] (MatMul) products."""
    x, w = arrays[0], arrays[1]
    return 2 * out.size * (w.shape[1] if cls is LinearFunction else x.shape[-1])


@contextmanager
def counting_gemm_flops():
    """Count the GEMM FLOPs of everything minigen computes inside; yields a dict
    whose "flops" grows. Backward passes are made of forwards (a Linear's dx
    and dW are MatMuls) and of the convolution kernels (``conv.conv_gemms``,
    ``conv.col2im_matmul``, ``conv.subpixel_matmul``), so counting those counts every
    GEMM once, as it runs."""
    counter = {"flops": 0}
    saved = [(cls, cls.forward) for cls in GEMM_FUNCTIONS]
    kernels = conv.conv_gemms, conv.col2im_matmul, conv.subpixel_matmul
    nearest = VectorQuantizer.nearest

    def wrap(cls, forward):
        def counted_forward(self, *arrays, **params):
            out = forward(self, *arrays, **params)
            counter["flops"] += forward_gemm_flops(cls, arrays, out)
            return out

        cls.forward = counted_forward

    def counted_conv_gemms(x, kh, kw, stride=1, padding=0, weight=None, g=None):
        y, dw = kernels[0](x, kh, kw, stride, padding, weight=weight, g=g)
        columns = x.shape[1] * kh * kw  # rows of the column matrix
        m = (y if y is not None else g).shape[1]  # its columns, OH*OW*N
        for product in (weight, g):
            if product is not None:
                counter["flops"] += 2 * product.shape[0] * columns * m
        return y, dw

    def counted_col2im_matmul(weight, g2, shape, *args, **kwargs):
        c, kh, kw = shape[:3]
        counter["flops"] += 2 * weight.shape[0] * c * kh * kw * g2.shape[1]
        return kernels[1](weight, g2, shape, *args, **kwargs)

    def counted_subpixel_matmul(weight, x, *args, **kwargs):  # as col2im: every tap and input
        cin, cout, kh, kw = weight.shape
        counter["flops"] += 2 * cin * cout * kh * kw * x.shape[0] * x.shape[2] * x.shape[3]
        return kernels[2](weight, x, *args, **kwargs)

    def counted_nearest(self, flat):  # distances: (M, D) @ (D, K)
        counter["flops"] += 2 * flat.shape[0] * flat.shape[1] * self.codebook.shape[0]
        return nearest(self, flat)

    try:
        for cls, forward in saved:
            wrap(cls, forward)
        conv.conv_gemms, conv.col2im_matmul = counted_conv_gemms, counted_col2im_matmul
        conv.subpixel_matmul = counted_subpixel_matmul
        VectorQuantizer.nearest = counted_nearest
        yield counter
    finally:
        for cls, forward in saved:
            cls.forward = forward
        conv.conv_gemms, conv.col2im_matmul, conv.subpixel_matmul = kernels
        VectorQuantizer.nearest = nearest


def step_flops(step):
    """GEMM FLOPs of one call of ``step`` (a minigen training step)."""
    with counting_gemm_flops() as counter:
        step()
    return counter["flops"]


# The operands of each counted PyTorch product that multiply (not a bias that
# is added): when one is all zeros, the product is all zeros too.
FACTORS = {"mm": (0, 1), "addmm": (1, 2), "convolution": (0, 1), "convolution_backward": (0,)}


@contextmanager
def counting_torch_flops():
    """Count the FLOPs PyTorch computes inside, as torch.utils.flop_counter
    does, less those of products with an all-zero factor; yields a dict whose
    "flops" (that difference) and "zero" (what was taken off) are set on exit.

    Why take those off: the derivative of LeakyReLU's backward with respect to
    its input is zero, and PyTorch returns it as a tensor of zeros, not as "no
    gradient". Differentiating a gradient (WGAN-GP's penalty) then sends those
    zeros back through every earlier layer, full GEMMs of zeros. minigen knows
    that path carries nothing and skips it; counting only nonzero products
    compares the work that matters."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode, flop_registry

    counter = {"flops": 0, "zero": 0}

    class ZeroProducts(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            packet = func._overloadpacket
            factors = FACTORS.get(packet.__name__, ())
            if packet in flop_registry and any(not args[i].any() for i in factors):
                counter["zero"] += flop_registry[packet](*args, **kwargs, out_val=out)
            return out

    with FlopCounterMode(display=False) as total, ZeroProducts():
        yield counter
    counter["flops"] = total.get_total_flops() - counter["zero"]


def torch_step_flops(step):
    """FLOPs of one twin step, as ``counting_torch_flops`` counts them."""
    with counting_torch_flops() as counter:
        step()
    return counter["flops"]


# ------------------------------------------------------------ machine GEMM rate


def gemm_rate(matmul, make, sync, sizes=(1024, 2048), repeats=3):
    """Best float32 GEMM rate, FLOP/s, over a few n x n products."""
    best = 0.0
    rng = np.random.default_rng(0)
    for n in sizes:
        a, b = (make(rng.standard_normal((n, n), dtype=np.float32)) for _ in range(2))
        matmul(a, b)  # untimed: thread pools up
        sync()
        for _ in range(repeats):
            start = time.perf_counter()
            matmul(a, b)
            sync()
            best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


# ---------------------------------------------------------------------- memory


@contextmanager
def quiet_fds():
    """Silence C-level stdout/stderr (PyTorch's profiler chatter) inside."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1), os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)


def minigen_peak_bytes(step, sync):
    """Peak memory one minigen step allocates above what it started with."""
    if backend.name() == "cupy":
        pool = backend.xp().get_default_memory_pool()
        sync()
        pool.free_all_blocks()
        base = pool.used_bytes()
        step()
        sync()
        return pool.total_bytes() - base  # the pool keeps what it grew to
    tracemalloc.start()
    try:
        step()  # traced, so that what it leaves (gradients) is traced when freed
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        step()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def torch_peak_bytes(step, device):
    """Peak memory one PyTorch step allocates above what it started with."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile, record_function

    # Two steps, the second measured: frees of blocks allocated before the
    # profiler started (the last step's gradients) would go unreported.
    with quiet_fds(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
        with record_function("measured step"):
            step()
    try:  # every allocation (+) and free (-) the CPU allocator reported, in time order
        events = prof.profiler.kineto_results.events()
        (mark,) = [e for e in events if e.name() == "measured step"]
        memory = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    except (AttributeError, ValueError):  # internals moved: no number rather than a wrong one
        return None
    base = sum(n for t, n in memory if t < mark.start_ns())
    current = peak = base
    for t, n in memory:
        if mark.start_ns() <= t <= mark.end_ns():
            current += n
            peak = max(peak, current)
    return peak - base


def resident_bytes():
    """Resident set size of this process, from /proc/self/statm (Linux)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


def live_tensors():
    gc.collect()
    # type(o), not isinstance: some of torch's lazy objects warn when asked their class
    return sum(1 for o in gc.get_objects() if issubclass(type(o), Tensor))


def memory_flatness(step, steps, sync):
    """Resident memory, live Tensors (and CuPy pool use) after step 10 and the last."""
    marks = {}
    for i in range(1, steps + 1):
        step()
        if i in (min(10, steps), steps):
            sync()
            pool = (
                backend.xp().get_default_memory_pool().used_bytes()
                if backend.name() == "cupy"
                else None
            )
            marks[i] = (resident_bytes(), live_tensors(), pool)
    return marks


# ---------------------------------------------------------------------- timing


def make_sync(torch_device):
    def sync():
        if backend.name() == "cupy":
            backend.xp().cuda.Device().synchronize()
        if torch_device == "cuda":
            torch.cuda.synchronize()

    return sync


def stepper(model, optimizers, batches):
    """A no-argument function: one training step on the next batch (cycling)."""
    cycle = itertools.cycle(batches)
    return lambda: model.train_step(next(cycle), optimizers)


def alternate(steps, n_steps, block, pause, sync):
    """Time the step functions in alternating blocks; per function a list of seconds."""
    times = [[] for _ in steps]
    for r in range(math.ceil(n_steps / block)):
        order = list(range(len(steps)))
        for i in order if r % 2 == 0 else order[::-1]:
            time.sleep(pause)
            steps[i]()  # untimed: caches and thread pools warm again
            for _ in range(block):
                sync()
                start = time.perf_counter()
                steps[i]()
                sync()
                times[i].append(time.perf_counter() - start)
    return [t[:n_steps] for t in times]


def summary(seconds):
    """(median, first quartile, third quartile) in ms."""
    ms = [1e3 * s for s in seconds]
    if len(ms) < 2:
        return ms[0], ms[0], ms[0]
    q1, median, q3 = statistics.quantiles(ms, n=4, method="inclusive")
    return median, q1, q3


# ------------------------------------------------------------------------ main


def thread_report(use_torch):
    env = " ".join(
        f"{v}={os.environ.get(v, 'unset')}"
        for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    )
    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]["name"]
    except (AttributeError, KeyError, TypeError):
        blas = "?"
    line = f"threads: {env}; NumPy {np.__version__} BLAS {blas}"
    if use_torch:
        line += f"; torch.get_num_threads() = {torch.get_num_threads()}"
    line += f"; {os.cpu_count()} CPUs visible"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5:  # this script itself adds about 1 once it runs
        line += (
            f"\nload average {load:.1f} before the run: other processes compete for the CPUs, "
            f"so times are inflated (with fewer free cores than threads, badly so)"
        )
    return line


def run_model(name, images, args, use_torch, torch_device, sync):
    """Check, time and measure one model; returns a dict of results."""
    minigen.manual_seed(0)
    model = models.build(name)
    batch_size = model.batch_size
    source = data.batches(images, None, batch_size, scale=model.scale, seed=0)
    batches = [x for _, (x, _) in zip(range(8), source)]
    out = {"name": name, "batch": batch_size}

    if use_torch:
        import twins

        torch.manual_seed(0)
        twin, ours_opt, theirs_opt, results = twins.agreement(
            model, batches[:1], device=torch_device
        )
        out["agree"] = twins.relative_difference(*results[0])
        t_batches = [twins.to_torch(x, torch_device) for x in batches]
        theirs = stepper(twin, theirs_opt, t_batches)
        out["torch_flops"] = torch_step_flops(theirs)
    else:
        ours_opt = model.make_optimizers()
    ours = stepper(model, ours_opt, batches)
    out["flops"] = step_flops(ours)

    steps = [ours, theirs] if use_torch else [ours]
    for step in steps:
        for _ in range(args.warmup):
            step()
    times = alternate(steps, args.steps, args.block, args.pause, sync)
    out["ms"] = [summary(t) for t in times]
    out["peak"] = [minigen_peak_bytes(ours, sync)]
    if use_torch:
        out["peak"].append(torch_peak_bytes(theirs, torch_device))
    if args.memory_steps:
        out["memory"] = memory_flatness(ours, args.memory_steps, sync)
    return out


def mb(n):
    return "n/a" if n is None else f"{n / 2**20:.1f}"


def print_table(rows, use_torch, rate):
    header = (
        f"{'model':<9}{'batch':>6}  {'minigen ms [IQR]':<22}"
        + (f"{'torch ms [IQR]':<22}{'ratio':>6}" if use_torch else "")
        + f"{'img/s mg':>9}"
        + (f"{'img/s pt':>9}" if use_torch else "")
        + f"{'GFLOP':>7}{'floor ms':>9}{'mg/floor':>9}{'peak MB mg':>11}"
        + (f"{'peak MB pt':>11}{'target':>8}  verdict" if use_torch else "")
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        floor = 1e3 * r["flops"] / rate
        ms = r["ms"]
        cell = lambda m: f"{m[0]:7.2f} [{m[1]:.2f}-{m[2]:.2f}]"  # noqa: E731
        line = f"{r['name']:<9}{r['batch']:>6}  {cell(ms[0]):<22}"
        if use_torch:
            line += f"{cell(ms[1]):<22}{ms[0][0] / ms[1][0]:>6.2f}"
        line += f"{1e3 * r['batch'] / ms[0][0]:>9.0f}"
        if use_torch:
            line += f"{1e3 * r['batch'] / ms[1][0]:>9.0f}"
        line += (
            f"{r['flops'] / 1e9:>7.3f}{floor:>9.2f}{ms[0][0] / floor:>9.1f}{mb(r['peak'][0]):>11}"
        )
        if use_torch:
            line += f"{mb(r['peak'][1]):>11}{TARGETS[r['name']]:>8.2f}  {verdict(r)}"
        print(line)


def verdict(row):
    """ "ok" when a row meets its targets (ratio, and peak against PyTorch's), else
    SLOW and/or MEMORY with the number that misses."""
    ratio = row["ms"][0][0] / row["ms"][1][0]
    misses = []
    if ratio > TARGETS[row["name"]]:
        misses.append(f"SLOW {ratio:.2f} > {TARGETS[row['name']]}")
    ours, theirs = row["peak"]
    if theirs and ours > PEAK_TARGET * theirs:
        misses.append(f"MEMORY {ours / theirs:.1f}x > {PEAK_TARGET}x")
    return ", ".join(misses) or "ok"


# --------------------------------------------------------------------- profile


def function_classes():
    """Every autograd Function subclass minigen defines (ops, layers, losses)."""
    found, todo = [], [Function]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


@contextmanager
def timing_parts(totals):
    """Time, inside, every Function's forward and backward, the optimizers'
    steps and the convolutions' im2col copies, col2im and the sub-pixel
    transposed convolutions (with their GEMMs); adds
    seconds and calls to ``totals[(name, part)]``.

    A backward is made of other Functions' forwards (Linear's dx is a MatMul,
    Conv2d's dx a ConvTranspose2d), so each part counts its own time only,
    without the Functions it calls (their time is theirs): the parts do not
    overlap, except im2col / col2im / sub-pixel, which run inside the convolutions, and
    every GEMM (``xp.matmul``), inside the parts that multiply matrices: these are listed
    after the parts, and not taken off their callers."""
    patched, inner = [], [0.0]  # inner: time of the calls nested in the running part

    def timed(owner, attr, key, exclusive=True):
        original = owner.__dict__[attr]

        def wrapper(*a, **k):
            start, outer = time.perf_counter(), inner[0]
            inner[0] = 0.0
            try:
                return original(*a, **k)
            finally:
                elapsed = time.perf_counter() - start
                entry = totals.setdefault(key, [0.0, 0])
                entry[0] += elapsed - inner[0] if exclusive else elapsed
                entry[1] += 1
                inner[0] = outer + elapsed if exclusive else outer + inner[0]

        setattr(owner, attr, wrapper)
        patched.append((owner, attr, original))

    for cls in function_classes():
        for part in ("forward", "backward"):
            if part in cls.__dict__:
                timed(cls, part, (cls.__name__, part))
    timed(optim.Optimizer, "step", ("optimizer", "step"))
    timed(conv, "fill_columns", ("  im2col", "copy"), exclusive=False)
    timed(conv, "col2im_matmul", ("  col2im", "GEMM+add"), exclusive=False)
    timed(conv, "subpixel_matmul", ("  sub-pixel", "GEMM+copy"), exclusive=False)
    # every matrix product in minigen goes through xp.matmul, so this is all GEMM time
    timed(backend.xp(), "matmul", ("  every GEMM", "matmul"), exclusive=False)
    try:
        yield totals
    finally:
        for owner, attr, original in reversed(patched):
            setattr(owner, attr, original)


def profile(name, images, args, sync, with_twin):
    """Print where the time of one training step of ``name`` goes, and with
    ``with_twin`` (PyTorch on the CPU), where its twin's goes."""
    minigen.manual_seed(0)
    model = models.build(name)
    source = data.batches(images, None, model.batch_size, scale=model.scale, seed=0)
    batches = [x for _, (x, _) in zip(range(8), source)]
    step = stepper(model, model.make_optimizers(), batches)
    for _ in range(args.warmup):
        step()
    totals = {}
    with timing_parts(totals):
        sync()
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(args.steps):
            step()
        sync()
        total = (time.perf_counter() - start) / args.steps
        cpu = (time.process_time() - cpu_start) / args.steps
    per_step = lambda seconds: 1e3 * seconds / args.steps  # noqa: E731
    rows = sorted(totals.items(), key=lambda kv: -kv[1][0])
    counted = sum(sec for (label, _), (sec, _) in rows if not label.startswith(" "))
    print(f"\nprofile of one {name} step, {args.steps} steps, {backend.name()} backend")
    print(f"{'Function':<26}{'part':<10}{'ms/step':>9}{'calls/step':>11}{'share':>7}")
    # the parts first, then the pieces inside them (already in their callers)
    for inside in (False, True):
        if inside and any(label.startswith(" ") for (label, _), _ in rows):
            print("inside the parts above (already counted in them):")
        for (label, part), (sec, calls) in rows:
            if label.startswith(" ") == inside:
                line = f"{label:<26}{part:<10}{per_step(sec):>9.2f}{calls / args.steps:>11.1f}"
                print(line + f"{sec / args.steps / total:>7.0%}")
        if not inside:
            rest = total - counted / args.steps
            print(f"{'other (Python, engine)':<36}{1e3 * rest:>9.2f}{'':>11}{rest / total:>7.0%}")
    print(f"{'step':<36}{1e3 * total:>9.2f}")
    # On a shared machine wall time says little; CPU time with one BLAS thread
    # (OPENBLAS_NUM_THREADS=1) is close to the idle time and compares runs.
    print(f"{'step, CPU time of all threads':<36}{1e3 * cpu:>9.2f}")
    if with_twin:
        torch_profile(model, batches, args)


# PyTorch's operators by kind, for the twin's profile: the first group whose
# words one appears in takes it.
TORCH_GROUPS = (
    ("convolutions", ("convolution", "conv2d", "conv_transpose")),
    ("matrix products (Linear)", ("aten::mm", "aten::addmm", "aten::bmm")),
    ("optimizer (Adam)", ("Optimizer.", "_foreach", "aten::_fused")),
    ("batch norm", ("batch_norm",)),
)


def torch_profile(model, batches, args):
    """The same step's time in the PyTorch twin, by kind of operator (the
    profiler's self CPU time per step, so the kinds add up), to set beside
    minigen's: where PyTorch spends what minigen spends in GEMMs and passes."""
    import twins
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    twin, _, theirs_opt, _ = twins.agreement(model, batches[:1], device="cpu")
    step = stepper(twin, theirs_opt, [twins.to_torch(x, "cpu") for x in batches])
    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    wall = (time.perf_counter() - start) / args.steps
    with quiet_fds(), profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    totals = {label: 0.0 for label, _ in TORCH_GROUPS}
    rest = 0.0
    for event in prof.key_averages():
        ms = event.self_cpu_time_total / 1e3 / args.steps
        label = next((lb for lb, words in TORCH_GROUPS if any(w in event.key for w in words)), None)
        if label is None:
            rest += ms
        else:
            totals[label] += ms
    print(f"\nthe PyTorch twin, same step: {1e3 * wall:.2f} ms (unprofiled); profiled, ms/step:")
    for label, ms in list(totals.items()) + [("elementwise, copies and the rest", rest)]:
        print(f"  {label:<34}{ms:>9.2f}")


def main(args):
    if args.backend != "numpy":
        minigen.use_backend(args.backend)
    use_torch = torch is not None and not args.no_torch
    torch_device = "cpu"
    if use_torch:
        torch.set_num_threads(args.threads)
        if backend.name() == "cupy":
            if not torch.cuda.is_available():
                raise SystemExit("--backend cupy: PyTorch has no CUDA here; add --no-torch")
            torch_device = "cuda"
    sync = make_sync(torch_device)
    if args.copy_threads is not None:
        conv.COPY_THREADS = args.copy_threads
    if args.profile:
        # the twin's profile is its CPU operators' time: set beside minigen on the CPU only
        on_cpu = use_torch and torch_device == "cpu"
        profile(args.profile, data.load("fashion-mnist")[0], args, sync, on_cpu)
        return
    print(
        f"one training step per model (all passes, losses, optimizer updates), float32, "
        f"minigen {minigen.__version__} on {backend.name()}"
        + (f", PyTorch {torch.__version__} on {torch_device}" if use_torch else ", no PyTorch")
    )
    print(thread_report(use_torch))

    np_rate = gemm_rate(lambda a, b: a @ b, backend.from_numpy, sync)
    rate, rates = np_rate, f"{backend.name()} {np_rate / 1e9:.0f}"
    if use_torch:
        t_rate = gemm_rate(torch.mm, lambda a: torch.from_numpy(a).to(torch_device), sync)
        rate, rates = max(rate, t_rate), rates + f", torch {t_rate / 1e9:.0f}"
    print(f"float32 GEMM rate (best of 1024^3, 2048^3): {rates} GFLOP/s; floor uses the best")

    images, _ = data.load("fashion-mnist")
    rows = []
    for name in args.models:
        start = time.perf_counter()
        r = run_model(name, images, args, use_torch, torch_device, sync)
        rows.append(r)
        note = ""
        if use_torch:
            same = "same" if r["torch_flops"] == r["flops"] else f"{r['torch_flops'] / 1e9:.3f}"
            agree = "agree" if r["agree"] < 1e-4 else "DISAGREE (minigen or twin is wrong)"
            note = f": first-step losses {agree}, {r['agree']:.1e} rel.; torch FLOP count {same}"
        print(f"  {name} done in {time.perf_counter() - start:.0f} s{note}", flush=True)

    print(
        f"\nmedian of {args.steps} steps after {args.warmup} warm-up"
        + (", alternating blocks of " + str(args.block) if use_torch else "")
        + "; floor = GEMM FLOPs / GEMM rate; peak = memory a step allocates above its start"
    )
    print_table(rows, use_torch, rate)
    referenced = [n for n in args.models if n in REFERENCE]
    if referenced:
        print(
            "issue 6 reference (PyTorch 2.13, 2 threads), torch ms / floor ms: "
            + ", ".join(f"{n} {REFERENCE[n][0]} / {REFERENCE[n][1]}" for n in referenced)
        )
    if args.memory_steps:
        print(f"\nmemory over {args.memory_steps} minigen steps (resident MB, live Tensors):")
        for r in rows:
            (a, first), (b, last) = sorted(r["memory"].items())
            growth = "n/a" if first[0] is None else f"{(last[0] - first[0]) / 2**20:+.1f} MB"
            pool = f", CuPy pool {mb(first[2])} -> {mb(last[2])} MB" if first[2] is not None else ""
            flat = last[1] == first[1] and (first[0] is None or last[0] - first[0] < 2**24)
            print(
                f"  {r['name']:<9} step {a}: {mb(first[0])} MB, {first[1]} Tensors; "
                f"step {b}: {mb(last[0])} MB, {last[1]} Tensors; growth {growth}{pool}"
                f"  {'flat' if flat else 'GROWS'}"
            )


if __name__ == "__main__":
    main(ARGS)
