"""Module, Parameter and Sequential: how a network holds its weights.

A ``Module`` is an object whose attributes are its parts. Assigning a
``Parameter``, another ``Module`` or a list of Modules to an attribute is all
it takes to register it; ``register_buffer`` adds state that is saved but not
trained (BatchNorm's running statistics). Names are dotted as in PyTorch
("0.weight", "encoder.fc.bias"), and shapes follow PyTorch's, so a state dict
can move between the two frameworks.

    class MLP(Module):
        def __init__(self):
            super().__init__()
            self.fc1 = Linear(784, 256)
            self.fc2 = Linear(256, 10)

        def forward(self, x):
            return self.fc2(relu(self.fc1(x)))

Calling ``mlp(x)`` runs ``forward``. ``parameters()`` is what an optimizer
updates; ``state_dict()`` / ``load_state_dict()`` save and restore weights.
"""

import numbers
from contextlib import contextmanager

from minigen import backend
from minigen.autograd import Tensor, as_tensor, no_grad
from minigen.errors import MinigenError


def check_sizes(owner, **sizes):
    """Every size is a positive int (or a pair of them; paddings may be 0), else a
    TypeError or ValueError naming it: Conv2d(1, 2, 2.5) must not build a kernel of 2."""
    for name, value in sizes.items():
        low = 0 if name.endswith("padding") else 1
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{owner}: {name} must be an integer, got {value!r}")
            if v < low:
                what = "a non-negative" if low == 0 else "a positive"
                raise ValueError(f"{owner}: {name} must be {what} integer, got {value!r}")


class Parameter(Tensor):
    """A Tensor that a Module trains: ``requires_grad`` is True."""

    __slots__ = ()

    def __init__(self, data):
        data = data.data if isinstance(data, Tensor) else data
        if not backend.is_array(data):
            data = backend.asarray(data)
        super().__init__(data, requires_grad=True)

    def __repr__(self):
        return "Parameter" + super().__repr__()[len("Tensor") :]


class StateDictError(MinigenError, KeyError, ValueError):
    """A state dict does not fit the module: missing, unexpected or mis-shaped entries."""

    def __str__(self):  # KeyError would print the message in quotes
        return str(self.args[0])


