# %% [markdown]
# # Lesson 01: reverse-mode automatic differentiation
#
# Every model in minigen learns by gradient descent, and every gradient comes
# from one small engine: `minigen/autograd.py`. This lesson builds the idea up
# by hand, writes a tiny engine of its own, then lets minigen's engine do the
# same work and checks it.
#
# 1. a scalar example differentiated by hand with the chain rule;
# 2. an autograd engine for scalars in a few dozen lines, a drawing of the
#    order in which backward visits the graph, and a tiny fit with it;
# 3. the same graph in minigen, the three answers side by side, and where
#    minigen's engine does each step on arrays;
# 4. a node used twice: gradients add up along every path;
# 5. broadcasting, and why its gradient is a sum;
# 6. checking any gradient by finite differences (`minigen.gradcheck`);
# 7. float32 stays float32: constants take the graph's dtype.
#
# Run: `python lessons/01_autograd.py` (a few seconds on 2 CPU cores).
# Figures go to `figures/01_autograd/` (or `--out DIR`).

# %%
import argparse
import inspect
import math

import matplotlib.pyplot as plt
import numpy as np  # host data for the lesson's own plots

# _setup picks a file-only matplotlib backend outside notebooks
from _setup import parse_options, start_lesson

import minigen as mg
from minigen import plots

parser = argparse.ArgumentParser(description="Lesson 01: reverse-mode automatic differentiation")
parser.add_argument("--out", default="figures/01_autograd", help="folder for figures")
parser.add_argument(
    "--backend", choices=mg.backend.NAMES, default=None, help="numpy (default), cupy or strict"
)
parser.add_argument("--quick", action="store_true", help="smoke run (this lesson is quick anyway)")
args = parse_options(parser)  # a Jupyter kernel's own arguments pass
# the backend and the figure folder, or one line saying what failed
out = start_lesson("01_autograd", args)

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
# ## 2. An engine for scalars, by hand
#
# The steps above follow a rule a program can follow. Each value remembers
#
# - its number (`data`) and, after backward, d(output)/d(itself) (`grad`);
# - the values it was made from (`parents`);
# - a closure, `backward_step`, that knows the local derivatives of the
#   operation that made it and passes `grad` on to the parents with the chain
#   rule: `parent.grad += local_derivative * self.grad`.
#
# `+=`, not `=`: a value used twice receives a contribution from each use.
# `backward()` must call a node's `backward_step` only once its own `grad` is
# complete, i.e. after every node that uses it. A depth-first walk that lists
# each node after its parents gives a topological order; backward runs it in
# reverse, from the output to the inputs.


# %%
class Value:
    """A scalar that remembers how it was made, for reverse-mode differentiation."""

    def __init__(self, data, parents=(), name=""):
        self.data, self.grad = float(data), 0.0
        self.parents, self.name = parents, name
        self.backward_step = lambda: None  # an input passes nothing on

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))

        def backward_step():  # d(s + o)/ds = d(s + o)/do = 1
            self.grad += out.grad
            other.grad += out.grad

        out.backward_step = backward_step
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))

        def backward_step():  # d(s * o)/ds = o, d(s * o)/do = s
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out.backward_step = backward_step
        return out

    def __sub__(self, other):
        return self + other * -1.0

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,))

        def backward_step():  # d tanh(s)/ds = 1 - tanh(s)^2
            self.grad += (1 - t * t) * out.grad

        out.backward_step = backward_step
        return out

    def backward(self):
        """Fill ``.grad`` of every value this one was made from; return the visiting order."""
        order, seen = [], set()

        def visit(node):  # depth first: a node is listed after all of its parents
            if node not in seen:
                seen.add(node)
                for parent in node.parents:
                    visit(parent)
                order.append(node)

        visit(self)
        self.grad = 1.0  # d(self)/d(self)
        order.reverse()  # now every node comes before the nodes it was made from
        for node in order:
            node.backward_step()
        return order


# %% [markdown]
# The same expression as in section 1, f = tanh(a * b + b):

# %%
va, vb = Value(a, name="a"), Value(b, name="b")
vc = va * vb
vd = vc + vb
vf = vd.tanh()
vc.name, vd.name, vf.name = "c", "d", "f"
order = vf.backward()
print("backward visits:", " -> ".join(node.name for node in order))
print(f"hand-made engine: f = {vf.data:.6f}, df/da = {va.grad:.6f}, df/db = {vb.grad:.6f}")

