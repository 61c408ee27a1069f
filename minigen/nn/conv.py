"""2-D convolution and transposed convolution as im2col + one matrix product.

A convolution multiplies every kh x kw patch of the input by the same
weights. ``im2col`` copies the patches into the columns of a matrix, so the
whole convolution is one GEMM:

    cols  (C*kh*kw, OH*OW*N)     one column per output pixel
    W     (O, C*kh*kw)           one row per output channel
    y  =  W @ cols               (O, OH*OW*N) -> (N, O, OH, OW)

The copy goes by kernel offset, not by pixel: for each (i, j) in kh x kw,
the inputs that meet weight (i, j) form one strided slice of the padded
input, x_pad[:, :, i : i + s*OH : s, j : j + s*OW : s]. So there are kh*kw
slice copies, whatever the batch, channel or image size, and the code runs
unchanged on NumPy and CuPy. The padded input is never made: each slice is
read from x itself and the few rows and columns that fall in the padding are
zeroed in the columns (``_window``), which saves a copy of x and its memory.
``col2im`` is its adjoint: it adds each offset's
slice back into a zero buffer (overlapping patches add up), with the same
strided slices and no scatter-add.

The column buffer is laid out (C, kh, kw, OH, OW, N) so that a reshape, not
a copy, turns it into the (C*kh*kw, OH*OW*N) GEMM operand and PyTorch's
weight (O, C, kh, kw) into (O, C*kh*kw). The batch axis goes last because
it is the longest contiguous run each slice copy can have (64 floats at
batch 64, against 7 for an image row), which makes the copies 2-3x faster.
Outputs are (N, O, OH, OW) views of an (O, OH, OW, N) array; the next
layer's im2col reads them in that order.

Backward of conv2d: dW = g @ cols^T and dcols = W^T @ g, then col2im(dcols)
gives dx. The column matrix is kh*kw/s^2 times the input, so the layers
never hold all of it: ``conv_gemms`` makes it a block of kernel rows at a time
(the GEMMs of the blocks add up to the GEMM of the whole), and
``col2im_matmul`` adds W_block^T @ g into the image block by block.
A transposed convolution is exactly the adjoint of conv2d (its forward is
conv2d's dx, its backward is conv2d's forward), so it reuses the same two
helpers with the roles swapped.

A strided transposed convolution also splits into s^2 ordinary ones (the
sub-pixel form: Shi et al. 2016, "Is the deconvolution layer the same as a
convolutional layer?"). Output row r + m*s meets only the kernel rows
a, a + s, a + 2s, ... with a = (r + p) mod s, so each output phase (row and
column remainder mod s) is a stride-1 correlation of the input with the
sub-kernel W[:, :, a::s, b::s], flipped. For k = 4, s = 2, p = 1: four 2x2
sub-kernels; even output rows read input rows m - 1 and m, odd ones m and
m + 1. Any kernel splits: when s does not divide k the phases' sub-kernels
differ in size (3 by 2: 2 taps and 1), and a phase no tap reaches (k < s)
is zero. ``subpixel_matmul`` computes each phase as im2col of the input,
one GEMM and one strided copy into the output, with no adds into the image,
and is used when the input has at most ``SUBPIXEL_RATIO`` times the output's
channels. It copies windows of the input (Cin channels) where col2im adds
into the output (Cout channels), so for few output channels (64 -> 1, a
decoder's last layer) col2im moves far less memory and stays. Odena et al.
2016 trace the checkerboard artifacts of these layers to the same phases:
with k = 3, s = 2 the phases sum 4, 2, 2 and 1 weights.

Sizes, as PyTorch: conv2d OH = (H + 2p - kh) // s + 1;
conv_transpose2d OH = (H - 1) s - 2p + kh + output_padding.
"""

import functools
import math
from concurrent.futures import ThreadPoolExecutor

from minigen import backend
from minigen.autograd import Function, ShapeError, Tensor, is_grad_enabled
from minigen.nn import init
from minigen.nn.module import Module, Parameter, check_sizes