class Module:
    """Base class of layers and models.

    Subclasses set their parts as attributes in ``__init__`` (after calling
    ``super().__init__()``) and define ``forward``. ``training`` says whether
    the module is in training mode (Dropout and BatchNorm behave differently).
    """

    training = True

    def __init__(self):
        self.training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        args = [as_tensor(a) if isinstance(a, list) else a for a in args]  # lists as arrays
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ registration

    def register_buffer(self, name, array):
        """Keep ``array`` (a backend array) as state that is saved but not trained."""
        names = self.__dict__.setdefault("_buffer_names", [])
        if name not in names:
            names.append(name)
        setattr(self, name, array)

    def _children(self):
        """(name, module) for direct submodules, in assignment order."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)) and value:
                if all(isinstance(v, Module) for v in value):
                    for i, v in enumerate(value):
                        yield f"{name}.{i}", v

    def named_modules(self, prefix="", _seen=None):
        """(dotted name, module) for this module and every submodule, depth first;
        a module used twice appears once, under its first name."""
        _seen = set() if _seen is None else _seen
        if id(self) in _seen:
            return
        _seen.add(id(self))
        yield prefix, self
        for name, child in self._children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name, _seen)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def children(self):
        return [m for _, m in self._children()]

    def named_parameters(self):
        """(dotted name, Parameter), in assignment order; a shared Parameter appears once."""
        seen = set()
        for prefix, module in self.named_modules():
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{prefix}.{name}" if prefix else name), value

    def parameters(self):
        """All Parameters as a list (stable order): what an optimizer updates."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        for prefix, module in self.named_modules():
            for name in module.__dict__.get("_buffer_names", ()):
                value = getattr(module, name)
                if value is not None:
                    yield (f"{prefix}.{name}" if prefix else name), value

    def buffers(self):
        return [b for _, b in self.named_buffers()]

    # ------------------------------------------------------------------ modes

    def train(self, mode=True):
        """Set training mode on this module and all submodules; returns self."""
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self):
        """Evaluation mode (``train(False)``): BatchNorm uses running statistics,
        Dropout passes its input through. Returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Switch gradient tracking of every parameter on or off; returns self.

        A GAN's generator step backpropagates *through* the discriminator but
        must not compute gradients *for* its weights: freezing it skips those
        weight-gradient matrix products.
        """
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self):
        """Clear the gradients of all parameters (set ``.grad`` to None)."""
        for p in self.parameters():
            p.grad = None

    # -------------------------------------------------------------- state dict

    def _named_state(self):
        """(name, array) for parameters and buffers, module by module as PyTorch
        orders a state dict: each module's parameters, then its buffers."""
        seen = set()
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield dot + name, value.data
            for name in module.__dict__.get("_buffer_names", ()):
                if getattr(module, name) is not None:
                    yield dot + name, getattr(module, name)

    def state_dict(self):
        """name -> backend array, for every parameter and buffer.

        The arrays are copies: a saved state does not change as training goes on.
        Use ``minigen.to_numpy`` on each value to write it to a file.
        """
        return {name: a.copy() for name, a in self._named_state()}

    def load_state_dict(self, state_dict):
        """Copy values from ``state_dict`` into this module's parameters and buffers.

        Values may be host NumPy arrays or backend arrays (or Tensors); they
        are cast to each parameter's dtype and copied in place, so references
        held elsewhere (an optimizer) stay valid. Strict: raises
        ``StateDictError`` (a KeyError and a ValueError) naming every missing,
        unexpected and mis-shaped entry, every value of another kind (a boolean
        or integer weight, a float step count), every finite value that the
        parameter's dtype cannot hold (1e39 in float32), and every value a
        module's ``check_state`` refuses, before anything is copied.
        """
        targets = dict(self._named_state())
        given = {k: _array_like(v) for k, v in state_dict.items()}
        missing = [k for k in targets if k not in given]
        unexpected = [k for k in given if k not in targets]
        misshaped = [
            f"{k}: expected {tuple(targets[k].shape)}, got {tuple(v.shape)}"
            for k, v in given.items()
            if k in targets and tuple(v.shape) != tuple(targets[k].shape)
        ]
        if missing or unexpected or misshaped:
            parts = [f"load_state_dict for {type(self).__name__}:"]
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            if misshaped:
                parts.append(f"mis-shaped entries [{'; '.join(misshaped)}]")
            raise StateDictError(" ".join(parts))
        problems, values = [], {}
        for k, target in targets.items():
            value, want = given[k], target.dtype
            if value.dtype.kind not in ("f" if want.kind == "f" else "iuf"):
                problems.append(f"{k} is {value.dtype}, the module holds {want}")
                continue
            # checked where the value lives (host data is cast there, then moved over once)
            xp = backend.xp() if backend.is_array(value) else backend.host
            with backend.host.errstate(over="ignore"):  # an overflow is reported just below
                converted = xp.asarray(value).astype(want, copy=False)
            values[k] = converted if xp is not backend.host else backend.from_numpy(converted)
            if want.kind == "f" and not bool(xp.isfinite(converted).all()):
                if bool(xp.isfinite(value).all()):
                    problems.append(f"{k} holds values too large for {want}")
            elif want.kind != "f" and value.dtype.kind == "f":  # a count given as 3.0
                if not bool((xp.isfinite(value) & (value == xp.round(value))).all()):
                    problems.append(f"{k} must hold whole numbers, as {want} does")
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            mine = {k[len(dot) :]: v for k, v in values.items() if k.startswith(dot)}
            problems += [dot + problem for problem in module.check_state(mine)]
        if problems:
            raise StateDictError(
                f"load_state_dict for {type(self).__name__}: " + "; ".join(problems)
            )
        for k, target in targets.items():
            target[...] = values[k]

    def check_state(self, state):
        """What is wrong with ``state`` (this module's entries of a state dict being
        loaded, by their own names, already in its dtypes): a list of problems, each
        starting with the entry's name. A module whose state has a range overrides it."""
        return []

    # ---------------------------------------------------------------- printing

    def extra_repr(self):
        return ""

    def __repr__(self):
        children = list(self._children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


@contextmanager
def eval_mode(module):
    """Evaluate ``module`` without side effects: eval mode, no graph, then restore.

        with eval_mode(model):
            x = model.sample(64)      # BatchNorm on running statistics, no graph

    Inside, every submodule is in eval mode (BatchNorm uses its running
    statistics, Dropout passes through) and operations build no graph.
    Afterwards each submodule gets back its own earlier mode, also when the
    body raises.
    """
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with no_grad():
            yield module
    finally:
        for m, mode in modes:
            m.training = mode


def _array_like(value):
    """A state-dict value as something with a shape: arrays pass, Tensors give
    their data, numbers and lists become host arrays."""
    if isinstance(value, Tensor):
        return value.data
    return value if hasattr(value, "shape") else backend.host.asarray(value)


class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    Its parts are named "0", "1", ... as in PyTorch; index it and take len().
    """

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: part {i} is {type(m).__name__}, not a Module")
            setattr(self, str(i), m)

    def _parts(self):
        return [m for _, m in self._children()]

    def __len__(self):
        return len(self._parts())

    def __iter__(self):
        return iter(self._parts())

    def __getitem__(self, index):
        parts = self._parts()
        if isinstance(index, slice):
            return Sequential(*parts[index])
        return parts[index]

    def forward(self, x):
        for m in self._parts():
            x = m(x)
        return x
