"""Optimizers: SGD with momentum and Adam, plus gradient-norm clipping.

An optimizer holds a list of parameters and, per parameter, whatever state
its rule needs (a momentum buffer; Adam's two moment estimates and step
count). ``step()`` updates every parameter that has a gradient, in place on
``p.data``, so models and other references see the new values;
``zero_grad()`` clears the gradients before the next backward pass.

``state_dict()`` is a flat dict of numbers and backend arrays (copies), for
example ``{"lr": 2e-4, "beta1": 0.5, ..., "state.0.step": 10,
"state.0.exp_avg": array, ...}``: convert its values with
``minigen.to_numpy`` and it fits in an ``.npz`` file. ``load_state_dict``
restores it exactly, so training resumed from a checkpoint takes the same
steps it would have taken without the interruption.
"""

import math
import numbers

from minigen import backend
from minigen.autograd import Tensor


class Optimizer:
    """Base class: parameter list, per-parameter state, zero_grad, state dicts.

    Subclasses list their hyperparameters in ``hyperparameters`` (saved by
    name) and their per-parameter state in ``state_names``, and implement
    ``update(p, grad, state)``.
    """

    hyperparameters = ("lr",)
    state_names = ()
    # called with the optimizer before each step: data-parallel training averages
    # the gradients across processes there (minigen/distributed.py)
    before_step = None

    def __init__(self, params):
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for i, p in enumerate(params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(
                    f"{type(self).__name__}: parameter {i} is not a Tensor that requires "
                    f"gradients (got {type(p).__name__}); pass model.parameters()"
                )
        first = {}
        for i, p in enumerate(params):
            j = first.setdefault(id(p), i)
            if j != i:  # it would take two steps per step()
                raise ValueError(
                    f"{type(self).__name__}: parameters {j} and {i} are the same tensor; "
                    "pass each parameter once"
                )
        self.params = params
        self.state = {}  # parameter index -> dict of that parameter's state
        self._buffers = {}  # dtype -> one scratch array, as long as the largest parameter

    def zero_grad(self):
        """Clear the gradient of every parameter (set ``.grad`` to None)."""
        for p in self.params:
            p.grad = None

    def step(self):
        """Update every parameter that has a gradient; the others are left alone."""
        if self.before_step is not None:
            self.before_step(self)
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if i not in self.state:
                self.state[i] = self.init_state(p)
            self.update(p, p.grad, self.state[i])

    def init_state(self, p):
        return {}

    def update(self, p, grad, state):
        raise NotImplementedError

    def scratch(self, p):
        """A scratch array of p's shape and dtype, reused by every parameter and
        every step: an update writes its temporaries there (``out=``) instead of
        allocating fresh arrays at every step."""
        buffer = self._buffers.get(p.dtype)
        if buffer is None or buffer.size < p.size:
            size = max(q.size for q in self.params if q.dtype == p.dtype)
            buffer = self._buffers[p.dtype] = backend.xp().empty(size, dtype=p.dtype)
        return buffer[: p.size].reshape(p.shape)

    # ------------------------------------------------------------- state dicts

    def state_dict(self):
        """Hyperparameters and per-parameter state, as a flat dict (arrays copied)."""
        out = {name: getattr(self, name) for name in self.hyperparameters}
        for i, state in sorted(self.state.items()):
            for name, value in state.items():
                out[f"state.{i}.{name}"] = value.copy() if backend.is_array(value) else value
        return out

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state from ``state_dict()`` output.

        Values may be numbers, host NumPy arrays (e.g. read from ``.npz``) or
        backend arrays. Raises ValueError naming every entry that does not fit
        (missing hyperparameters, unknown keys, wrong shapes) before changing
        anything.
        """
        problems, state = [], {}
        for name in self.hyperparameters:
            if name not in state_dict:
                problems.append(f"missing {name!r}")
        for key, value in state_dict.items():
            if key in self.hyperparameters:
                continue
            parts = key.split(".")
            if (
                len(parts) != 3
                or parts[0] != "state"
                or not parts[1].isdigit()
                or parts[2] not in self.state_names
            ):
                problems.append(f"unexpected key {key!r}")
                continue
            i, name = int(parts[1]), parts[2]
            if i >= len(self.params):
                problems.append(f"{key!r}: there are only {len(self.params)} parameters")
                continue
            p = self.params[i]
            if name != "step" and tuple(getattr(value, "shape", ())) != tuple(p.shape):
                problems.append(
                    f"{key!r}: shape {tuple(getattr(value, 'shape', ()))}, parameter {i} has "
                    f"shape {tuple(p.shape)}"
                )
                continue
            problem = _bad_state(name, value)
            if problem:
                problems.append(f"{key!r} {problem}")
                continue
            state.setdefault(i, {})[name] = value
        for i, entries in state.items():
            missing = [n for n in self.state_names if n not in entries]
            if missing:
                problems.append(f"state of parameter {i} lacks {missing}")
        if not problems:
            try:  # the constructor's checks: beta1 = 1.0 or lr = -1 must not load
                self.check({name: _number(state_dict[name]) for name in self.hyperparameters})
            except ValueError as e:
                problems.append(str(e))
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        for name in self.hyperparameters:
            setattr(self, name, _number(state_dict[name]))
        self.state = {
            i: {
                n: int(_number(v)) if n == "step" else _array(v, self.params[i])
                for n, v in entries.items()
            }
            for i, entries in state.items()
        }


def _bad_state(name, value):
    """What is wrong with one entry of an optimizer's per-parameter state, or None:
    a step count is an integer >= 0, a moment a float array (a second moment >= 0)."""
    if name == "step":
        value = _number(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            return f"is {value!r}, not a step count (an integer >= 0)"
        return None
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if kind != "f":
        return f"is {getattr(value, 'dtype', type(value).__name__)}, not floating-point numbers"
    if name == "exp_avg_sq" and not bool((value >= 0).all()):
        return "holds negative values; a second moment is >= 0"
    return None


def check_hyperparameters(owner, **values):
    """Each value (or each item of a tuple of them) is a finite real number >= 0,
    or a ValueError naming it: lr=nan or lr="0.001" must not train silently."""
    for name, value in values.items():
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise ValueError(f"{owner}: {name} must be a number, got {value!r}")
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{owner}: {name} must be finite and >= 0, got {value!r}")


def _number(value):
    """A Python number from a number or a 0-d array (as read back from .npz)."""
    if hasattr(value, "shape"):
        value = value.item()
    return value


def _array(value, like):
    """A fresh backend array in the parameter's dtype, from host or backend data."""
    if isinstance(value, Tensor):
        value = value.data
    if backend.is_array(value):
        return value.astype(like.dtype, copy=True)
    return backend.from_numpy(backend.host.array(value, dtype=like.dtype))


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as PyTorch:

    g <- grad + weight_decay * p
    b <- momentum * b + g           (b starts at 0; skipped when momentum = 0)
    p <- p - lr * b
    """

    hyperparameters = ("lr", "momentum", "weight_decay")

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params)
        self.check({"lr": lr, "momentum": momentum, "weight_decay": weight_decay})
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.state_names = ("momentum_buffer",) if momentum else ()

    @staticmethod
    def check(values):
        """The hyperparameters (a dict), or a ValueError naming the first out of range."""
        check_hyperparameters("SGD", **values)

    def init_state(self, p):
        if not self.momentum:
            return {}
        return {"momentum_buffer": backend.xp().zeros_like(p.data)}

    def update(self, p, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * p.data
        if self.momentum:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += grad
            grad = buf
        step = backend.xp().multiply(grad, self.lr, out=self.scratch(p))
        p.data -= step


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), as PyTorch's ``torch.optim.Adam``:

        g <- grad + weight_decay * p                 (L2 penalty, not AdamW)
        m <- beta1 m + (1 - beta1) g                 first moment
        v <- beta2 v + (1 - beta2) g^2               second moment
        t <- t + 1
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    m and v start at 0, so early on they are biased towards 0; dividing by
    (1 - beta^t) corrects that (the paper's bias correction). Each parameter
    keeps its own step count t.
    """

    hyperparameters = ("lr", "beta1", "beta2", "eps", "weight_decay")
    state_names = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        beta1, beta2 = betas
        self.check(dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay))
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.eps, self.weight_decay = eps, weight_decay

    @staticmethod
    def check(values):
        """The hyperparameters (a dict), or a ValueError naming the first out of range."""
        betas = (values["beta1"], values["beta2"])
        others = {k: v for k, v in values.items() if k not in ("beta1", "beta2")}
        check_hyperparameters("Adam", **others, betas=betas)
        for i, name in enumerate(("beta1", "beta2")):
            if not values[name] < 1:
                raise ValueError(
                    f"Adam: {name} (betas[{i}]) must lie in [0, 1), got {values[name]!r}"
                )

    @property
    def betas(self):
        return (self.beta1, self.beta2)

    def init_state(self, p):
        xp = backend.xp()
        return {"step": 0, "exp_avg": xp.zeros_like(p.data), "exp_avg_sq": xp.zeros_like(p.data)}

    def update(self, p, grad, state):
        """Twelve passes over p's size, all in place or into one scratch array.

        With c2 = sqrt(1 - beta2^t) the step is rewritten as
        lr c2 / (1 - beta1^t) * m / (sqrt(v) + eps c2), the same number, so
        that sqrt(v) needs no division of its own.
        """
        xp, b1, b2 = backend.xp(), self.beta1, self.beta2
        if self.weight_decay:
            grad = grad + self.weight_decay * p.data
        m, v, tmp = state["exp_avg"], state["exp_avg_sq"], self.scratch(p)
        m *= b1
        m += xp.multiply(grad, 1 - b1, out=tmp)
        v *= b2
        xp.multiply(grad, 1 - b2, out=tmp)
        v += xp.multiply(tmp, grad, out=tmp)
        state["step"] = t = state["step"] + 1
        c2 = math.sqrt(1 - b2**t)  # Python floats: the arrays stay float32
        denom = xp.sqrt(v, out=tmp)
        denom += self.eps * c2
        update = xp.divide(m, denom, out=tmp)
        update *= self.lr * c2 / (1 - b1**t)
        p.data -= update


def clip_grad_norm_(params, max_norm, error_if_nonfinite=True):
    """Scale all gradients together so that their joint L2 norm is at most max_norm.

    The norm is taken over all gradients as if concatenated into one vector;
    if it exceeds ``max_norm`` every gradient is multiplied by
    max_norm / (norm + 1e-6) (as PyTorch). Gradients are replaced, not changed
    in place. Returns the norm before clipping, a Python float. A NaN or
    infinite norm raises FloatingPointError unless ``error_if_nonfinite`` is False.
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not max_norm > 0:
        # a negative one would flip every gradient; NaN passes none of them; inf clips nothing
        raise ValueError(
            f"clip_grad_norm_: max_norm must be a number > 0 (inf: measure only), got {max_norm!r}"
        )
    params = [params] if isinstance(params, Tensor) else list(params)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    total = math.sqrt(float(sum((g * g).sum() for g in grads)))
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise FloatingPointError(
                f"clip_grad_norm_: the total gradient norm is {total}; some gradient is "
                f"not finite (pass error_if_nonfinite=False to clip anyway)"
            )
        return total
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for p in params:
            if p.grad is not None:
                p.grad = p.grad * coef
    return total
