"""Hypothesis strategies and small helpers shared by the tests.

Gradient checks only mean something where derivatives are of order one and
smooth: values are drawn from bounded domains, away from kinks (relu at 0,
clip at its bounds) and, for max, without ties.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen
from minigen import backend


def t(array, requires_grad=True):
    """A Tensor on the current backend from a host NumPy array (dtype kept)."""
    return minigen.Tensor(backend.from_numpy(np.asarray(array)), requires_grad=requires_grad)


def host(x):
    """A host NumPy copy of a Tensor or backend array."""
    return minigen.to_numpy(x)


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=3):
    """Small array shapes, size-1 dimensions included."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3):
    """A tuple of shapes that broadcast together (size-1 and missing axes included)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side
    ).map(lambda bs: bs.input_shapes)


def values(lo=-2.0, hi=2.0, avoid=(), gap=0.1):
    """Floats in [lo, hi], at least ``gap`` away from every point in ``avoid``."""
    floats = st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if avoid:
        floats = floats.filter(lambda v: all(abs(v - k) > gap for k in avoid))
    return floats


def arrays(shape, lo=-2.0, hi=2.0, avoid=(), gap=0.1):
    """Float64 host arrays of ``shape``; every element drawn on its own (no fill)."""
    return hnp.arrays(np.float64, shape, elements=values(lo, hi, avoid, gap), fill=st.nothing())


@st.composite
def distinct_arrays(draw, shape, step=0.3):
    """Float64 arrays whose elements are all distinct, at least ``step`` apart (no ties for max)."""
    n = int(np.prod(shape))
    perm = np.array(draw(st.permutations(range(n))), dtype=np.float64)
    return ((perm - n / 2) * step).reshape(shape)


def axes(ndim):
    """An ``axis`` argument for a reduction over an ndim array: None, an int or a tuple,
    negative axes included."""
    if ndim == 0:
        return st.none()
    single = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).flatmap(
        lambda ax: st.tuples(*(st.sampled_from([a, a - ndim]) for a in ax))
    )
    return st.one_of(st.none(), single, several)


@st.composite
def slice_index(draw, shape):
    """A tuple of slices (negative bounds and steps included) and maybe an integer."""
    index = []
    for n in shape:
        kind = draw(st.sampled_from(["slice", "int", "all"]))
        if kind == "int":
            index.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            start = draw(st.none() | st.integers(-n, n))
            stop = draw(st.none() | st.integers(-n, n))
            step = draw(st.sampled_from([None, 1, 2, -1]))
            index.append(slice(start, stop, step))
        else:
            index.append(slice(None))
    return tuple(index)


@st.composite
def joinable(draw, stack, max_dims=3):
    """Shapes of 1-3 arrays that concatenate (or stack) along a drawn axis."""
    base = list(draw(shapes(min_dims=1, max_dims=max_dims)))
    count = draw(st.integers(1, 3))
    nd = len(base) + (1 if stack else 0)
    axis = draw(st.integers(-nd, nd - 1))
    out = []
    for _ in range(count):
        s = list(base)
        if not stack:
            s[axis] = draw(st.integers(1, 3))
        out.append(tuple(s))
    return out, axis
