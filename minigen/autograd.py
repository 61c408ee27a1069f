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

    def backward(self, grad=None):
        """Add d(self)/d(leaf) * grad into ``.grad`` of every leaf that requires it.

        ``grad`` is the upstream gradient, of self's shape; it may be left out
        for a one-element tensor (a loss), where it is 1.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require gradients")
        if grad is None:
            if self.data.size != 1:
                raise ShapeError(
                    f"backward() without a gradient needs a one-element tensor, "
                    f"got shape {self.shape}; pass grad of that shape"
                )
            grad = backend.xp().ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            if grad.shape != self.shape:
                raise ShapeError(
                    f"backward(): grad shape {grad.shape} != tensor shape {self.shape}"
                )
        root = _node(self)
        grads = {id(root): grad}
        for node in _topological_order(root):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if isinstance(node, Tensor):  # a leaf: keep the gradient
                if not node.requires_grad:
                    continue
                if 0 in g.strides:  # a broadcast view: in-place updates would hit every element
                    g = g.copy()
                node.grad = g if node.grad is None else node.grad + g
                continue
            input_grads = node.backward(g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for parent, shape, pg in zip(node.parents, node.input_shapes, input_grads):
                if pg is None or parent is None:
                    continue
                pg = unbroadcast(pg, shape)
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg

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


class Function:
    """One differentiable operation: ``forward`` on arrays, ``backward`` on gradients.

    Subclasses implement ``forward(self, *arrays, **params) -> array`` and
    ``backward(self, grad) -> gradient or tuple of gradients`` (one per input,
    None where an input needs none). They may save arrays on ``self`` in
    forward for use in backward. ``self.needs_input_grad`` says which inputs
    want a gradient, so backward can skip work.
    """

    @classmethod
    def apply(cls, *inputs, **params):
        tensors = _as_tensors(inputs)
        ctx = cls()
        try:
            out = ctx.forward(*(t.data for t in tensors), **params)
        except ValueError as e:
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
        return Tensor(out, requires_grad=True, _ctx=ctx)

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError


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
        # Python lists (and tuples) work as arrays do
        x = backend.xp().asarray(given) if isinstance(given, (list, tuple)) else given
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
    """Sum ``grad`` down to ``shape``: the adjoint of NumPy broadcasting.

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


def _topological_order(root):
    """Graph nodes (Functions and leaf tensors), each before the nodes it was made from."""
    post_order, seen = [], set()
    stack = [(root, False)]
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
