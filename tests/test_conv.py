"""conv2d and conv_transpose2d: values against a direct loop, gradients against
finite differences, output-shape formulas, the adjoint identity, errors."""

import numpy as np
import pytest
from helpers import arrays, host, t
from hypothesis import given, settings
from hypothesis import strategies as st

import minigen
from minigen import ShapeError, backend, nn
from minigen.nn import functional as F  # noqa: N812 - the PyTorch idiom
from minigen.nn.conv import col2im, im2col


def direct_conv2d(x, w, b, stride, padding):
    """The definition, one output pixel at a time (NumPy, float64)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            y[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w)
    return y + (0 if b is None else b.reshape(1, -1, 1, 1))


def direct_conv_transpose2d(x, w, b, stride, padding, output_padding):
    """Each input pixel scatters its kernel-weighted copy into the output."""
    n, cin, h, wd = x.shape
    _, cout, kh, kw = w.shape
    oh = (h - 1) * stride - 2 * padding + kh + output_padding
    ow = (wd - 1) * stride - 2 * padding + kw + output_padding
    full = np.zeros((n, cout, oh + 2 * padding, ow + 2 * padding))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw] += np.einsum(
                "nc,cokl->nokl", x[:, :, i, j], w
            )
    y = full[:, :, padding : padding + oh, padding : padding + ow]
    return y + (0 if b is None else b.reshape(1, -1, 1, 1))


@st.composite
def conv_setups(draw, transpose=False, max_side=5):
    """(N, Cin, Cout, H, W, k, stride, padding, output_padding) that give a non-empty output."""
    n, cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k, stride = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    padding = draw(st.integers(0, k - 1))
    out_pad = draw(st.integers(0, stride - 1)) if transpose else 0
    lo = 1 if transpose else max(1, k - 2 * padding)
    h = draw(st.integers(lo, max(lo, max_side)))
    w = draw(st.integers(lo, max(lo, max_side)))
    if transpose and ((min(h, w) - 1) * stride - 2 * padding + k + out_pad < 1):
        padding = 0
    return n, cin, cout, h, w, k, stride, padding, out_pad


@settings(max_examples=20, deadline=None)
@given(data=st.data(), setup=conv_setups(), bias=st.booleans())
def test_conv2d_values_and_gradients(data, setup, bias):
    n, cin, cout, h, w, k, s, p, _ = setup
    x = t(data.draw(arrays((n, cin, h, w)), label="x"))
    weight = t(data.draw(arrays((cout, cin, k, k)), label="weight"))
    b = t(data.draw(arrays((cout,)), label="bias")) if bias else None
    y = F.conv2d(x, weight, b, s, p)
    expected = direct_conv2d(host(x), host(weight), None if b is None else host(b), s, p)
    np.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-10)
    inputs = (x, weight) + ((b,) if bias else ())
    minigen.gradcheck(lambda *a: F.conv2d(*a, stride=s, padding=p), *inputs)


@settings(max_examples=20, deadline=None)
@given(data=st.data(), setup=conv_setups(transpose=True, max_side=4), bias=st.booleans())
def test_conv_transpose2d_values_and_gradients(data, setup, bias):
    n, cin, cout, h, w, k, s, p, op = setup
    x = t(data.draw(arrays((n, cin, h, w)), label="x"))
    weight = t(data.draw(arrays((cin, cout, k, k)), label="weight"))
    b = t(data.draw(arrays((cout,)), label="bias")) if bias else None
    y = F.conv_transpose2d(x, weight, b, s, p, op)
    expected = direct_conv_transpose2d(
        host(x), host(weight), None if b is None else host(b), s, p, op
    )
    np.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-10)
    inputs = (x, weight) + ((b,) if bias else ())
    minigen.gradcheck(
        lambda *a: F.conv_transpose2d(*a, stride=s, padding=p, output_padding=op), *inputs
    )


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    p=st.integers(0, 3),
    op=st.integers(0, 3),
)
def test_output_shape_formulas(h, w, k, s, p, op):
    x = t(np.zeros((2, 3, h, w), np.float32), False)
    if h + 2 * p >= k and w + 2 * p >= k:
        y = F.conv2d(x, t(np.zeros((4, 3, k, k), np.float32)), stride=s, padding=p)
        assert y.shape == (2, 4, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
    op = op % s
    oh, ow = (h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op
    if oh >= 1 and ow >= 1:
        y = F.conv_transpose2d(
            x, t(np.zeros((3, 5, k, k), np.float32)), stride=s, padding=p, output_padding=op
        )
        assert y.shape == (2, 5, oh, ow)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), setup=conv_setups(max_side=7))
def test_conv_transpose2d_is_the_adjoint_of_conv2d(data, setup):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for the same weight."""
    n, cin, cout, h, _, k, s, p, _ = setup
    x = data.draw(arrays((n, cin, h, h)), label="x")
    weight = data.draw(arrays((cout, cin, k, k)), label="weight")
    oh = (h + 2 * p - k) // s + 1
    y = data.draw(arrays((n, cout, oh, oh)), label="y")
    # conv2d skips the last (h + 2p - k) % s rows; output_padding gives them back.
    op = (h + 2 * p - k) % s
    lhs = float((host(F.conv2d(t(x), t(weight), stride=s, padding=p)) * y).sum())
    back = host(F.conv_transpose2d(t(y), t(weight), stride=s, padding=p, output_padding=op))
    assert back.shape == x.shape
    rhs = float((x * back).sum())
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(data=st.data(), setup=conv_setups(max_side=6))
def test_col2im_is_the_adjoint_of_im2col(data, setup):
    n, c, _, h, w, k, s, p, _ = setup
    x = data.draw(arrays((n, c, h, w)), label="x")
    cols = im2col(backend.from_numpy(x), k, k, s, p)
    r = data.draw(arrays(cols.shape), label="r")
    back = col2im(backend.from_numpy(r), h, w, s, p)
    lhs = float((host(cols) * r).sum())
    rhs = float((x * host(back)).sum())
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("layer_cls", [nn.Conv2d, nn.ConvTranspose2d])
def test_conv_layers_stay_float32(layer_cls):
    layer = layer_cls(3, 4, 4, stride=2, padding=1)
    x = t(np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32))
    y = layer(x)
    assert y.dtype == np.float32
    (y * y).sum().backward()
    for g in (x.grad, layer.weight.grad, layer.bias.grad):
        assert g.dtype == np.float32


