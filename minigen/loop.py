"""The step loop that all training shares: epochs of steps, a time budget, a NaN check.

``train.train`` (a model) and ``models.fit_prior`` (a VQ-VAE's prior) both
run it; each says what a step is and what happens after an epoch:

    for epoch in range(start, epochs):
        module.train()
        for x in batches(epoch):
            losses = step(x)          # {name: number}
            check they are finite     # else DivergenceError, at once
            history[name].append(loss)
            if the budget is spent:   # after this step
                stop
        end_epoch(epoch, stopped)     # a checkpoint, a callback, a mean

The finiteness check reuses the ``float`` of each loss that history needs
anyway, so it costs no extra device sync.
"""

import math
import numbers
import time

from minigen.errors import MinigenError
from minigen.progress import progress


class DivergenceError(MinigenError, FloatingPointError):
    """Training produced a NaN or infinite loss or weight; nothing was saved."""


class Budget:
    """A wall-clock budget of ``max_seconds`` from now (None: no limit).

    ``spent()`` says whether it has run out; the loop asks after each step, so
    a run ends after the step during which it ran out (a budget of 0 runs one).
    """

    def __init__(self, max_seconds, who):
        if max_seconds is not None and (
            isinstance(max_seconds, bool)
            or not isinstance(max_seconds, numbers.Real)
            or not max_seconds >= 0
            or not math.isfinite(max_seconds)
        ):
            raise ValueError(
                f"{who}: max_seconds must be a finite number of seconds or None, got "
                f"{max_seconds!r} (max_seconds must be >= 0, not NaN or inf)"
            )
        self.max_seconds = max_seconds
        self.began = time.perf_counter()

    def spent(self):
        return self.max_seconds is not None and time.perf_counter() - self.began >= self.max_seconds


def run(
    module,
    step,
    batches,
    epochs,
    *,
    name,
    start=0,
    history=None,
    budget=None,
    end_epoch=None,
    advice=None,
    quiet=False,
):
    """Epochs ``start`` .. ``epochs - 1`` of ``step`` over ``batches(epoch)``; returns history.

    ``module``: put in training mode at the start of each epoch. ``step(x)``:
    one update on a batch, returning {loss name: number}. ``batches(epoch)``:
    (iterable of batches, their count). ``history``: {loss name: list}, extended
    in place. ``budget``: a ``Budget``; when it is spent the epoch ends after
    that step and is the last one, and ``end_epoch(epoch, stopped)`` gets
    ``stopped`` = {"epoch", "step", "max_seconds"} (None after a whole epoch).
    ``name`` starts the progress line and the messages; ``advice(epoch)`` is
    what a DivergenceError adds (what is left on disk, what to try).
    """
    history = {} if history is None else history
    for epoch in range(start, epochs):
        module.train()
        steps, total = batches(epoch)
        desc = f"{name} epoch {epoch + 1}/{epochs}"
        bar = progress(steps, total=total, desc=desc, **({"disable": True} if quiet else {}))
        stopped = None
        for i, x in enumerate(bar, 1):
            # float() is what history needs anyway; the finiteness test adds no device sync
            losses = {key: float(value) for key, value in step(x).items()}
            if not all(math.isfinite(v) for v in losses.values()):
                bar.close()
                raise DivergenceError(
                    f"{name} diverged at epoch {epoch + 1}, step {i}: "
                    + ", ".join(f"{k} {v:.4g}" for k, v in losses.items())
                    + (f". {advice(epoch)}" if advice else ".")
                )
            for key, value in losses.items():
                history.setdefault(key, []).append(value)
            bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
            if budget is not None and budget.spent():
                stopped = {"epoch": epoch + 1, "step": i, "max_seconds": float(budget.max_seconds)}
                break
        bar.close()
        if stopped is not None and not quiet:
            print(
                f"{name}: the budget of {budget.max_seconds:g} s ran out at epoch {epoch + 1}, "
                f"step {stopped['step']} of {total}; training ends here."
            )
        if end_epoch is not None:
            end_epoch(epoch, stopped)
        if stopped is not None:
            break
    return history
