"""Time forward + backward of Linear, Conv2d and ConvTranspose2d, minigen vs PyTorch.

The layers and sizes are those of the reference models
(docs/reference-models.md): batch 64, float32, 28x28 images, convolutions
with kernel 4, stride 2, padding 1 (28 -> 14 -> 7 and back). Each timed
step is one forward pass and one backward pass with a fixed upstream
gradient, the input requiring a gradient as it does inside a network.

When PyTorch is installed, the same layer with the same weights runs in
the same process, after a check that both compute the same values and
gradients. The two alternate in short blocks of steps (minigen, PyTorch,
PyTorch, minigen, ...), so both see the same machine load; the table gives
the median step time of each and the ratio minigen / PyTorch. Why blocks and
not single steps: BLAS and OpenMP worker threads spin for a while after each
call, so a step that directly follows the other framework's step competes
with its idle threads. Each block starts after a short pause and two untimed
steps. PyTorch is only a yardstick here, never a dependency of minigen.

    python benchmarks/layers.py                 # 2 threads, as the targets assume
    python benchmarks/layers.py --rounds 10 --threads 2 --only Conv2d

Targets (2 CPU cores): Linear within 1.2x of PyTorch, Conv2d and
ConvTranspose2d within 2x.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
parser.add_argument("--rounds", type=int, default=6, help="blocks per layer and framework")
parser.add_argument("--block", type=int, default=5, help="timed steps per block")
parser.add_argument("--pause", type=float, default=0.05, help="seconds of rest before a block")
parser.add_argument("--batch", type=int, default=64)
parser.add_argument("--threads", type=int, default=2, help="BLAS / PyTorch threads")
parser.add_argument("--backend", default=None, help="numpy (default), cupy or strict")
parser.add_argument("--only", default=None, help="run only layers whose name contains this")
args = parser.parse_args()

# Thread counts must be set before NumPy's BLAS starts.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, str(args.threads))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402  (host data for the inputs and the table)

import minigen  # noqa: E402
from minigen import backend, nn  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

if args.backend:
    minigen.use_backend(args.backend)
if torch is not None:
    torch.set_num_threads(args.threads)
TORCH_DEVICE = "cuda" if backend.name() == "cupy" and torch and torch.cuda.is_available() else "cpu"

# (kind, in, out, input spatial size, kernel, stride, padding), from the reference models.
LAYERS = [
    ("Linear", 64, 256, None, None, None, None),  # mlp-gan G
    ("Linear", 784, 512, None, None, None, None),  # mlp-gan D
    ("Linear", 512, 784, None, None, None, None),  # mlp-gan G
    ("Linear", 64, 6272, None, None, None, None),  # dcgan G: z -> 128*7*7
    ("Linear", 6272, 1, None, None, None, None),  # dcgan D head
    ("Linear", 3136, 16, None, None, None, None),  # conv-vae mu
    ("Conv2d", 1, 64, 28, 4, 2, 1),  # dcgan D
    ("Conv2d", 64, 128, 14, 4, 2, 1),  # dcgan D
    ("Conv2d", 1, 32, 28, 4, 2, 1),  # conv-vae encoder
    ("Conv2d", 32, 64, 14, 4, 2, 1),  # conv-vae encoder
    ("Conv2d", 64, 16, 7, 1, 1, 0),  # vq-vae 1x1
    ("ConvTranspose2d", 128, 64, 7, 4, 2, 1),  # dcgan G
    ("ConvTranspose2d", 64, 1, 14, 4, 2, 1),  # dcgan G
    ("ConvTranspose2d", 64, 32, 7, 4, 2, 1),  # conv-vae decoder
    ("ConvTranspose2d", 32, 1, 14, 4, 2, 1),  # conv-vae decoder
]
TARGET = {"Linear": 1.2, "Conv2d": 2.0, "ConvTranspose2d": 2.0}


def sync():
    if backend.name() == "cupy":
        backend.xp().cuda.Device().synchronize()
    if torch is not None and TORCH_DEVICE == "cuda":
        torch.cuda.synchronize()


def make(kind, cin, cout, size, k, s, p):
    """The minigen layer, its PyTorch twin with the same weights, and host data."""
    rng = np.random.default_rng(0)
    if kind == "Linear":
        ours = nn.Linear(cin, cout)
        x_shape = (args.batch, cin)
    elif kind == "Conv2d":
        ours = nn.Conv2d(cin, cout, k, s, p)
        x_shape = (args.batch, cin, size, size)
    else:
        ours = nn.ConvTranspose2d(cin, cout, k, s, p)
        x_shape = (args.batch, cin, size, size)
    x = rng.standard_normal(x_shape).astype(np.float32)
    y_shape = ours(minigen.tensor(x)).shape
    g = rng.standard_normal(y_shape).astype(np.float32)
    theirs = None
    if torch is not None:
        cls = {"Linear": torch.nn.Linear, "Conv2d": torch.nn.Conv2d}.get(
            kind, torch.nn.ConvTranspose2d
        )
        theirs = cls(cin, cout) if kind == "Linear" else cls(cin, cout, k, s, p)
        theirs = theirs.to(TORCH_DEVICE)
        with torch.no_grad():
            for name, param in theirs.named_parameters():
                param.copy_(torch.from_numpy(backend.to_numpy(ours.state_dict()[name])))
    return ours, theirs, x, g, x_shape


def minigen_step(layer, x, g):
    def step():
        xt = minigen.Tensor(x, requires_grad=True)
        layer.zero_grad()
        layer(xt).backward(g)

    return step


def torch_step(layer, x, g):
    def step():
        xt = x.detach().requires_grad_(True)
        layer.zero_grad(set_to_none=True)
        layer(xt).backward(g)

    return step


def timed(step):
    sync()
    start = time.perf_counter()
    step()
    sync()
    return time.perf_counter() - start


def check_same(ours, theirs, x, g):
    """Both frameworks compute the same thing (a benchmark of wrong code is worthless)."""
    xt = minigen.Tensor(backend.from_numpy(x), requires_grad=True)
    y = ours(xt)
    y.backward(backend.from_numpy(g))
    xx = torch.from_numpy(x).to(TORCH_DEVICE).requires_grad_(True)
    yy = theirs(xx)
    yy.backward(torch.from_numpy(g).to(TORCH_DEVICE))
    for a, b in ((y.data, yy), (xt.grad, xx.grad), (ours.weight.grad, theirs.weight.grad)):
        a, b = backend.to_numpy(a), b.detach().cpu().numpy()
        scale = max(1.0, float(np.abs(b).max()))
        if np.abs(a - b).max() > 1e-3 * scale:
            raise AssertionError("minigen and PyTorch disagree; not timing")


def main():
    print(
        f"forward + backward, batch {args.batch}, float32, backend {backend.name()}, "
        f"{args.threads} threads, median of {args.rounds * args.block} steps"
        + (f", PyTorch {torch.__version__} on {TORCH_DEVICE}" if torch else ", PyTorch absent")
    )
    header = (
        f"{'layer':<38} {'input':<18} {'minigen ms':>10} {'torch ms':>9} {'ratio':>6} {'target':>7}"
    )
    print(header)
    print("-" * len(header))
    for spec in LAYERS:
        kind, cin, cout, size, k, s, p = spec
        name = f"{kind}({cin}, {cout}" + (f", k={k}, s={s}, p={p})" if k else ")")
        if args.only and args.only not in name:
            continue
        ours, theirs, x_host, g_host, x_shape = make(*spec)
        ours_step = minigen_step(ours, backend.from_numpy(x_host), backend.from_numpy(g_host))
        steps = [ours_step]
        if theirs is not None:
            check_same(ours, theirs, x_host, g_host)
            x_t = torch.from_numpy(x_host).to(TORCH_DEVICE)
            g_t = torch.from_numpy(g_host).to(TORCH_DEVICE)
            steps.append(torch_step(theirs, x_t, g_t))
        times = [[] for _ in steps]
        for r in range(args.rounds):  # alternate blocks, so both see the same load
            order = list(zip(steps, times, strict=True))
            for step, record in order if r % 2 == 0 else order[::-1]:
                time.sleep(args.pause)
                step(), step()  # untimed: caches and thread pools warm again
                record.extend(timed(step) for _ in range(args.block))
        ms = [1e3 * statistics.median(t) for t in times]
        shape = "x".join(str(d) for d in x_shape)
        if theirs is None:
            print(f"{name:<38} {shape:<18} {ms[0]:>10.3f} {'-':>9} {'-':>6} {'-':>7}")
        else:
            ratio = ms[0] / ms[1]
            flag = "ok" if ratio <= TARGET[kind] else "SLOW"
            print(
                f"{name:<38} {shape:<18} {ms[0]:>10.3f} {ms[1]:>9.3f} {ratio:>6.2f} "
                f"{'<=' + str(TARGET[kind]):>5} {flag}"
            )


if __name__ == "__main__":
    main()
