"""Reverse-mode automatic differentiation: the whole engine in one file.

A ``Tensor`` holds an array (``.data``) and, when it was made by an operation
that needs gradients, the ``Function`` that made it (``._ctx``). A Function
knows where its inputs came from (``parents``: the Functions that made
them, or leaf tensors), computes ``forward`` on arrays, and saves on
itself whatever ``backward`` needs. Calling ``loss.backward()``:

1. sorts the graph so every node comes after all nodes that use it
   (an explicit stack, not recursion: deep graphs would hit Python's limit);
2. walks it from the loss, giving each Function the gradient of its output
   and asking for the gradients of its inputs (the chain rule);
3. sums the gradients that reach a node along different paths
   (``x * x + x`` sends three contributions to ``x``);
4. undoes broadcasting in one place, ``unbroadcast``, so no op does it by hand;
5. adds the result into ``.grad`` of leaf tensors. Gradients accumulate over
   ``backward`` calls until you clear them (``zero_grad`` sets ``.grad`` to
   None). Treat ``.grad`` as read-only: replace it, don't modify it in place.

Inside ``with no_grad():`` operations record nothing.

Gradients of gradients. ``grad(outputs, inputs, create_graph=True)`` runs the
same walk with recording switched on. That works because every backward is
written with Tensor operations, on Tensors: the upstream gradient, and the
arrays forward saved with ``save_for_backward``, which come back from
``saved_tensors`` linked to the node that made them (an input's maker, or this
Function itself for its output). So the backward pass is itself a graph, and
a loss built from a gradient (a gradient penalty) backpropagates like any
other. Without ``create_graph`` the same code runs under ``no_grad``: each
operation computes its array and records nothing.
"""

import numbers

from minigen import backend
from minigen.errors import MinigenError


class ShapeError(MinigenError, ValueError):
    """An operation was given inputs whose shapes do not fit together."""


_grad_enabled = True


class no_grad:  # noqa: N801 - a context manager named as in PyTorch
    """Context manager: operations inside it build no graph."""

    def __enter__(self):
        global _grad_enabled
        self._previous, _grad_enabled = _grad_enabled, False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous


def is_grad_enabled():
    return _grad_enabled