def conv_output_size(size, kernel, stride=1, padding=0):
    """Output length of a convolution along one axis: (size + 2p - k) // s + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(size, kernel, stride=1, padding=0, output_padding=0):
    """Output length of a transposed convolution: (size - 1) s - 2p + k + output_padding."""
    return (size - 1) * stride - 2 * padding + kernel + output_padding


# --------------------------------------------------------------- im2col, col2im

# Copies and adds split over this many threads on the NumPy backend (NumPy
# releases the GIL inside them); elsewhere (CuPy, strict) one call does it all.
# Alone, an im2col copy runs 1.4x faster on two threads, but inside a training
# step it runs slower (probably because the BLAS threads still hold the cores after
# each GEMM).
# On a 2-core Xeon (AVX-512), alternating within one process, one thread made
# every conv model's step 3-17% faster, with one BLAS thread or two, so one it
# is; ``benchmarks/steps.py --copy-threads 2`` measures another machine.
COPY_THREADS = 1


@functools.cache
def _copy_pool():
    return ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="minigen-copy")


def _in_parts(work, c, n):
    """Run ``work(part)`` over index tuples that split a (C, ..., N) array:
    by channels, or by batch when there is a single channel. Parts never
    overlap, so the threads write disjoint memory."""
    parts = COPY_THREADS if backend.threaded_copies() else 1
    axis, size = ((), c) if c >= parts else ((Ellipsis,), n)
    if parts < 2 or size < parts:
        work((slice(None),))
        return
    bounds = [size * k // parts for k in range(parts + 1)]
    jobs = [axis + (slice(lo, hi),) for lo, hi in zip(bounds, bounds[1:])]
    for done in [_copy_pool().submit(work, part) for part in jobs]:
        done.result()  # re-raises an error of the thread here


def _offset_index(i, j, stride, oh, ow):
    """x_pad[index] (x_pad laid out (C, H, W, N)) are the inputs that meet
    weight (i, j): a strided (C, OH, OW, N) slice."""
    s = stride
    return (slice(None), slice(i, i + s * oh, s), slice(j, j + s * ow, s))


def _padded(x, padding):
    """x (N, C, H, W) as (C, H + 2p, W + 2p, N), zero-padded; a view when p = 0
    and x is already laid out that way (the output of the layer before)."""
    n, c, h, w = x.shape
    p = padding
    if p == 0:
        return backend.xp().ascontiguousarray(x.transpose(1, 2, 3, 0))
    xpad = backend.xp().zeros((c, h + 2 * p, w + 2 * p, n), dtype=x.dtype)

    def work(part):
        xpad[part][:, p : p + h, p : p + w] = x.transpose(1, 2, 3, 0)[part]

    _in_parts(work, c, n)
    return xpad


def _channels_last(x):
    """x (N, C, H, W) as (C, H, W, N): a view when the layer before wrote it so
    (the batch axis contiguous), else one copy into that layout."""
    xt = x.transpose(1, 2, 3, 0)
    return xt if xt.strides[-1] == xt.itemsize else backend.xp().ascontiguousarray(xt)


def _window(dst, src, top, left, stride=1):
    """dst (C, MH, MW, N) = src (C, H, W, N) at rows top + s*m and columns
    left + s*l, zeros where those leave src: the zero padding, written into
    the columns instead of into a padded copy of the input."""
    _, mh, mw, _ = dst.shape
    _, h, w, _ = src.shape
    s = stride
    h0, h1 = min(mh, max(0, -(top // s))), max(0, min(mh, (h - 1 - top) // s + 1))
    w0, w1 = min(mw, max(0, -(left // s))), max(0, min(mw, (w - 1 - left) // s + 1))
    if h1 <= h0 or w1 <= w0:
        dst[...] = 0
        return
    for edge in (dst[:, :h0], dst[:, h1:], dst[:, h0:h1, :w0], dst[:, h0:h1, w1:]):
        if edge.size:
            edge[...] = 0
    rows = slice(top + s * h0, top + s * (h1 - 1) + 1, s)
    dst[:, h0:h1, w0:w1] = src[:, rows, left + s * w0 : left + s * (w1 - 1) + 1 : s]


def fill_columns(cols, src, rows, stride, padding=0):
    """cols[:, r, j] = the (C, OH, OW, N) strided slice of the padded input that
    meets weight (rows[r], j), src the unpadded input as (C, H, W, N): the im2col
    copies of the kernel rows ``rows``."""
    c, _, kw, _, _, n = cols.shape

    def work(part):
        for r, i in enumerate(rows):
            for j in range(kw):
                _window(cols[part][:, r, j], src[part], i - padding, j - padding, stride)

    _in_parts(work, c, n)


def im2col(x, kh, kw, stride=1, padding=0):
    """Patches of x (N, C, H, W) as a (C, kh, kw, OH, OW, N) array.

    cols[c, i, j, oh, ow, n] = x_pad[n, c, oh*s + i, ow*s + j]. Reshape to
    (C*kh*kw, OH*OW*N) for the GEMM. One strided-slice copy per kernel offset.
    """
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    if kh == kw == stride == 1:  # a 1x1 convolution: the columns are the input itself
        return _padded(x, padding).reshape(c, 1, 1, oh, ow, n)
    cols = backend.xp().empty((c, kh, kw, oh, ow, n), dtype=x.dtype)
    fill_columns(cols, _channels_last(x), range(kh), stride, padding)
    return cols


# The smallest GEMM depth worth splitting the columns for: blocks of kernel
# rows hold at least this many rows of the column matrix (or all of them).
# 128 makes a block one kernel row from 32 channels up (4x4 kernels): the
# buffer is a quarter of the columns, the largest temporary of a conv step,
# and the reference models' steps took the same CPU time as with 256.
BLOCK_DEPTH = 128


def _row_blocks(c, kh, kw):
    """(first, last + 1) kernel rows per block: C*kw*rows >= BLOCK_DEPTH, so that
    the block GEMMs stay deep enough to run at full speed."""
    rows = min(kh, -(-BLOCK_DEPTH // (c * kw)))
    return [(i, min(i + rows, kh)) for i in range(0, kh, rows)]


def column_blocks(x, kh, kw, stride=1, padding=0):
    """im2col a block of kernel rows at a time: yields (i0, i1, cols), cols the
    (C*(i1-i0)*kw, OH*OW*N) rows of the column matrix that meet kernel rows
    i0..i1-1.

    One buffer serves every block, so only a part of the column matrix is in
    memory at once (a kh-th for 64 channels and 4x4 kernels); GEMMs with the
    blocks add up to the GEMM with the whole matrix
    (W2 @ cols = sum over blocks of W2[:, block] @ cols_block).
    """
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    if kh == kw == stride == 1:
        yield 0, 1, im2col(x, 1, 1, 1, padding).reshape(c, -1)
        return
    src = _channels_last(x)
    blocks = _row_blocks(c, kh, kw)
    buffer = backend.xp().empty(c * blocks[0][1] * kw * oh * ow * n, dtype=x.dtype)
    for i0, i1 in blocks:
        cols = _block_view(buffer, (c, i1 - i0, kw, oh, ow, n))
        fill_columns(cols, src, range(i0, i1), stride, padding)
        yield i0, i1, cols.reshape(-1, oh * ow * n)


def _block_view(buffer, shape):
    """The first prod(shape) numbers of a flat buffer, as a contiguous array of that shape.

    A block with fewer kernel rows than the first (the last one, when the rows do not
    divide evenly) must still be contiguous: its 2-D reshape is then a view, so a GEMM
    writing into it (``out=``) writes into the block and not into a silent copy.
    """
    return buffer[: math.prod(shape)].reshape(shape)


def conv_gemms(x, kh, kw, stride=1, padding=0, weight=None, g=None):
    """The two GEMMs with the columns of x (C channels), a block of kernel rows
    at a time (``column_blocks``):

    weight (R, C, kh, kw) -> y  = W2 @ cols,  (R, OH*OW*N)   (a convolution)
    g (R, OH*OW*N)        -> dW = g @ cols^T, (R, C, kh, kw) (a weight gradient)

    Either may be None; returns (y, dW).
    """
    y = dw = part = None
    c, xp = x.shape[1], backend.xp()
    for i0, i1, cols in column_blocks(x, kh, kw, stride, padding):
        if weight is not None:
            w_block = weight[:, :, i0:i1].reshape(weight.shape[0], -1)  # a small copy
            if y is None:
                y = xp.matmul(w_block, cols)
            else:  # later blocks add theirs, through one reused buffer
                part = xp.matmul(w_block, cols, out=part if part is not None else xp.empty_like(y))
                y += part
        if g is not None:
            if dw is None:
                dw = xp.empty((g.shape[0], c, kh, kw), dtype=g.dtype)
            dw[:, :, i0:i1] = xp.matmul(g, cols.T).reshape(g.shape[0], c, i1 - i0, kw)
    return y, dw


def _col2im_sum(blocks, c, kh, kw, oh, ow, n, h, w, stride, padding, dtype):
    """Add blocks (i0, cols), cols (C, rows, kw, OH, OW, N) the columns of kernel
    rows i0, i0 + 1, ..., into their strided slices of a zero
    (C, H + 2p, W + 2p, N) buffer; returns the (N, C, H, W) view of the
    unpadded part. Overlapping patches add up."""
    p = padding
    xpad = backend.xp().zeros((c, h + 2 * p, w + 2 * p, n), dtype=dtype)
    for i0, cols in blocks:

        def work(part, i0=i0, cols=cols):
            for r in range(cols.shape[1]):
                for j in range(kw):
                    index = _offset_index(i0 + r, j, stride, oh, ow)
                    xpad[part][index] += cols[part][:, r, j]

        _in_parts(work, c, n)
    return xpad[:, p : p + h, p : p + w].transpose(3, 0, 1, 2)


def col2im(cols, h, w, stride=1, padding=0):
    """The adjoint of im2col: add patches (C, kh, kw, OH, OW, N) back into an
    image (N, C, h, w). Where patches overlap their values add up."""
    c, kh, kw, oh, ow, n = cols.shape
    return _col2im_sum([(0, cols)], c, kh, kw, oh, ow, n, h, w, stride, padding, cols.dtype)


def col2im_matmul(weight, g2, shape, h, w, stride=1, padding=0):
    """col2im(W2^T @ g2) without the whole (C*kh*kw, M) column matrix in memory.

    weight (O, C, kh, kw), g2 (O, M) with M = OH*OW*N, shape = (C, kh, kw, OH, OW, N).
    The columns of a block of kernel rows are W[:, :, block]^T @ g2, added
    into the image before the next block's product overwrites them: a few
    GEMMs instead of one, and a part of the memory (as ``column_blocks``).
    """
    c, kh, kw, oh, ow, n = shape
    o, xp = weight.shape[0], backend.xp()
    row_blocks = _row_blocks(c, kh, kw)
    buffer = xp.empty(c * row_blocks[0][1] * kw * oh * ow * n, dtype=g2.dtype)

    def blocks():
        for i0, i1 in row_blocks:
            w_block = weight[:, :, i0:i1].reshape(o, -1)  # (O, C*rows*kw), a small copy
            cols = _block_view(buffer, (c, i1 - i0, kw, oh, ow, n))
            xp.matmul(w_block.T, g2, out=cols.reshape(-1, oh * ow * n))
            yield i0, cols

    return _col2im_sum(blocks(), c, kh, kw, oh, ow, n, h, w, stride, padding, g2.dtype)


# ------------------------------------------------------------------ sub-pixel

# A stride-s transposed convolution runs as s^2 stride-1 convolutions (below)
# when Cin <= SUBPIXEL_RATIO * Cout, and by col2im otherwise: the sub-pixel
# form copies windows of the input (Cin channels), col2im adds into the output
# (Cout channels), so with few output channels (a last layer to one image
# channel) col2im moves far less memory.
SUBPIXEL_RATIO = 2

# The columns of one chunk of a phase hold at most this many times the input's numbers.
SUBPIXEL_CHUNK = 2


def _phases(out_size, kernel, stride, padding):
    """The sub-pixel phases of a transposed convolution along one axis.

    Outputs r, r + s, r + 2s, ... (phase r) meet only the kernel taps
    a, a + s, a + 2s, ... with a = (r + p) mod s: output r + m*s sums the
    inputs first + m + t, t < taps, times those taps in reverse order, a
    stride-1 correlation. Yields (r, a, taps, count, first) for each phase;
    taps is 0 for a phase no tap reaches (kernel < stride)."""
    for r in range(min(stride, out_size)):
        a = (r + padding) % stride
        taps = len(range(a, kernel, stride))
        yield r, a, taps, len(range(r, out_size, stride)), (r + padding) // stride - taps + 1


def subpixel_matmul(weight, x, h, w, stride=1, padding=0):
    """conv_transpose2d of x (N, Cin, H, W) with weight (Cin, Cout, kh, kw),
    output (N, Cout, h, w) (a view of a (Cout, h, w, N) array), as s^2
    stride-1 convolutions of x, one per output phase, with no adds into the
    image.

    Phase (r, c) (outputs r + m*s, c + l*s) is the correlation of x with the
    sub-kernel W[:, :, a::s, b::s] flipped, as (Cout, Cin, th, tw): the im2col
    copies of th*tw windows of x, one GEMM, and one strided copy into y. A
    chunk of phase rows at a time, so that the columns hold at most
    ``SUBPIXEL_CHUNK`` times x's numbers; one buffer serves every chunk.
    The copies run on one thread: a chunk is small, and handing it to the copy
    threads cost more CPU time than it saved.
    """
    n, cin, hin, win = x.shape
    _, cout, kh, kw = weight.shape
    xp = backend.xp()
    xt = _channels_last(x)
    y = xp.empty((cout, h, w, n), dtype=x.dtype)
    plan = []  # (row phase, column phase, rows per chunk)
    for rp in _phases(h, kh, stride, padding):
        for cp in _phases(w, kw, stride, padding):
            (r, _, th, mh, _), (c, _, tw, mw, _) = rp, cp
            if th == 0 or tw == 0:  # no tap reaches this phase
                y[:, r::stride, c::stride] = 0
            else:
                plan.append((rp, cp, max(1, min(mh, SUBPIXEL_CHUNK * hin * win // (th * tw * mw)))))
    sizes = [(cin * rp[2] * cp[2], cp[3] * rows * n) for rp, cp, rows in plan]
    buffer = xp.empty(max((k * m for k, m in sizes), default=0), dtype=x.dtype)
    out = xp.empty(max((cout * m for _, m in sizes), default=0), dtype=x.dtype)
    for (r, a, th, mh, fh), (c, b, tw, mw, fw), rows in plan:
        sub = weight[:, :, a::stride, b::stride][:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        sub = sub.reshape(cout, -1)  # (Cout, Cin*th*tw), a small copy
        for m0 in range(0, mh, rows):
            m1 = min(mh, m0 + rows)
            cols = _block_view(buffer, (cin, th, tw, m1 - m0, mw, n))
            for t in range(th):
                for u in range(tw):
                    _window(cols[:, t, u], xt, fh + m0 + t, fw + u)
            yp = _block_view(out, (cout, (m1 - m0) * mw * n))
            xp.matmul(sub, cols.reshape(-1, (m1 - m0) * mw * n), out=yp)
            y[:, r + m0 * stride : r + m1 * stride : stride, c::stride] = yp.reshape(
                cout, m1 - m0, mw, n
            )
    return y.transpose(3, 0, 1, 2)


def _channels_first(a):
    """(N, C, H, W) -> (C, H*W*N), the GEMM operand layout (copies if needed)."""
    return a.transpose(1, 2, 3, 0).reshape(a.shape[1], -1)


# ------------------------------------------------------------------- Functions


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class Conv2dFunction(Function):
    """y = conv2d(x, W) + b: x (N, C, H, W), W (O, C, kh, kw), b (O,).

    forward:  cols = im2col(x);  y = W2 @ cols           (W2 = W as (O, C*kh*kw))
    backward: dx = conv_transpose2d(g, W)  (col2im(W2^T @ g2), the adjoint)
              dW = conv2d_weight(x, g)     (g2 @ cols^T)
              db = sum of g                (g2 = dL/dy as (O, OH*OW*N))

    A convolution is bilinear in x and W, and these three Functions are its
    three faces: each one's backward is made of the other two, so gradients
    of any order come out of the same three kernels.

    Memory: the columns are kh*kw/s^2 times the input (4x for the 4x4,
    stride-2 layers). So they are made a block of kernel rows at a time
    (``conv_gemms``) and never kept, and forward keeps x, as PyTorch does;
    backward copies them again only when W needs a gradient (not when
    gradients only pass through to the generator), and computes dx without
    them (``col2im_matmul``).
    """

    def forward(self, x, weight, bias=None, stride=1, padding=0):
        n, _, h, w = x.shape
        o, _, kh, kw = weight.shape
        oh, ow = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
        y, _ = conv_gemms(x, kh, kw, stride, padding, weight=weight)
        if bias is not None:
            y += bias.reshape(o, 1)
        self.save_for_backward(x, weight)
        self.stride, self.padding, self.has_bias = stride, padding, bias is not None
        return y.reshape(o, oh, ow, n).transpose(3, 0, 1, 2)

    def backward(self, grad):
        x, weight = self.saved_tensors
        s, p = self.stride, self.padding
        gx = gw = gb = None
        if self.needs_input_grad[1]:  # first: its columns are freed before gx is made
            gw = Conv2dWeightFunction.apply(x, grad, kernel=weight.shape[2:], stride=s, padding=p)
        if self.needs_input_grad[0]:
            gx = ConvTranspose2dFunction.apply(
                grad,
                weight,
                stride=s,
                padding=p,
                output_padding=_output_padding(x, grad, weight.shape[2:], s, p),
            )
        if self.has_bias and self.needs_input_grad[2]:
            gb = grad.sum(axis=(0, 2, 3))
        return gx, gw, gb


def _output_padding(x, y, kernel, stride, padding):
    """The output_padding that makes conv_transpose2d of y (a conv2d output of x)
    x's size: H - ((OH - 1) s - 2p + kh), the rows (and columns) of x that no
    window reached."""
    return tuple(
        x.shape[axis] + 2 * padding - k - (y.shape[axis] - 1) * stride
        for axis, k in zip((2, 3), kernel)
    )


class Conv2dWeightFunction(Function):
    """dW = conv2d_weight(x, g): the gradient of conv2d's weight, x (N, C, H, W)
    and g (N, O, OH, OW) -> (O, C, kh, kw); dW[o, c, i, j] = sum over n, oh, ow
    of g[n, o, oh, ow] * x_pad[n, c, oh*s + i, ow*s + j]. Bilinear in x and g:

    backward: dx = conv_transpose2d(g, G),  dg = conv2d(x, G)   (G = dL/dW)
    """

    def forward(self, x, g, kernel, stride=1, padding=0):
        self.save_for_backward(x, g)
        self.stride, self.padding = stride, padding
        _, dw = conv_gemms(x, *kernel, stride, padding, g=_channels_first(g))
        return dw

    def backward(self, grad):
        x, g = self.saved_tensors
        s, p = self.stride, self.padding
        gx = gg = None
        if self.needs_input_grad[0]:
            gx = ConvTranspose2dFunction.apply(
                g,
                grad,
                stride=s,
                padding=p,
                output_padding=_output_padding(x, g, grad.shape[2:], s, p),
            )
        if self.needs_input_grad[1]:
            gg = Conv2dFunction.apply(x, grad, stride=s, padding=p)
        return gx, gg


class ConvTranspose2dFunction(Function):
    """y = conv_transpose2d(x, W) + b: x (N, Cin, H, W), W (Cin, Cout, kh, kw), b (Cout,).

    The adjoint of conv2d with the same W (as PyTorch's weight layout says):
    forward:  y = col2im(W2^T @ x2)     (W2 = W as (Cin, Cout*kh*kw), x2 = x as (Cin, H*W*N)),
              or, strided with Cin <= SUBPIXEL_RATIO * Cout, s^2 phase convolutions
              (``subpixel_matmul``): either way array kernels, so the backward
              below serves every order
    backward: dx = conv2d(g, W);  dW = conv2d_weight(g, x);  db = sum of g
    Forward keeps only x; the columns live inside one call each, a kernel
    row at a time (``col2im_matmul``, ``conv_gemms``). A first-order backward
    that needs both dx and dW makes g's columns once for the two GEMMs.
    ``output_padding`` may be a pair (rows, columns).
    """

    def forward(self, x, weight, bias=None, stride=1, padding=0, output_padding=0):
        n, cin, h, w = x.shape
        _, cout, kh, kw = weight.shape
        oph, opw = _pair(output_padding)
        oh = conv_transpose_output_size(h, kh, stride, padding, oph)
        ow = conv_transpose_output_size(w, kw, stride, padding, opw)
        if stride > 1 and cin <= SUBPIXEL_RATIO * cout:
            y = subpixel_matmul(weight, x, oh, ow, stride, padding)
        else:
            shape = (cout, kh, kw, h, w, n)
            y = col2im_matmul(weight, _channels_first(x), shape, oh, ow, stride, padding)
        if bias is not None:
            y += bias.reshape(1, cout, 1, 1)
        self.save_for_backward(x, weight)
        self.stride, self.padding, self.has_bias = stride, padding, bias is not None
        return y

    def backward(self, grad):
        x, weight = self.saved_tensors
        s, p = self.stride, self.padding
        need_x, need_w = self.needs_input_grad[0], self.needs_input_grad[1]
        gx = gw = gb = None
        if need_x and need_w and not is_grad_enabled():
            gx2, gw = conv_gemms(
                grad.data, *weight.shape[2:], s, p, weight=weight.data, g=_channels_first(x.data)
            )
            n, cin, h, w = x.shape
            gx, gw = Tensor(gx2.reshape(cin, h, w, n).transpose(3, 0, 1, 2)), Tensor(gw)
        else:
            if need_x:
                gx = Conv2dFunction.apply(grad, weight, stride=s, padding=p)
            if need_w:
                gw = Conv2dWeightFunction.apply(
                    grad, x, kernel=weight.shape[2:], stride=s, padding=p
                )
        if self.has_bias and self.needs_input_grad[2]:
            gb = grad.sum(axis=(0, 2, 3))
        return gx, gw, gb


# ------------------------------------------------------------ functional forms


def _int(value, name, where):
    """A square stride or padding: an int, or a pair of equal ints."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"{where}: {name}={value}; only square values are supported")
        value = value[0]
    if int(value) != value or value < 0:
        raise ValueError(f"{where}: {name} must be a non-negative integer, got {value}")
    return int(value)


def _shape(t):
    return tuple((t.data if isinstance(t, Tensor) else t).shape)


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """2-D convolution (cross-correlation, as PyTorch) of x (N, C, H, W) with
    weight (O, C, kh, kw), plus bias (O,). Output (N, O, OH, OW),
    OH = (H + 2 padding - kh) // stride + 1."""
    stride, padding = _int(stride, "stride", "conv2d"), _int(padding, "padding", "conv2d")
    xs, ws = _shape(x), _shape(weight)
    if len(xs) != 4 or len(ws) != 4 or xs[1] != ws[1]:
        raise ShapeError(
            f"conv2d: input of shape {xs} does not fit weight of shape {ws}; "
            f"expected input (N, {ws[1] if len(ws) == 4 else 'C'}, H, W), got {xs}"
        )
    if stride < 1:
        raise ValueError(f"conv2d: stride must be at least 1, got {stride}")
    if xs[2] + 2 * padding < ws[2] or xs[3] + 2 * padding < ws[3]:
        raise ShapeError(
            f"conv2d: input of shape {xs} padded by {padding} is smaller than the kernel {ws[2:]}"
        )
    if bias is not None and _shape(bias) != (ws[0],):
        raise ShapeError(f"conv2d: bias has shape {_shape(bias)}, expected ({ws[0]},)")
    args = (x, weight) if bias is None else (x, weight, bias)
    return Conv2dFunction.apply(*args, stride=stride, padding=padding)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    """Transposed convolution (the adjoint of conv2d) of x (N, Cin, H, W) with
    weight (Cin, Cout, kh, kw), plus bias (Cout,). Output (N, Cout, OH, OW),
    OH = (H - 1) stride - 2 padding + kh + output_padding."""
    where = "conv_transpose2d"
    stride, padding = _int(stride, "stride", where), _int(padding, "padding", where)
    output_padding = _int(output_padding, "output_padding", where)
    xs, ws = _shape(x), _shape(weight)
    if len(xs) != 4 or len(ws) != 4 or xs[1] != ws[0]:
        raise ShapeError(
            f"{where}: input of shape {xs} does not fit weight of shape {ws}; "
            f"expected input (N, {ws[0] if len(ws) == 4 else 'C'}, H, W), got {xs}"
        )
    _check_output_padding(output_padding, stride, where)
    oh = conv_transpose_output_size(xs[2], ws[2], stride, padding, output_padding)
    ow = conv_transpose_output_size(xs[3], ws[3], stride, padding, output_padding)
    if oh < 1 or ow < 1:
        raise ShapeError(f"{where}: input of shape {xs} gives an empty output ({oh}, {ow})")
    if bias is not None and _shape(bias) != (ws[1],):
        raise ShapeError(f"{where}: bias has shape {_shape(bias)}, expected ({ws[1]},)")
    args = (x, weight) if bias is None else (x, weight, bias)
    return ConvTranspose2dFunction.apply(
        *args, stride=stride, padding=padding, output_padding=output_padding
    )


def _check_output_padding(output_padding, stride, where):
    if stride < 1 or output_padding >= stride:
        raise ValueError(
            f"{where}: need stride >= 1 and output_padding < stride, got stride={stride}, "
            f"output_padding={output_padding}"
        )


# ---------------------------------------------------------------------- layers


def _kernel(kernel_size):
    if isinstance(kernel_size, (tuple, list)):
        return int(kernel_size[0]), int(kernel_size[1])
    return int(kernel_size), int(kernel_size)


class Conv2d(Module):
    """2-D convolution layer; weight (out_channels, in_channels, kh, kw), bias (out_channels,).

    Initialised as PyTorch: uniform in +-1/sqrt(in_channels * kh * kw).
    ``ConvTranspose2d`` below shares this construction and overrides only
    what differs: its weight layout, one extra size, and the function it calls.
    The shapes are checked once, by the functional form; a layer adds its own
    description to the message.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        check_sizes(
            type(self).__name__,
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
        )
        kh, kw = _kernel(kernel_size)
        name = type(self).__name__
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kh, kw)
        self.stride = _int(stride, "stride", name)
        self.padding = _int(padding, "padding", name)
        self.weight = Parameter(backend.zeros(self.weight_shape()))
        self.bias = Parameter(backend.zeros((out_channels,))) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def weight_shape(self):
        return (self.out_channels, self.in_channels) + self.kernel_size

    def function(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def forward(self, x):
        try:
            return self.function(x)
        except ShapeError as e:
            raise ShapeError(
                f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), "
                f"got {tuple(x.shape)} ({e})"
            ) from e

    def extra_repr(self):
        k = self.kernel_size[0] if self.kernel_size[0] == self.kernel_size[1] else self.kernel_size
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={k}, stride={self.stride}, "
            f"padding={self.padding}{self.extra_sizes()}, bias={self.bias is not None}"
        )

    def extra_sizes(self):
        return ""


class ConvTranspose2d(Conv2d):
    """Transposed 2-D convolution; weight (in_channels, out_channels, kh, kw) as PyTorch.

    Initialised as PyTorch: uniform in +-1/sqrt(out_channels * kh * kw)
    (PyTorch computes fan-in from the weight's second axis).
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        bias=True,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias)
        check_sizes("ConvTranspose2d", output_padding=output_padding)
        self.output_padding = _int(output_padding, "output_padding", "ConvTranspose2d")
        _check_output_padding(self.output_padding, self.stride, "ConvTranspose2d")

    def weight_shape(self):
        return (self.in_channels, self.out_channels) + self.kernel_size

    def function(self, x):
        return conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, self.output_padding
        )

    def extra_sizes(self):
        return f", output_padding={self.output_padding}"