# %% [markdown]
# The graph, drawn: an arrow runs from each value to the value made from it
# (the forward pass). The red number is the step at which backward calls that
# node's `backward_step`. f comes first; b comes after both c and d, the two
# nodes that use it, so its gradient is complete before it would pass it on.

# %%
depth = {}
for node in reversed(order):  # parents first: a node sits one column right of its deepest parent
    depth[node] = 1 + max((depth[p] for p in node.parents), default=-1)
columns = {}
for node in reversed(order):
    columns.setdefault(depth[node], []).append(node)
position = {
    node: (x, (len(nodes) - 1) / 2 - i)
    for x, nodes in columns.items()
    for i, node in enumerate(nodes)
}
fig, ax = plt.subplots(figsize=(8, 3.8), dpi=100)
for node in order:
    for parent in node.parents:
        (x0, _), (x1, _) = position[parent], position[node]
        ax.annotate(
            "",
            xy=position[node],
            xytext=position[parent],
            arrowprops=dict(  # an edge that skips a column bends around the node between
                arrowstyle="-|>", color="0.45", lw=1.5, shrinkA=27, shrinkB=27,
                connectionstyle=f"arc3,rad={0.35 if x1 - x0 > 1 else 0}",
            ),
        )  # fmt: skip
operation = {vc: "c = a * b", vd: "d = c + b", vf: "f = tanh(d)"}
for step, node in enumerate(order, start=1):
    x, y = position[node]
    ax.scatter([x], [y], s=2600, color="#dbe9f6", edgecolors="#1f4e79", zorder=2)
    ax.text(x, y + 0.08, node.name, ha="center", va="center", fontsize=12, weight="bold", zorder=3)
    ax.text(x, y - 0.13, f"{node.data:.3f}", ha="center", va="center", fontsize=8, zorder=3)
    ax.text(x, y + 0.4, operation.get(node, "input"), ha="center", va="center", fontsize=9)
    ax.text(
        x, y - 0.42, f"grad {node.grad:.3f}", ha="center", va="center", fontsize=9, color="#1f4e79"
    )
    ax.text(
        x - 0.24, y + 0.18, str(step), ha="center", va="center", fontsize=10, color="white",
        weight="bold", zorder=4, bbox=dict(boxstyle="circle,pad=0.25", fc="#c0392b", ec="none"),
    )  # fmt: skip
ax.set_xlim(-0.5, max(columns) + 0.5)
ax.set_ylim(-1.05, 1.05)
ax.axis("off")
ax.set_title(
    "f = tanh(a*b + b): forward along the arrows; backward visits the nodes in the red order\n"
    "(" + " -> ".join(node.name for node in order) + ": each node after every node that uses it)",
    fontsize=9,
)
fig.tight_layout()
path = out / "graph.png"
plots.save_figure(fig, path)
print(f"saved {path}")

# %% [markdown]
# The engine can already train. Fit y = tanh(w * x + c) to four points made
# with w = 1.5, c = -0.5, by plain gradient descent on the squared error: each
# step builds the graph anew, runs backward, and moves w and c against their
# gradients.

# %%
xs_fit = [-1.0, 0.0, 1.0, 2.0]
ys_fit = [math.tanh(1.5 * x - 0.5) for x in xs_fit]
w, c0 = Value(0.0), Value(0.0)
for step in range(201):  # well under a second
    loss = Value(0.0)
    for x_i, y_i in zip(xs_fit, ys_fit):
        error = (w * x_i + c0).tanh() - y_i
        loss = loss + error * error
    w.grad = c0.grad = 0.0  # gradients accumulate: clear them before each backward
    loss.backward()
    if step in (0, 10, 20, 50, 100, 200):
        print(f"  step {step:3d}: loss {loss.data:.2e}, w = {w.data:.4f}, c = {c0.data:.4f}")
    w.data -= 0.2 * w.grad
    c0.data -= 0.2 * c0.grad

# %% [markdown]
# ## 3. The same in minigen
#
# A `Tensor` remembers the operation that made it. `f.backward()` sorts the
# graph so each node comes after every node that uses it, then runs each
# operation's `backward` in that order: exactly the steps above, and the same
# three answers.

# %%
ta = mg.tensor(a, requires_grad=True)
tb = mg.tensor(b, requires_grad=True)
tf = (ta * tb + tb).tanh()
tf.backward()
rows = {
    "by hand": (f, df_da, df_db),
    "hand-made engine": (vf.data, va.grad, vb.grad),
    "minigen (float32)": (tf.item(), ta.grad.item(), tb.grad.item()),
}
print(f"{'':18s} {'f':>10s} {'df/da':>10s} {'df/db':>10s}")
for label, row in rows.items():
    print(f"{label:18s} " + " ".join(f"{v:10.6f}" for v in row))