def test_conv_layer_weight_shapes_as_pytorch():
    assert nn.Conv2d(3, 8, 4).weight.shape == (8, 3, 4, 4)
    assert nn.ConvTranspose2d(3, 8, 4).weight.shape == (3, 8, 4, 4)
    assert nn.Conv2d(3, 8, 4, bias=False).bias is None
    assert nn.Conv2d(1, 64, 4, 2, 1)(t(np.zeros((1, 1, 28, 28), np.float32))).shape == (
        1,
        64,
        14,
        14,
    )
    assert nn.ConvTranspose2d(64, 1, 4, 2, 1)(t(np.zeros((1, 64, 14, 14), np.float32))).shape == (
        1,
        1,
        28,
        28,
    )


def test_conv_bad_shapes_name_layer_and_shapes():
    conv = nn.Conv2d(1, 16, 4, stride=2, padding=1)
    with pytest.raises(ShapeError, match=r"Conv2d\(1, 16.*\(N, 1, H, W\), got \(1, 28, 28\)"):
        conv(t(np.zeros((1, 28, 28), np.float32)))
    with pytest.raises(ShapeError, match=r"Conv2d\(1, 16.*\(N, 1, H, W\), got \(2, 3, 28, 28\)"):
        conv(t(np.zeros((2, 3, 28, 28), np.float32)))
    deconv = nn.ConvTranspose2d(64, 1, 4, 2, 1)
    with pytest.raises(ShapeError, match=r"ConvTranspose2d\(64, 1.*got \(2, 32, 7, 7\)"):
        deconv(t(np.zeros((2, 32, 7, 7), np.float32)))
    with pytest.raises(ShapeError, match=r"conv2d: input of shape \(2, 3, 5, 5\).*\(4, 2, 3, 3\)"):
        F.conv2d(t(np.zeros((2, 3, 5, 5))), t(np.zeros((4, 2, 3, 3))))
    with pytest.raises(ShapeError, match="smaller than the kernel"):
        F.conv2d(t(np.zeros((2, 3, 2, 2))), t(np.zeros((4, 3, 3, 3))))
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(1, 1, 4, stride=2, output_padding=2)


