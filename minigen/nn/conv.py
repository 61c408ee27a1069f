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
unchanged on NumPy and CuPy. ``col2im`` is its adjoint: it adds each offset's
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
gives dx. A transposed convolution is exactly the adjoint of conv2d (its
forward is conv2d's dx, its backward is conv2d's forward), so it reuses
the same two helpers with the roles swapped.

Sizes, as PyTorch: conv2d OH = (H + 2p - kh) // s + 1;
conv_transpose2d OH = (H - 1) s - 2p + kh + output_padding.
"""

from minigen import backend
from minigen.autograd import Function, ShapeError, Tensor
from minigen.nn import init
from minigen.nn.module import Module, Parameter


def _xp():
    return backend.xp()


def conv_output_size(size, kernel, stride=1, padding=0):
    """Output length of a convolution along one axis: (size + 2p - k) // s + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(size, kernel, stride=1, padding=0, output_padding=0):
    """Output length of a transposed convolution: (size - 1) s - 2p + k + output_padding."""
    return (size - 1) * stride - 2 * padding + kernel + output_padding


# --------------------------------------------------------------- im2col, col2im


def im2col(x, kh, kw, stride=1, padding=0):
    """Patches of x (N, C, H, W) as a (C, kh, kw, OH, OW, N) array.

    cols[c, i, j, oh, ow, n] = x_pad[n, c, oh*s + i, ow*s + j]. Reshape to
    (C*kh*kw, OH*OW*N) for the GEMM. One strided-slice copy per kernel offset.
    """
    n, c, h, w = x.shape
    s, p = stride, padding
    oh, ow = conv_output_size(h, kh, s, p), conv_output_size(w, kw, s, p)
    # Pad once, in the (C, H, W, N) order of the columns, so that each slice
    # below is read in the order it is written.
    xpad = _xp().zeros((c, h + 2 * p, w + 2 * p, n), dtype=x.dtype)
    xpad[:, p : p + h, p : p + w] = x.transpose(1, 2, 3, 0)
    cols = _xp().empty((c, kh, kw, oh, ow, n), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xpad[:, i : i + s * oh : s, j : j + s * ow : s]
    return cols


def col2im(cols, h, w, stride=1, padding=0):
    """The adjoint of im2col: add patches (C, kh, kw, OH, OW, N) back into an
    image (N, C, h, w). Where patches overlap their values add up."""
    c, kh, kw, oh, ow, n = cols.shape
    s, p = stride, padding
    xpad = _xp().zeros((c, h + 2 * p, w + 2 * p, n), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xpad[:, i : i + s * oh : s, j : j + s * ow : s] += cols[:, i, j]
    return xpad[:, p : p + h, p : p + w].transpose(3, 0, 1, 2)


def _channels_first(a):
    """(N, C, H, W) -> (C, H*W*N), the GEMM operand layout (copies if needed)."""
    return a.transpose(1, 2, 3, 0).reshape(a.shape[1], -1)


# ------------------------------------------------------------------- Functions


class Conv2dFunction(Function):
    """y = conv2d(x, W) + b: x (N, C, H, W), W (O, C, kh, kw), b (O,).

    forward:  cols = im2col(x);  y = W2 @ cols           (W2 = W as (O, C*kh*kw))
    backward: dW = g2 @ cols^T;  dx = col2im(W2^T @ g2);  db = sum of g
    with g2 = dL/dy as (O, OH*OW*N).
    """

    def forward(self, x, weight, bias=None, stride=1, padding=0):
        n, _, h, w = x.shape
        o, c, kh, kw = weight.shape
        cols = im2col(x, kh, kw, stride, padding)
        _, _, _, oh, ow, _ = cols.shape
        y = weight.reshape(o, -1) @ cols.reshape(c * kh * kw, -1)
        if bias is not None:
            y += bias.reshape(o, 1)
        self.cols, self.weight, self.hw = cols, weight, (h, w)
        self.stride, self.padding, self.has_bias = stride, padding, bias is not None
        return y.reshape(o, oh, ow, n).transpose(3, 0, 1, 2)

    def backward(self, grad):
        o, c, kh, kw = self.weight.shape
        g2 = _channels_first(grad)  # (O, OH*OW*N)
        cols2 = self.cols.reshape(c * kh * kw, -1)
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gcols = (self.weight.reshape(o, -1).T @ g2).reshape(self.cols.shape)
            gx = col2im(gcols, *self.hw, self.stride, self.padding)
        if self.needs_input_grad[1]:
            gw = (g2 @ cols2.T).reshape(self.weight.shape)
        if self.has_bias and self.needs_input_grad[2]:
            gb = g2.sum(axis=1)
        return gx, gw, gb


class ConvTranspose2dFunction(Function):
    """y = conv_transpose2d(x, W) + b: x (N, Cin, H, W), W (Cin, Cout, kh, kw), b (Cout,).

    The adjoint of conv2d with the same W (as PyTorch's weight layout says):
    forward:  y = col2im(W2^T @ x2)     (W2 = W as (Cin, Cout*kh*kw), x2 = x as (Cin, H*W*N))
    backward: cols = im2col(g);  dx = W2 @ cols;  dW = x2 @ cols^T;  db = sum of g
    """

    def forward(self, x, weight, bias=None, stride=1, padding=0, output_padding=0):
        n, cin, h, w = x.shape
        _, cout, kh, kw = weight.shape
        oh = conv_transpose_output_size(h, kh, stride, padding, output_padding)
        ow = conv_transpose_output_size(w, kw, stride, padding, output_padding)
        x2 = _channels_first(x)
        cols = (weight.reshape(cin, -1).T @ x2).reshape(cout, kh, kw, h, w, n)
        y = col2im(cols, oh, ow, stride, padding)
        if bias is not None:
            y += bias.reshape(1, cout, 1, 1)
        self.x2, self.weight, self.x_shape = x2, weight, x.shape
        self.stride, self.padding, self.has_bias = stride, padding, bias is not None
        return y

    def backward(self, grad):
        cin, cout, kh, kw = self.weight.shape
        n, _, h, w = self.x_shape
        cols = im2col(grad, kh, kw, self.stride, self.padding)
        cols2 = cols.reshape(cout * kh * kw, -1)  # (Cout*kh*kw, H*W*N)
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx2 = self.weight.reshape(cin, -1) @ cols2
            gx = gx2.reshape(cin, h, w, n).transpose(3, 0, 1, 2)
        if self.needs_input_grad[1]:
            gw = (self.x2 @ cols2.T).reshape(self.weight.shape)
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
            f"expected input (N, {ws[1] if len(ws) == 4 else 'C'}, H, W)"
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
            f"expected input (N, {ws[0] if len(ws) == 4 else 'C'}, H, W)"
        )
    if stride < 1 or output_padding >= stride:
        raise ValueError(
            f"{where}: need stride >= 1 and output_padding < stride, got stride={stride}, "
            f"output_padding={output_padding}"
        )
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


# ---------------------------------------------------------------------- layers


def _kernel(kernel_size):
    if isinstance(kernel_size, (tuple, list)):
        return int(kernel_size[0]), int(kernel_size[1])
    return int(kernel_size), int(kernel_size)


class Conv2d(Module):
    """2-D convolution layer; weight (out_channels, in_channels, kh, kw), bias (out_channels,).

    Initialised as PyTorch: uniform in +-1/sqrt(in_channels * kh * kw).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        init.check_sizes(
            "Conv2d",
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
        )
        kh, kw = _kernel(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kh, kw)
        self.stride = _int(stride, "stride", "Conv2d")
        self.padding = _int(padding, "padding", "Conv2d")
        self.weight = Parameter(backend.zeros((out_channels, in_channels, kh, kw)))
        self.bias = Parameter(backend.zeros((out_channels,))) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(
                f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self):
        k = self.kernel_size[0] if self.kernel_size[0] == self.kernel_size[1] else self.kernel_size
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={k}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )


class ConvTranspose2d(Module):
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
        super().__init__()
        init.check_sizes(
            "ConvTranspose2d",
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
        )
        kh, kw = _kernel(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kh, kw)
        self.stride = _int(stride, "stride", "ConvTranspose2d")
        self.padding = _int(padding, "padding", "ConvTranspose2d")
        self.output_padding = _int(output_padding, "output_padding", "ConvTranspose2d")
        if self.output_padding >= self.stride:
            raise ValueError(
                f"ConvTranspose2d: output_padding ({self.output_padding}) must be smaller "
                f"than stride ({self.stride})"
            )
        self.weight = Parameter(backend.zeros((in_channels, out_channels, kh, kw)))
        self.bias = Parameter(backend.zeros((out_channels,))) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(
                f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        return conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, self.output_padding
        )

    def extra_repr(self):
        k = self.kernel_size[0] if self.kernel_size[0] == self.kernel_size[1] else self.kernel_size
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={k}, stride={self.stride}, "
            f"padding={self.padding}, output_padding={self.output_padding}, "
            f"bias={self.bias is not None}"
        )
