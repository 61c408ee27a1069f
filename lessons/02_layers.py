"""Lesson 02: the layers every generative model in minigen is built from.

One layer at a time, each written out, compared with minigen's version and
its gradient checked by finite differences:

1. Linear: y = x W^T + b, and its three-GEMM backward;
2. Conv2d as im2col + one matrix product (im2col by kernel offsets);
3. ConvTranspose2d as the adjoint of conv2d: <conv2d(x), y> = <x, conv_transpose2d(y)>,
   and as four stride-1 convolutions, one per output phase (sub-pixel);
4. BatchNorm: batch statistics in training, running statistics in eval;
5. a small convolutional classifier trained on real Fashion-MNIST images.

Run: ``python lessons/02_layers.py`` (15 seconds on a 2-core Intel Xeon, AVX-512, with one BLAS
thread, another lesson beside it: two epochs over 60,000 images, test accuracy 0.870; an earlier
machine printed 0.871, since another CPU sums the floats in another order); ``--quick`` is a smoke
run on 1,000 images (under 30 s). Figures go to ``figures/02_layers/`` (or ``--out DIR``).
"""

# %%
import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402  (host data for the lesson's own checks and plots)
from _setup import parse_options, positive_int, start_lesson  # noqa: E402

import minigen as mg  # noqa: E402
from minigen import backend, data, nn, optim, plots  # noqa: E402
from minigen.nn import functional as F  # noqa: E402, N812 - the PyTorch idiom

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--out", default="figures/02_layers", help="folder for figures")
parser.add_argument(
    "--backend", choices=mg.backend.NAMES, default=None, help="numpy (default), cupy or strict"
)
parser.add_argument("--quick", action="store_true", help="smoke run on tiny data (< 30 s)")
parser.add_argument("--epochs", type=positive_int, default=2, help="classifier epochs")
args = parse_options(parser)  # a Jupyter kernel's own arguments pass
# the backend and the figure folder, or one line saying what failed
out = start_lesson("02_layers", args)
mg.manual_seed(0)
rng = np.random.default_rng(0)


def f64(*shape, requires_grad=True):
    """A float64 tensor of standard normal values: gradient checks need float64."""
    return mg.tensor(rng.standard_normal(shape), requires_grad=requires_grad)


# %% [markdown]
# ## 1. Linear
#
# A fully connected layer maps x (N, in) to y = x W^T + b with W (out, in),
# PyTorch's layout. For a loss L with upstream gradient g = dL/dy (N, out):
#
#     dL/dx = g W        (N, out) @ (out, in)
#     dL/dW = g^T x      (out, N) @ (N, in)
#     dL/db = sum of g over the batch
#
# minigen does this as one autograd Function (three GEMMs in backward) rather
# than a graph of matmul, transpose and add. `gradcheck` compares the result
# with central finite differences.

# %%
x, W, b = f64(4, 3), f64(5, 3), f64(5)
y = F.linear(x, W, b)
by_hand = x.numpy() @ W.numpy().T + b.numpy()
print("linear matches x W^T + b:", np.allclose(y.numpy(), by_hand))
print("linear gradcheck, worst error:", mg.gradcheck(F.linear, x, W, b))

layer = nn.Linear(784, 10)
print(layer, "weight", layer.weight.shape, "bias", layer.bias.shape)

# %% [markdown]
# ## 2. Conv2d as im2col + one matrix product
#
# A convolution slides a (C, kh, kw) kernel over the image. Every output pixel
# is a dot product of one patch with the kernel. Copy each patch into a column
# of a matrix ("im2col") and all those dot products become one matrix product:
#
#     cols (C*kh*kw, pixels),  W (O, C*kh*kw),  y = W @ cols  (O, pixels)
#
# Copying patch by patch would loop over every output pixel. Instead loop
# over the kh*kw kernel *offsets*: the inputs that meet kernel entry (i, j)
# are one strided slice of the padded image, x_pad[..., i::s, j::s] (cut to
# the output size). That is 16 slice copies for a 4x4 kernel, whatever the
# image size. Here it is written out; minigen's `im2col` is the same idea
# with a layout tuned for speed.

# %%
xp = backend.xp()


def my_conv2d(x, w, stride, padding):
    """conv2d by im2col + GEMM, on arrays: x (N, C, H, W), w (O, C, kh, kw)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (wd + 2 * padding - kw) // stride + 1
    xpad = xp.zeros((n, c, h + 2 * padding, wd + 2 * padding), dtype=x.dtype)
    xpad[:, :, padding : padding + h, padding : padding + wd] = x
    cols = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):  # one strided slice per kernel offset
        for j in range(kw):
            cols[:, i, j] = xpad[
                :, :, i : i + stride * oh : stride, j : j + stride * ow : stride
            ].transpose(1, 0, 2, 3)
    y = w.reshape(o, -1) @ cols.reshape(c * kh * kw, -1)  # the one GEMM
    return y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3)


def direct_conv2d(x, w, stride, padding):
    """The definition, one output pixel at a time (slow, for checking only)."""
    x, w = mg.to_numpy(x), mg.to_numpy(w)
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = w.shape[2:]
    oh = (x.shape[2] + 2 * padding - kh) // stride + 1
    ow = (x.shape[3] + 2 * padding - kw) // stride + 1
    y = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for r in range(oh):
        for c in range(ow):
            patch = xpad[:, :, r * stride : r * stride + kh, c * stride : c * stride + kw]
            y[:, :, r, c] = np.einsum("nckl,ockl->no", patch, w)
    return y


x, w = f64(2, 3, 9, 9), f64(4, 3, 4, 4)
ours = my_conv2d(x.data, w.data, stride=2, padding=1)
print("output shape", ours.shape, "= (N, O, (9 + 2 - 4) // 2 + 1, ...)")
print(
    "im2col + GEMM matches the definition:",
    np.allclose(mg.to_numpy(ours), direct_conv2d(x, w, 2, 1)),
)
print(
    "... and minigen's conv2d:",
    np.allclose(mg.to_numpy(ours), F.conv2d(x, w, stride=2, padding=1).numpy()),
)

# %% [markdown]
# Backward is two more GEMMs and the adjoint of im2col: dW = g @ cols^T, and
# dcols = W^T @ g, whose columns are added back into the image where they came
# from ("col2im", again one strided slice per kernel offset; overlapping
# patches add up). Check it, bias included:

# %%
x, w, bias = f64(2, 2, 6, 6), f64(3, 2, 4, 4), f64(3)
err = mg.gradcheck(lambda a, b, c: F.conv2d(a, b, c, stride=2, padding=1), x, w, bias)
print("conv2d gradcheck, worst error:", err)


# %% [markdown]
# ## 3. ConvTranspose2d, the adjoint of conv2d
#
# A decoder has to go the other way, 7x7 -> 14x14 -> 28x28. The transposed
# convolution is the linear map whose matrix is the transpose of conv2d's
# (same weight): for all x and y,
#
#     <conv2d(x, W), y> = <x, conv_transpose2d(y, W)>.
#
# So its forward pass is exactly conv2d's input gradient (GEMM, then col2im)
# and its backward pass is conv2d's forward (im2col, then GEMM). PyTorch
# therefore stores its weight as (in, out, kh, kw): the in-channels of the
# transposed convolution are the out-channels of the conv2d it transposes.
# Output size: (H - 1) s - 2p + k + output_padding, so kernel 4, stride 2,
# padding 1 doubles the size exactly.

# %%
x, w = f64(2, 3, 14, 14, requires_grad=False), f64(5, 3, 4, 4, requires_grad=False)
y = f64(2, 5, 7, 7, requires_grad=False)
lhs = float((F.conv2d(x, w, stride=2, padding=1).numpy() * y.numpy()).sum())
rhs = float((x.numpy() * F.conv_transpose2d(y, w, stride=2, padding=1).numpy()).sum())
print(f"<conv2d(x, W), y> = {lhs:.10f}")
print(f"<x, conv_transpose2d(y, W)> = {rhs:.10f}")
h7 = mg.tensor(np.zeros((1, 8, 7, 7), np.float32))
h14 = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)(h7)
h28 = nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1)(h14)
print("sizes through two transposed convolutions:", h7.shape, "->", h14.shape, "->", h28.shape)
x, w, bias = f64(2, 3, 3, 3), f64(3, 2, 4, 4), f64(2)
err = mg.gradcheck(lambda a, b, c: F.conv_transpose2d(a, b, c, stride=2, padding=1), x, w, bias)
print("conv_transpose2d gradcheck, worst error:", err)

# %% [markdown]
# ### Four phases: the transposed convolution with no adds
#
# Which weights reach one output pixel? With kernel 4, stride 2, padding 1,
# an even output row 2m meets kernel rows 1 and 3 only (input rows m and
# m - 1), an odd row 2m + 1 kernel rows 0 and 2 (input rows m + 1 and m);
# columns alike. So each of the four output phases (row parity, column
# parity) is an ordinary stride-1 conv2d of the input with a 2x2 sub-kernel,
# W[:, :, a::2, b::2] flipped and transposed to (out, in, 2, 2): the sub-pixel
# form (Shi et al. 2016; Odena et al. 2016 trace checkerboard artifacts to
# these phases). Four small convolutions and four interleaving copies
# replace col2im's sixteen overlapping adds; minigen's transposed
# convolution runs this way when the input has at most twice the output's
# channels (nn/conv.py). Check it on all four phases:

# %%
x, w = f64(2, 3, 5, 5, requires_grad=False), f64(3, 2, 4, 4, requires_grad=False)
full = F.conv_transpose2d(x, w, stride=2, padding=1).numpy()  # (2, 2, 10, 10)
for r in (0, 1):
    for c in (0, 1):
        a, b = 1 - r, 1 - c  # the kernel rows and columns this phase meets: a, a + 2
        sub = w.numpy()[:, :, a::2, b::2][:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        grid = F.conv2d(x, mg.tensor(sub.copy()), stride=1, padding=1).numpy()  # 6 x 6 windows
        phase = grid[:, :, r : r + 5, c : c + 5]  # rows m - 1, m (even) or m, m + 1 (odd)
        print(f"phase (row {r}, column {c}) = conv2d with a 2x2 sub-kernel:", end=" ")
        print(np.allclose(full[:, :, r::2, c::2], phase))

# %% [markdown]
# ## 4. BatchNorm
#
# Batch normalisation rescales each channel to mean 0 and variance 1 over the
# batch (and pixels), then applies a learned scale gamma and shift beta:
#
#     xhat = (x - mean) / sqrt(var + eps),   y = gamma * xhat + beta.
#
# In training it uses the batch's statistics, and its gradient flows through
# them too (a closed form: dx = gamma / sqrt(var + eps) * (g - mean(g) -
# xhat * mean(g * xhat))). It also keeps running averages,
# r <- (1 - momentum) r + momentum * batch value (the variance unbiased),
# which eval mode uses instead, so one image's output does not depend on the
# others in its batch.

# %%
bn = nn.BatchNorm2d(3)
batch = mg.tensor((rng.standard_normal((16, 3, 5, 5)) * 4 + 3).astype(np.float32))
out_train = bn(batch).numpy()
print("train mode: per-channel mean", out_train.mean(axis=(0, 2, 3)).round(4),
      "std", out_train.std(axis=(0, 2, 3)).round(3))  # fmt: skip
running_mean, running_var = mg.to_numpy(bn.running_mean), mg.to_numpy(bn.running_var)
print("after one batch (momentum 0.1): running mean", running_mean.round(3), "running var",
      running_var.round(3), "; the batch's mean", batch.numpy().mean(axis=(0, 2, 3)).round(3))  # fmt: skip
bn.eval()
out_eval = bn(batch).numpy()
print("eval mode uses running statistics: per-channel mean", out_eval.mean(axis=(0, 2, 3)).round(2))
expected = (batch.numpy().mean(axis=(0, 2, 3)) - running_mean) / np.sqrt(running_var + bn.eps)
print("  = (batch mean - running mean) / sqrt(running var + eps):", expected.round(2))
x, gamma, beta = f64(4, 3, 2, 2), f64(3), f64(3)
err = mg.gradcheck(lambda a, g, b: F.batch_norm(a, None, None, g, b, training=True), x, gamma, beta)
print("batch_norm (training mode) gradcheck, worst error:", err)

# %% [markdown]
# Why eval mode gives a mean near 2 (1.81, 1.92, 1.66) on the very batch that
# training mode maps to mean 0: the running statistics start at mean 0 and
# variance 1, and one batch moves them only a tenth of the way (momentum 0.1)
# towards the batch's mean (about 3; printed 2.9 to 3.3) and variance (about
# 16: the data were drawn with standard deviation 4): running mean about 0.3,
# running variance about 0.9 + 1.6 = 2.5 (printed 2.4 to 2.6). Eval mode
# normalises with those, so for the first channel the mean comes out at
# (3.27 - 0.33) / sqrt(2.64) = 1.81, as the last line computes channel by
# channel. After n batches from the same data the start
# keeps a weight 0.9^n (a third after 10, 0.5% after 50), and eval mode's
# output approaches training mode's; a network's running statistics are
# settled long before training ends.

# %% [markdown]
# ## 5. A small classifier on Fashion-MNIST
#
# Two stride-2 convolutions (28 -> 14 -> 7), a linear layer to 10 class
# scores, cross-entropy loss, Adam. Everything above in one network:
# minigen's parameter names and shapes are PyTorch's, so
# `model.state_dict()` would load into the same network written in PyTorch.

# %%
source = data.locate("fashion-mnist", split="train")
images, labels = data.read(source)
print(f"data: {len(images):,} {source.describe()}")
test_images, test_labels = data.load("fashion-mnist", split="test")
if args.quick:
    images, labels = images[:1000], labels[:1000]
    test_images, test_labels = test_images[:500], test_labels[:500]
epochs = 1 if args.quick else args.epochs
print(f"train {images.shape}, test {test_images.shape}, {epochs} epoch(s)")

model = nn.Sequential(
    nn.Conv2d(1, 16, 4, stride=2, padding=1),  # 28 -> 14
    nn.ReLU(),
    nn.Conv2d(16, 32, 4, stride=2, padding=1),  # 14 -> 7
    nn.ReLU(),
    nn.Flatten(),
    nn.Linear(32 * 7 * 7, 10),
)
print(model)
opt = optim.Adam(model.parameters(), lr=1e-3)
history = {"train loss": []}
start = time.perf_counter()
for epoch in range(epochs):
    model.train()
    batches = data.batches(
        images, labels, batch_size=64, shuffle=True, seed=0, epoch=epoch, drop_last=True,
        scale="unit",
    )  # fmt: skip
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history["train loss"].append(loss.item())
    recent = np.mean(history["train loss"][-50:])
    print(f"epoch {epoch + 1}: train loss {recent:.3f} ({time.perf_counter() - start:.0f} s)")

# %%
model.eval()
correct = 0
with mg.no_grad():
    for x, y in data.batches(
        test_images, test_labels, batch_size=500, shuffle=False, drop_last=False, scale="unit"
    ):
        predicted = mg.to_numpy(model(x).data).argmax(axis=1)
        correct += int((predicted == mg.to_numpy(y)).sum())
accuracy = correct / len(test_labels)
print(f"test accuracy: {accuracy:.3f} on {len(test_labels)} images")

# %% [markdown]
# ## Figures: the column matrix and the training loss

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1, 1.6]})
pixels = np.arange(1, 37).reshape(6, 6)  # numbered from 1, so padding (0) stands out
cols = mg.to_numpy(F.im2col(backend.from_numpy(pixels[None, None].astype(np.float32)), 4, 4, 2, 1))
matrix = cols.reshape(16, 9)  # (C*kh*kw, OH*OW*N) with C = N = 1
for ax, values, title in [
    (axes[0], pixels, "6x6 image, pixels numbered 1-36"),
    (axes[1], matrix, "im2col (kernel 4, stride 2, padding 1): one column per output pixel"),
]:
    ax.imshow(values, cmap="Blues", vmin=-10, vmax=45, aspect="auto")
    for (r, c), v in np.ndenumerate(values):
        ax.text(c, r, int(v), ha="center", va="center", fontsize=7)
    ax.set_title(title, fontsize=9)
axes[1].set_xlabel("output pixel (3 x 3, row by row); 0 = padding")
axes[1].set_yticks(range(16), [f"({i},{j})" for i in range(4) for j in range(4)], fontsize=7)
axes[1].set_ylabel("kernel offset (i, j)")
fig.tight_layout()
plots.save_figure(fig, out / "im2col.png")

fig, ax = plt.subplots(figsize=(7, 4))
losses = np.array(history["train loss"])
ax.plot(losses, linewidth=0.6, alpha=0.5, label="per batch")
window = max(1, min(50, len(losses) // 5))
smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
ax.plot(np.arange(window - 1, len(losses)), smooth, label=f"mean of {window}")
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy")
ax.set_title(f"Fashion-MNIST classifier, test accuracy {accuracy:.3f}")
ax.legend()
fig.tight_layout()
plots.save_figure(fig, out / "loss.png")
print(f"figures written to {out}/")

# %% [markdown]
# ## Summary
#
# **Built:** Linear with its three-GEMM backward; Conv2d as im2col and one
# matrix product; ConvTranspose2d as the adjoint of conv2d and as four
# sub-pixel convolutions; BatchNorm in its two modes; a small convolutional
# classifier from these pieces. **Measured:** every layer against its
# definition and by `gradcheck`, the adjoint identity, and the classifier's
# test accuracy (about 0.87 after the full run's two epochs, the header says).
# **The one idea to keep:** a convolution is a matrix product on a
# rearranged copy of the image, and its backward is two more products plus
# the rearrangement run in reverse (adding back where it copied).
#
# ## Exercises
#
# Worked solutions: `lessons/solutions/02_layers.py` (`--exercise K` runs one).
#
# 1. **How fast BatchNorm's running mean catches up.** Section 4 printed
#    an eval-mode mean far from 0 after one batch. Pass the same batch through
#    a fresh `BatchNorm2d(3)` k = 1, 5, 20, 50 times in training mode, then
#    switch to eval. Predict the running mean as a share of the batch mean
#    (momentum 0.1), and the eval-mode per-channel mean of the output, for
#    each k.
# 2. **Output size and column matrix of a convolution.** For a 28x28 image
#    and (kernel, stride, padding) = (3, 1, 1), (4, 2, 1), (5, 1, 0) and
#    (3, 2, 0), predict the output height and width and the shape of the
#    im2col matrix (rows C*kh*kw, columns OH*OW*N); check against `F.im2col`
#    and `nn.Conv2d`.
# 3. **Take out the ReLUs.** Train the section 5 classifier with its two
#    ReLUs removed: the network is then one linear map of the pixels (a
#    product of linear maps). Predict its test accuracy against the network
#    with ReLUs after the same epochs (full data, 2 epochs; `--quick` uses
#    1,000 images and 1 epoch, where the comparison means little).