class Tensor:
    """An array plus what autograd needs: ``requires_grad``, ``grad``, its maker."""

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "__weakref__")
    __array_ufunc__ = None  # NumPy must not treat a Tensor as an array of objects

    def __init__(self, data, requires_grad=False, _ctx=None):
        if not hasattr(data, "dtype"):  # Tensor([1., 2.]): Python numbers, as minigen.tensor
            data = backend.asarray(data)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require gradients, not {data.dtype}")
        self.data = data
        self.grad = None
        self.requires_grad = requires_grad
        self._ctx = _ctx

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({backend.to_numpy(self.data)!r}{grad})"

    def __len__(self):
        return len(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        return self.data.item()

    def numpy(self):
        """A host NumPy copy of the data (``minigen.to_numpy``)."""
        return backend.to_numpy(self.data)

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def zero_grad(self):
        self.grad = None

    def requires_grad_(self, requires_grad=True):
        """Start (or stop) tracking gradients of this leaf tensor; returns self."""
        if self._ctx is not None:
            raise RuntimeError(
                "requires_grad_() on a tensor made by an operation; use x.detach().requires_grad_()"
            )
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require gradients, not {self.dtype}")
        self.requires_grad = requires_grad
        return self

    def backward(self, grad=None):
        """Add d(self)/d(leaf) * grad into ``.grad`` of every leaf that requires it.

        ``grad`` is the upstream gradient, of self's shape; it may be left out
        for a one-element tensor (a loss), where it is 1.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require gradients")
        grads = _backpropagate([self], [_upstream(self, grad, "backward()")], None, False)
        for leaf, g in grads:
            g = g.data
            if 0 in g.strides:  # a broadcast view: in-place updates would hit every element
                g = g.copy()
            leaf.grad = g if leaf.grad is None else leaf.grad + g

    # Operators and methods; the maths of each lives in minigen/ops.py.
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __pow__(self, exponent):
        return ops.pow(self, exponent)

    def __rpow__(self, base):
        return ops.pow(base, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __getitem__(self, index):
        return ops.getitem(self, index)

    def sum(self, axis=None, keepdims=False):
        return ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return ops.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return ops.max(self, axis, keepdims)

    def logsumexp(self, axis=None, keepdims=False):
        return ops.logsumexp(self, axis, keepdims)

    def reshape(self, *shape):
        return ops.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, dim0, dim1):
        """Swap two axes (PyTorch's meaning; ``permute`` reorders all of them)."""
        return ops.transpose(self, dim0, dim1)

    def permute(self, *axes):
        return ops.permute(self, _one_or_many(axes))

    T = property(lambda self: ops.permute(self, None))

    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def sqrt(self):
        return ops.sqrt(self)

    def tanh(self):
        return ops.tanh(self)

    def sigmoid(self):
        return ops.sigmoid(self)

    def relu(self):
        return ops.relu(self)

    def leaky_relu(self, negative_slope=0.01):
        return ops.leaky_relu(self, negative_slope)

    def softplus(self):
        return ops.softplus(self)

    def log_sigmoid(self):
        return ops.log_sigmoid(self)

    def clip(self, low=None, high=None):
        return ops.clip(self, low, high)


def to_numpy(x):
    """A host NumPy copy of a Tensor's values, or of an array's (backend.to_numpy)."""
    return backend.to_numpy(x.data if isinstance(x, Tensor) else x)


def grad(outputs, inputs, grad_outputs=None, *, create_graph=False, allow_unused=False):
    """The gradients of sum(outputs * grad_outputs) with respect to each input,
    as ``torch.autograd.grad`` computes them; a tuple, one Tensor per input.

    ``outputs`` and ``inputs`` are a Tensor or a sequence of them;
    ``grad_outputs`` (one per output, of its shape) may be left out for
    one-element outputs, where it is 1. No ``.grad`` is touched. With
    ``create_graph=True`` the returned gradients are part of a graph that
    reaches the inputs, the parameters and ``grad_outputs``, so they can be
    differentiated again (a gradient penalty). An input the outputs do not
    depend on is an error, or, with ``allow_unused=True``, gets a zero gradient.
    Only the paths that lead to ``inputs`` are walked.
    """
    outputs, inputs = _sequence(outputs, "outputs"), _sequence(inputs, "inputs")
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            raise RuntimeError(f"grad(): input {i} (shape {x.shape}) does not require gradients")
    for i, y in enumerate(outputs):
        if not y.requires_grad:
            raise RuntimeError(
                f"grad(): output {i} (shape {y.shape}) does not require gradients: "
                "it was computed without any input that does (or inside no_grad)"
            )
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    grad_outputs = _sequence(grad_outputs, "grad_outputs", allow_none=True)
    if len(grad_outputs) != len(outputs):
        raise ValueError(
            f"grad(): {len(grad_outputs)} grad_outputs for {len(outputs)} outputs; give one each"
        )
    upstream = [_upstream(y, g, "grad()") for y, g in zip(outputs, grad_outputs)]
    found = dict(_backpropagate(outputs, upstream, inputs, create_graph))
    result = []
    for i, x in enumerate(inputs):
        g = found.get(id(_node(x)))
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad(): input {i} (shape {x.shape}) was not used to compute the outputs; "
                    "pass allow_unused=True to get a zero gradient for it"
                )
            g = Tensor(backend.xp().zeros_like(x.data))
        elif not create_graph and g.requires_grad:
            g = g.detach()
        result.append(g)
    return tuple(result)


def _sequence(items, name, allow_none=False):
    items = [items] if isinstance(items, Tensor) or items is None else list(items)
    for i, item in enumerate(items):
        if not (isinstance(item, Tensor) or (allow_none and item is None)):
            raise TypeError(f"grad(): {name}[{i}] is a {type(item).__name__}, not a Tensor")
    return items


def _upstream(t, grad, where):
    """The gradient that starts the walk at t: ``grad`` checked, or 1 for one element."""
    if grad is None:
        if t.data.size != 1:
            raise ShapeError(
                f"{where} without a gradient needs a one-element tensor, "
                f"got shape {t.shape}; pass a gradient of that shape"
            )
        return Tensor(backend.xp().ones_like(t.data))
    grad = grad if isinstance(grad, Tensor) else Tensor(grad)
    if grad.shape != t.shape:
        raise ShapeError(f"{where}: gradient shape {grad.shape} != tensor shape {t.shape}")
    if grad.dtype != t.dtype and not grad.requires_grad:
        # an integer (or float64) upstream gradient must not make a float32 .grad float64
        grad = Tensor(grad.data.astype(t.dtype))
    return grad


def _backpropagate(outputs, upstream, inputs, create_graph):
    """The chain rule over the graph below ``outputs``, from gradients ``upstream``.

    With ``inputs`` None: returns (leaf, gradient) for every leaf that requires
    gradients. Else returns (id of the input's node, gradient) for the inputs,
    and runs only the backwards on a path to one of them, each asked only for
    the gradients of its inputs on such a path (``needs_input_grad``).
    Recording is on exactly when ``create_graph`` is.
    """
    roots = [_node(t) for t in outputs]
    order = _topological_order(roots)
    wanted = None if inputs is None else {id(_node(x)) for x in inputs}
    reach = None if wanted is None else _leading_to(order, wanted)
    grads = {}
    for root, g in zip(roots, upstream):
        _accumulate(grads, id(root), g)
    found = []
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, create_graph
    try:
        for node in order:
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if wanted is None and isinstance(node, Tensor):
                found.append((node, g))
                continue
            if wanted is not None and id(node) in wanted:
                found.append((id(node), g))
            if isinstance(node, Tensor):
                continue
            needs = node.needs_input_grad
            if reach is not None:
                needs = tuple(p is not None and id(p) in reach for p in node.parents)
                if not any(needs):
                    continue
            for parent, shape, pg in zip(node.parents, node.input_shapes, _run(node, g, needs)):
                if pg is not None and parent is not None:
                    _accumulate(grads, id(parent), unbroadcast(pg, shape))
    finally:
        _grad_enabled = previous
    return found


def _run(node, grad, needs):
    """node.backward(grad) with ``needs_input_grad`` set to ``needs`` for the call;
    its gradients as a tuple of Tensors (an array a custom backward returned is
    wrapped; it cannot carry a graph, so under create_graph it is an error)."""
    full, node.needs_input_grad = node.needs_input_grad, needs
    try:
        input_grads = node.backward(grad)
    finally:
        node.needs_input_grad = full
    if not isinstance(input_grads, tuple):
        input_grads = (input_grads,)
    wrapped = []
    for pg in input_grads:
        if pg is not None and not isinstance(pg, Tensor):
            if _grad_enabled:
                raise TypeError(
                    f"{type(node).__name__}.backward returned an array, not a Tensor, so its "
                    "gradient cannot be differentiated again (create_graph=True): write it "
                    "with Tensor operations on the grad and on saved_tensors"
                )
            pg = Tensor(pg)
        wrapped.append(pg)
    return wrapped


def _accumulate(grads, key, g):
    grads[key] = g if key not in grads else grads[key] + g


def _leading_to(order, wanted):
    """The ids of the nodes in ``order`` from which a node in ``wanted`` is reached
    (going from outputs to inputs), the wanted ones included."""
    reach = set()
    for node in reversed(order):  # every node after the nodes it was made from
        if id(node) in wanted or (
            not isinstance(node, Tensor)
            and any(p is not None and id(p) in reach for p in node.parents)
        ):
            reach.add(id(node))
    return reach


class Function:
    """One differentiable operation: ``forward`` on arrays, ``backward`` on Tensors.

    Subclasses implement ``forward(self, *arrays, **params) -> array`` and
    ``backward(self, grad) -> gradient or tuple of gradients`` (one per input,
    None where an input needs none). ``self.needs_input_grad`` says which
    inputs want a gradient, so backward can skip work.

    Backward is written with Tensor operations (``grad`` is a Tensor), so that
    it can itself be differentiated. Whatever it needs from forward, forward
    passes to ``save_for_backward``: its input arrays or its output array
    come back from ``saved_tensors`` as Tensors linked into the graph (a second
    derivative flows through them); any other array comes back as a constant,
    so save only arrays whose derivative is zero (masks, indices), and
    recompute anything else in backward from inputs and output.
    """

    _saved = ()
    # True for an op that leaves its shape check to the array module (NumPy raises a
    # ValueError when shapes do not broadcast, multiply, join or reshape): apply then
    # reports that error as a ShapeError naming the op and its input shapes. Any other
    # op's ValueError is its own and passes through as it is.
    array_checks_shapes = False

    @classmethod
    def apply(cls, *inputs, **params):
        tensors = _as_tensors(inputs)
        ctx = cls()
        try:
            out = ctx.forward(*(t.data for t in tensors), **params)
        except ValueError as e:
            if not cls.array_checks_shapes:
                raise
            shapes = " and ".join(str(t.shape) for t in tensors)
            raise ShapeError(f"{cls.__name__}: inputs of shapes {shapes} do not fit: {e}") from e
        if not (_grad_enabled and any(t.requires_grad for t in tensors)):
            return Tensor(out)
        # The graph links Functions, not tensors: for each input it keeps the
        # Function that made it (a leaf: the tensor itself, which gets .grad),
        # and its shape. So an intermediate array that no backward saved is
        # freed as soon as the layers drop it, as in PyTorch.
        ctx.parents = tuple(_node(t) if t.requires_grad else None for t in tensors)
        ctx.input_shapes = tuple(t.shape for t in tensors)
        ctx.needs_input_grad = tuple(t.requires_grad for t in tensors)
        if ctx._saved:
            ctx._sources = _sources(ctx._saved, tensors, out)
        return Tensor(out, requires_grad=True, _ctx=ctx)

    def save_for_backward(self, *arrays):
        """Keep arrays for backward (inputs or the output; see the class docstring)."""
        self._saved = arrays

    @property
    def saved_tensors(self):
        """The saved arrays as Tensors: while a graph is being recorded
        (create_graph), an input comes back linked to its maker and the output
        to this Function; otherwise every one is a constant."""
        if not _grad_enabled:
            return tuple(None if a is None else Tensor(a) for a in self._saved)
        saved = []
        for a, source in zip(self._saved, self._sources):
            node = None if source is None else self if source == -1 else self.parents[source]
            if node is None:
                saved.append(None if a is None else Tensor(a))
            elif isinstance(node, Tensor):  # a leaf: itself, so its gradient reaches it
                saved.append(node)
            else:
                saved.append(Tensor(a, requires_grad=True, _ctx=node))
        return tuple(saved)

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError


def _sources(saved, tensors, out):
    """Where each saved array came from: -1 the output, i input i, None elsewhere.

    Arrays are recognised by identity. One array can be the data of two inputs
    (x * x.detach()): each saved array then takes the first such input not
    taken by an earlier one, so arrays saved in the order of the inputs find
    their own."""
    sources, taken = [], set()
    for array in saved:
        if array is out:
            sources.append(-1)
            continue
        matches = [i for i, t in enumerate(tensors) if t.data is array]
        free = [i for i in matches if i not in taken]
        source = free[0] if free else matches[0] if matches else None
        taken.add(source)
        sources.append(source)
    return tuple(sources)


def _one_or_many(args):
    """x.permute(1, 0) and x.permute((1, 0)) alike; x.permute(0) for one axis."""
    return args[0] if len(args) == 1 and not isinstance(args[0], numbers.Integral) else args


def _as_tensors(inputs):
    """Wrap constants as Tensors; Python and NumPy scalars and numeric arrays take
    the graph's floating dtype, so a float32 graph stays float32."""
    floating = [x for x in inputs if getattr(x, "dtype", None) is not None and x.dtype.kind == "f"]
    # A Tensor sets the dtype, else an array (exp(float64 array) stays float64), else float32.
    dtype = next((x.dtype for x in floating if isinstance(x, Tensor)), None)
    dtype = dtype or next(
        (x.dtype for x in floating if not isinstance(x, numbers.Number)), backend.DEFAULT_DTYPE
    )
    tensors = []
    for given in inputs:
        x = given
        if isinstance(given, (list, tuple)):  # Python lists (and tuples) work as arrays do
            try:
                x = backend.from_numpy(backend.host_numbers(given))
            except (TypeError, ValueError):  # None, text, ragged: the operand error below
                x = None
        if isinstance(x, Tensor):
            tensors.append(x)
        elif isinstance(x, numbers.Number):
            tensors.append(Tensor(backend.xp().asarray(x, dtype=dtype)))
        elif getattr(x, "dtype", None) is not None and x.dtype.kind in "fiub":
            # also integer and bool constants: int64 + float32 would give float64
            tensors.append(Tensor(x if x.dtype == dtype else x.astype(dtype)))
        else:
            raise TypeError(
                f"cannot use {given!r} ({type(given).__name__}) as a tensor operand; use "
                "a number, a list of numbers, an array or a Tensor"
            )
    return tensors


def as_tensor(x):
    """``x`` as a Tensor: a Tensor itself, or numbers, lists and arrays wrapped
    as ``_as_tensors`` wraps operands (float32 unless an array says otherwise)."""
    return x if isinstance(x, Tensor) else _as_tensors([x])[0]


def unbroadcast(grad, shape):
    """Sum ``grad`` (a Tensor or an array) down to ``shape``: the adjoint of
    NumPy broadcasting.

    Broadcasting prepends size-1 axes and stretches size-1 axes; the gradient
    of a stretched input is the sum over the stretched axes.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _node(t):
    """A tensor's place in the graph: the Function that made it, or the tensor
    itself when it is a leaf."""
    return t if t._ctx is None else t._ctx


def _topological_order(roots):
    """Graph nodes (Functions and leaf tensors) below ``roots``, each before the
    nodes it was made from."""
    post_order, seen = [], set()
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            post_order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if not isinstance(node, Tensor):
            stack.extend((p, False) for p in node.parents if p is not None and id(p) not in seen)
    post_order.reverse()
    return post_order


from minigen import ops  # noqa: E402  (ops needs Tensor and Function defined above)