def test_conv_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 9, 8))
    w, b = rng.standard_normal((5, 4, 4, 4)), rng.standard_normal(5)
    ours = F.conv2d(t(x), t(w), t(b), 2, 1)
    theirs = torch.nn.functional.conv2d(*(torch.tensor(a) for a in (x, w, b)), stride=2, padding=1)
    np.testing.assert_allclose(host(ours), theirs.numpy(), rtol=1e-10, atol=1e-10)
    wt = rng.standard_normal((4, 5, 4, 4))
    ours = F.conv_transpose2d(t(x), t(wt), t(b), 2, 1, 1)
    theirs = torch.nn.functional.conv_transpose2d(
        *(torch.tensor(a) for a in (x, wt, b)), stride=2, padding=1, output_padding=1
    )
    np.testing.assert_allclose(host(ours), theirs.numpy(), rtol=1e-10, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(data=st.data(), setup=conv_setups(max_side=6))
def test_col2im_matmul_is_col2im_of_the_product(data, setup):
    """The per-offset form gives what the column matrix gives: col2im(W2^T @ g2)."""
    n, c, o, h, w, k, s, p, _ = setup
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    weight = backend.from_numpy(data.draw(arrays((o, c, k, k)), label="weight"))
    g2 = backend.from_numpy(data.draw(arrays((o, oh * ow * n)), label="g2"))
    shape = (c, k, k, oh, ow, n)
    expected = col2im((weight.reshape(o, -1).T @ g2).reshape(shape), h, w, s, p)
    got = F.col2im_matmul(weight, g2, shape, h, w, s, p)
    np.testing.assert_allclose(host(got), host(expected), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_im2col_and_col2im_agree_for_any_number_of_copy_threads(threads, monkeypatch):
    """Split by channels (C >= threads) or by batch (one channel), the copies give
    the same columns and images as a single thread does."""
    from minigen.nn import conv

    rng = np.random.default_rng(0)
    for shape in [(4, 3, 7, 6), (5, 1, 6, 6)]:
        x = backend.from_numpy(rng.standard_normal(shape))
        monkeypatch.setattr(conv, "COPY_THREADS", 1)
        cols1 = host(im2col(x, 3, 3, 2, 1))
        back1 = host(col2im(backend.from_numpy(cols1), shape[2], shape[3], 2, 1))
        monkeypatch.setattr(conv, "COPY_THREADS", threads)
        cols = host(im2col(x, 3, 3, 2, 1))
        np.testing.assert_array_equal(cols, cols1)
        back = host(col2im(backend.from_numpy(cols1), shape[2], shape[3], 2, 1))
        np.testing.assert_allclose(back, back1, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("depth", [1, 5, 12])
def test_conv_by_blocks_of_kernel_rows_gives_the_same_values_and_gradients(depth, monkeypatch):
    """With BLOCK_DEPTH small the columns come in several blocks of kernel rows
    (as for 64 channels); values and gradients stay those of the definition.
    Depth 12 makes blocks of 2 kernel rows out of 3, so the last block is smaller than
    the first (as for 32 channels and 3x3 kernels)."""
    from minigen.nn import conv

    monkeypatch.setattr(conv, "BLOCK_DEPTH", depth)
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((3, 2, 3, 3)), rng.random(3)
    y = F.conv2d(t(x), t(w), t(b), 2, 1)
    np.testing.assert_allclose(host(y), direct_conv2d(x, w, b, 2, 1), rtol=1e-10, atol=1e-10)
    minigen.gradcheck(lambda *a: F.conv2d(*a, stride=2, padding=1), t(x), t(w), t(b))
    wt = rng.standard_normal((2, 3, 3, 3))
    y = F.conv_transpose2d(t(x), t(wt), t(b), 2, 1, 1)
    expected = direct_conv_transpose2d(x, wt, b, 2, 1, 1)
    np.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-10)
    minigen.gradcheck(
        lambda *a: F.conv_transpose2d(*a, stride=2, padding=1, output_padding=1), t(x), t(wt), t(b)
    )


# ------------------------------------------------------------------ sub-pixel

# (N, Cin, Cout, H, W, kh, kw, stride, padding, output_padding): kernels that split
# evenly (4 by 2) and not (3 by 2, 5 by 3, 4 by 3), a kernel smaller than the stride
# (phases no tap reaches), non-square kernels and inputs, odd sizes, output_padding.
SUBPIXEL_CASES = [
    (2, 3, 2, 5, 5, 4, 4, 2, 1, 0),
    (1, 2, 3, 4, 7, 4, 4, 2, 1, 1),
    (2, 2, 2, 5, 3, 3, 3, 2, 1, 1),
    (1, 3, 2, 4, 5, 5, 5, 3, 2, 2),
    (2, 1, 2, 3, 4, 4, 4, 3, 0, 1),
    (1, 2, 1, 4, 3, 3, 2, 2, 0, 0),
    (1, 2, 2, 3, 5, 2, 4, 2, 1, 1),
    (2, 2, 3, 3, 3, 1, 1, 2, 0, 1),
    (1, 1, 1, 2, 2, 2, 2, 3, 1, 2),
    (1, 2, 2, 3, 4, 6, 6, 2, 2, 0),
]


@pytest.mark.parametrize("case", SUBPIXEL_CASES)
@pytest.mark.parametrize("chunk", [1, 100])
def test_subpixel_matmul_is_the_transposed_convolution(case, chunk, monkeypatch):
    """s^2 stride-1 phase convolutions (one chunk of phase rows or several) give the
    definition's transposed convolution."""
    from minigen.nn import conv

    n, cin, cout, h, w, kh, kw, s, p, op = case
    monkeypatch.setattr(conv, "SUBPIXEL_CHUNK", chunk)
    rng = np.random.default_rng(2)
    x, weight = rng.standard_normal((n, cin, h, w)), rng.standard_normal((cin, cout, kh, kw))
    oh, ow = (h - 1) * s - 2 * p + kh + op, (w - 1) * s - 2 * p + kw + op
    got = conv.subpixel_matmul(backend.from_numpy(weight), backend.from_numpy(x), oh, ow, s, p)
    expected = direct_conv_transpose2d(x, weight, None, s, p, op)
    np.testing.assert_allclose(host(got), expected, rtol=1e-10, atol=1e-10)


def no_col2im(*args, **kwargs):
    raise AssertionError("col2im_matmul ran where the sub-pixel form was expected")


@pytest.mark.parametrize("case", [SUBPIXEL_CASES[i] for i in (0, 2, 3, 6)])
def test_strided_convolutions_by_sub_pixel_are_gradchecked_twice(case, monkeypatch):
    """With the sub-pixel form taken for every stride > 1 (and col2im refused), conv2d
    and conv_transpose2d match the definition and pass gradcheck and gradgradcheck."""
    from minigen.nn import conv

    n, cin, cout, h, w, kh, kw, s, p, op = case
    monkeypatch.setattr(conv, "SUBPIXEL_RATIO", 10**6)
    monkeypatch.setattr(conv, "col2im_matmul", no_col2im)
    rng = np.random.default_rng(3)
    x = t(rng.standard_normal((n, cin, h, w)))
    wt, b = t(rng.standard_normal((cin, cout, kh, kw))), t(rng.standard_normal(cout))
    y = F.conv_transpose2d(x, wt, b, s, p, op)
    expected = direct_conv_transpose2d(host(x), host(wt), host(b), s, p, op)
    np.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-10)
    transpose = lambda *a: F.conv_transpose2d(*a, stride=s, padding=p, output_padding=op)  # noqa: E731
    minigen.gradcheck(transpose, x, wt, b)
    minigen.gradgradcheck(transpose, x, wt, b)
    # conv2d of an input its output maps back onto: dx is a sub-pixel transposed conv
    xc = t(rng.standard_normal((n, cout, host(y).shape[2], host(y).shape[3])))
    wc = t(rng.standard_normal((cin, cout, kh, kw)))
    forward = lambda *a: F.conv2d(*a, stride=s, padding=p)  # noqa: E731
    np.testing.assert_allclose(
        host(forward(xc, wc)), direct_conv2d(host(xc), host(wc), None, s, p), rtol=1e-10, atol=1e-10
    )
    minigen.gradcheck(forward, xc, wc)
    minigen.gradgradcheck(forward, xc, wc)


def test_the_reference_layers_choose_sub_pixel_or_col2im_by_channels(monkeypatch):
    """A 4x4, stride-2 transposed conv runs as four phase convolutions when Cin <= 2 Cout
    (128 -> 64, no col2im) and by col2im to a single channel (64 -> 1)."""
    from minigen.nn import conv

    rng = np.random.default_rng(4)
    x = t(rng.standard_normal((2, 8, 3, 3)))
    monkeypatch.setattr(conv, "col2im_matmul", no_col2im)
    F.conv_transpose2d(x, t(rng.standard_normal((8, 4, 4, 4))), None, 2, 1)
    with pytest.raises(AssertionError, match="col2im_matmul ran"):
        F.conv_transpose2d(x, t(rng.standard_normal((8, 1, 4, 4))), None, 2, 1)