gap = max(abs(u - v) for u, v in zip(rows["hand-made engine"], rows["minigen (float32)"]))
print(f"largest difference, hand-made engine vs minigen: {gap:.1e} (float32 rounding)")
assert gap < 1e-6

# %% [markdown]
# Where minigen does each step, on arrays instead of scalars
# (`minigen/autograd.py`, the operations in `minigen/ops.py`):
#
# | hand-made engine | minigen |
# |---|---|
# | `Value.data`, `Value.grad` | `Tensor.data`, `Tensor.grad` (arrays) |
# | `parents` and the `backward_step` closure | the `Function` that made a tensor (`tensor._ctx`): its `parents`, and `backward(grad)` returning one gradient per input, e.g. `Mul.backward`, `Tanh.backward` in ops.py |
# | `visit`, depth first, then reversed | `_topological_order`: the same order, with an explicit stack instead of recursion (a deep network would exceed Python's recursion limit) |
# | `parent.grad += ...` on every node | `Tensor.backward` sums the contributions in a dict keyed by node, and only leaves keep `.grad` (intermediate gradients are dropped as soon as they are used) |
# | scalars never broadcast | `unbroadcast`: an input that broadcasting stretched gets the gradient summed over the stretched axes (section 5) |

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
# ## 4. Paths add up: x * x + x
#
# d/dx (x^2 + x) = 2x + 1. The graph uses x three times; backward sends a
# gradient along each use and sums them.

# %%
x = mg.tensor([-2.0, 0.0, 3.0], requires_grad=True)
(x * x + x).sum().backward()
print("x        =", mg.to_numpy(x.data))
print("d/dx     =", mg.to_numpy(x.grad), " (expected 2x + 1)")

# %% [markdown]
# ## 5. Broadcasting
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
print(inspect.getsource(mg.autograd.unbroadcast))

# %% [markdown]
# ## 6. Check gradients by finite differences
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
plots.save_figure(fig, path)
print(f"saved {path}")

# %% [markdown]
# ## 7. float32 stays float32
#
# Training runs in float32: half the memory and about twice the speed of
# float64. Under NumPy 2, `float32_array * np.sqrt(0.5)` silently becomes
# float64; minigen casts such constants to the graph's dtype.

# %%
x32 = mg.tensor([1.0, 2.0])  # Python data -> float32
print("dtype of x32 * np.sqrt(0.5):", (x32 * np.sqrt(0.5)).dtype)

# %% [markdown]
# ## Summary
#
# **Built:** the chain rule by hand on f = tanh(a * b + b); a scalar autograd
# engine (a value, its parents, a backward closure, a topological order) that
# fits a tiny model; the same graph in minigen. **Measured:** the three
# answers agree (the hand-made engine and minigen to float32 rounding), a
# second `backward()` doubles a gradient, a broadcast bias gets its gradient
# summed over the copied rows, and `gradcheck` confirms autograd against
# central differences. **The one idea to keep:** backward visits each node
# after every node that uses it and *adds* the gradients arriving along every
# path; everything else (broadcasting, `zero_grad`) follows from that.
#
# ## Exercises
#
# Each has a worked solution in `lessons/solutions/01_autograd.py`
# (`python lessons/solutions/01_autograd.py --exercise 1`). Predict first, then run.
#
# 1. **Forget to clear the gradients.** In the fit of section 2, drop the
#    line that zeroes `w.grad` and `c.grad` before `backward()`. Predict the
#    loss at steps 10 and 20 and where w and c end up after 200 steps, then
#    compare with the run that clears them. What does the update become when
#    the gradients accumulate?
# 2. **The step h of a finite difference.** Estimate tanh'(0.5) by the
#    central difference (tanh(x + h) - tanh(x - h)) / 2h for h = 1e-1 ...
#    1e-8, in float64 and in float32. Predict the h with the smallest error in
#    each precision (the O(h^2) truncation error against a rounding error of
#    about machine epsilon / h), then look at the error for each h.
# 3. **A bias broadcast along the other axis.** Section 5 added a bias of
#    shape (3,) to X of shape (4, 3). Compute ((X + b)^2).sum() for b of
#    shape (3,), (4, 1) and () (a scalar). Predict the shape of `b.grad` and
#    which axes of 2 (X + b) it is summed over; check against autograd.
