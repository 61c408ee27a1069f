"""Worked solutions to the exercises at the end of lessons/01_autograd.py.

One function per exercise; each prints what the exercise asks for, computed
(``_exercises.py`` says how to run them).
"""

import math

import numpy as np
from _exercises import run_exercises

import minigen as mg


def fit(clear, steps, lr=0.2):
    """Lesson 01's fit of y = tanh(w x + c) to four points, in minigen; ``clear``: zero the
    gradients before each backward. Returns the loss at each step, w and c."""
    xs = mg.tensor([-1.0, 0.0, 1.0, 2.0])
    ys = mg.tensor([math.tanh(1.5 * x - 0.5) for x in (-1.0, 0.0, 1.0, 2.0)])
    w, c = mg.tensor(0.0, requires_grad=True), mg.tensor(0.0, requires_grad=True)
    losses = []
    for _ in range(steps):
        error = (w * xs + c).tanh() - ys
        loss = (error * error).sum()
        if clear:
            w.zero_grad()
            c.zero_grad()
        loss.backward()
        losses.append(loss.item())
        w.data -= lr * w.grad
        c.data -= lr * c.grad
    return losses, w.item(), c.item()


def exercise_1(args, images):
    """Forget to clear the gradients"""
    steps = 50 if args.quick else 201
    for clear in (True, False):
        losses, w, c = fit(clear, steps)
        marks = [s for s in (0, 10, 20, 50, 100, 200) if s < steps]
        print(
            f"   {'cleared' if clear else 'never cleared':13s}: "
            + ", ".join(f"step {s} loss {losses[s]:.2e}" for s in marks)
            + f"; w = {w:.3f}, c = {c:.3f} (the data: w = 1.5, c = -0.5)"
        )


def exercise_2(args, images):
    """The step h of a finite difference"""
    x = 0.5
    exact = 1 - math.tanh(x) ** 2
    for dtype in (np.float64, np.float32):
        errors = {}
        for k in range(1, 9):
            h = dtype(10.0**-k)
            t = np.tanh(np.array([x + h, x - h], dtype=dtype))
            errors[k] = abs(float((t[0] - t[1]) / (2 * h)) - exact)
        best = min(errors, key=errors.get)
        print(
            f"   {np.dtype(dtype).name}: |error| "
            + ", ".join(f"h=1e-{k} {e:.1e}" for k, e in errors.items())
            + f"; smallest at h = 1e-{best}"
        )


def exercise_3(args, images):
    """A bias broadcast along the other axis"""
    rng = np.random.default_rng(args.seed)
    X = mg.tensor(rng.standard_normal((4, 3)))
    # each shape of b, and the axes of (4, 3) that broadcasting stretched it along
    for shape, axes in (((3,), (0,)), ((4, 1), (1,)), ((), (0, 1))):
        b = mg.tensor(rng.standard_normal(shape), requires_grad=True)
        ((X + b) * (X + b)).sum().backward()
        by_hand = 2 * (mg.to_numpy(X.data) + mg.to_numpy(b.data))  # (4, 3): d/d(X + b)
        summed = by_hand.sum(axis=axes).reshape(shape)
        print(
            f"   b of shape {shape}: grad shape {tuple(b.grad.shape)}, summed over axes {axes}; "
            f"largest difference from 2 (X + b) summed by hand "
            f"{float(np.abs(mg.to_numpy(b.grad) - summed).max()):.1e}"
        )


run_exercises("lesson 01", globals())
