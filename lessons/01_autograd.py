# %% [markdown]
# # Lesson 01: reverse-mode automatic differentiation
#
# Every model in minigen learns by gradient descent, and every gradient comes
# from one small engine: `minigen/autograd.py`. This lesson builds the idea up
# by hand, then lets the engine do the same work and checks it.
#
# 1. a scalar example differentiated by hand with the chain rule;
# 2. the same graph in minigen, and what `backward()` does;
# 3. a node used twice: gradients add up along every path;
# 4. broadcasting, and why its gradient is a sum;
# 5. checking any gradient by finite differences (`minigen.gradcheck`).
#
# Run: `python lessons/01_autograd.py` (a few seconds on 2 CPU cores).
# Figures go to `figures/01_autograd/` (or `--out DIR`).

# %%
import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402  (host data for the lesson's own plots)

import minigen as mg  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--out", default="figures/01_autograd", help="folder for figures")
parser.add_argument("--backend", default=None, help="numpy, cupy or strict")
parser.add_argument("--quick", action="store_true", help="smoke run (this lesson is quick anyway)")
args = parser.parse_args()
if args.backend:
    mg.use_backend(args.backend)
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. By hand
#
# Take f(a, b) = tanh(a * b + b). Name the intermediate values:
#
#     c = a * b,   d = c + b,   f = tanh(d)
#
# The chain rule walks backwards from f. df/df = 1, then
# df/dd = 1 - tanh(d)^2, df/dc = df/dd (an addition passes gradients through),
# and c = a*b sends df/dc * b to a and df/dc * a to b. b is used twice (in c and
# in d), so its gradient is the *sum* of both paths.

# %%
a, b = 0.5, -1.2
c = a * b
d = c + b
f = math.tanh(d)
df_dd = 1 - f**2
df_dc = df_dd
df_da = df_dc * b
df_db = df_dc * a + df_dd  # two paths reach b
print(f"by hand:   f = {f:.6f}, df/da = {df_da:.6f}, df/db = {df_db:.6f}")

# %% [markdown]
# ## 2. The same in minigen
#
# A `Tensor` remembers the operation that made it. `f.backward()` sorts the
# graph so each node comes after every node that uses it, then runs each
# operation's `backward` in that order: exactly the steps above.

# %%
ta = mg.tensor(a, requires_grad=True)
tb = mg.tensor(b, requires_grad=True)
tf = (ta * tb + tb).tanh()
tf.backward()
print(f"autograd:  f = {tf.item():.6f}, df/da = {ta.grad.item():.6f}, df/db = {tb.grad.item():.6f}")
assert abs(ta.grad.item() - df_da) < 1e-6 and abs(tb.grad.item() - df_db) < 1e-6

# %% [markdown]
# Gradients *accumulate*: a second `backward()` adds to `.grad`. That is what
# lets a node used twice collect both contributions, and it is why training
# loops clear gradients (`zero_grad`) before each step.

# %%
tf = (ta * tb + tb).tanh()
tf.backward()
print(f"after a second backward, df/da = {ta.grad.item():.6f} (twice the value)")
ta.zero_grad()
tb.zero_grad()

# %% [markdown]
# ## 3. Paths add up: x * x + x
#
# d/dx (x^2 + x) = 2x + 1. The graph uses x three times; backward sends a
# gradient along each use and sums them.

# %%
x = mg.tensor([-2.0, 0.0, 3.0], requires_grad=True)
(x * x + x).sum().backward()
print("x        =", mg.to_numpy(x.data))
print("d/dx     =", mg.to_numpy(x.grad), " (expected 2x + 1)")

# %% [markdown]
# ## 4. Broadcasting
#
# Adding a bias b of shape (3,) to a batch X of shape (4, 3) copies b into each
# of the 4 rows. Each copy passes the upstream gradient back to the same b, so
# b's gradient is the gradient *summed over the copied axis*. minigen does this
# in one place (`unbroadcast` in autograd.py), so no op has to.

# %%
X = mg.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
bias = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
((X + bias) * 2.0).sum().backward()
print("grad of bias (4 rows x 2.0 each):", mg.to_numpy(bias.grad))

# %% [markdown]
# ## 5. Check gradients by finite differences
#
# For any function, the central difference (L(x+h) - L(x-h)) / 2h estimates
# dL/dx with error O(h^2). `minigen.gradcheck` compares it with autograd
# element by element, in float64 (float32 rounding would swamp the estimate).
# The test suite does this for every op on shapes that hypothesis draws.

# %%
rng = np.random.default_rng(0)
W = mg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
v = mg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
err = mg.gradcheck(lambda w, v: (v @ w).tanh().logsumexp(axis=1), W, v)
print(f"gradcheck of logsumexp(tanh(v @ W)): worst relative error {err:.2e}")

# %% [markdown]
# A picture of the same check: tanh and its derivative from autograd, with the
# finite-difference estimate on top.

# %%
grid = np.linspace(-4, 4, 81)
xs = mg.tensor(grid, requires_grad=True)
ys = xs.tanh()
ys.sum().backward()  # d(sum tanh(x_i))/dx_i = tanh'(x_i)
h = 1e-4
numeric = (np.tanh(grid + h) - np.tanh(grid - h)) / (2 * h)
fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
ax.plot(grid, mg.to_numpy(ys.data), label="tanh(x)")
ax.plot(grid, mg.to_numpy(xs.grad), label="autograd d/dx")
ax.plot(grid[::4], numeric[::4], "k.", label="finite differences")
ax.legend()
ax.set_xlabel("x")
ax.set_title("autograd agrees with finite differences")
fig.tight_layout()
path = out / "tanh_gradient.png"
fig.savefig(path)
print(f"saved {path}")

# %% [markdown]
# ## 6. float32 stays float32
#
# Training runs in float32: half the memory and about twice the speed of
# float64. Under NumPy 2, `float32_array * np.sqrt(0.5)` silently becomes
# float64; minigen casts such constants to the graph's dtype.

# %%
x32 = mg.tensor([1.0, 2.0])  # Python data -> float32
print("dtype of x32 * np.sqrt(0.5):", (x32 * np.sqrt(0.5)).dtype)
