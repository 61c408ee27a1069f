"""Worked solutions to the exercises at the end of lessons/02_layers.py.

One function per exercise; each prints what the exercise asks for, computed
(``_exercises.py`` says how to run them).
"""

import numpy as np
from _exercises import run_exercises

import minigen as mg
from minigen import backend, data, nn, optim
from minigen.nn import functional as F  # noqa: N812 - the PyTorch idiom


def exercise_1(args, images):
    """How fast BatchNorm's running mean catches up"""
    rng = np.random.default_rng(args.seed)
    batch = mg.tensor((rng.standard_normal((16, 3, 5, 5)) * 4 + 3).astype(np.float32))
    batch_mean = mg.to_numpy(batch.data).mean(axis=(0, 2, 3))
    print(f"   the batch's own per-channel mean: {batch_mean.round(3)}")
    for k in (1, 5, 20, 50):
        bn = nn.BatchNorm2d(3)  # running mean 0, variance 1; momentum 0.1
        for _ in range(k):
            bn(batch)  # train mode: updates the running statistics
        bn.eval()
        eval_mean = mg.to_numpy(bn(batch).data).mean(axis=(0, 2, 3))
        share = mg.to_numpy(bn.running_mean) / batch_mean
        print(
            f"   after {k:2d} training passes: running mean / batch mean {share.round(4)} "
            f"(1 - 0.9^k = {1 - 0.9**k:.4f}); eval-mode per-channel mean {eval_mean.round(2)}"
        )


def exercise_2(args, images):
    """Output size and column matrix of a convolution"""
    x = backend.from_numpy(np.zeros((1, 1, 28, 28), dtype=np.float32))
    for kernel, stride, padding in ((3, 1, 1), (4, 2, 1), (5, 1, 0), (3, 2, 0)):
        cols = F.im2col(x, kernel, kernel, stride, padding)  # (C, kh, kw, OH, OW, N)
        c, kh, kw, oh, ow, n = cols.shape
        conv = nn.Conv2d(1, 16, kernel, stride=stride, padding=padding)
        out = conv(mg.Tensor(x))
        print(
            f"   kernel {kernel}, stride {stride}, padding {padding}: output {tuple(out.shape)}, "
            f"column matrix {c * kh * kw} x {oh * ow * n}"
        )


def train_classifier(images, with_relu, epochs, seed):
    """Lesson 02's classifier, with or without its ReLUs; returns its test accuracy."""
    mg.manual_seed(seed)
    relu = [nn.ReLU()] if with_relu else []
    model = nn.Sequential(
        nn.Conv2d(1, 16, 4, stride=2, padding=1),
        *relu,
        nn.Conv2d(16, 32, 4, stride=2, padding=1),
        *relu,
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )
    opt = optim.Adam(model.parameters(), lr=1e-3)
    train_images, train_labels = data.read(data.locate(images.dataset, split="train"))
    if images.quick:
        train_images, train_labels = train_images[:1000], train_labels[:1000]
    for epoch in range(epochs):
        for x, y in data.batches(
            train_images, train_labels, batch_size=64, shuffle=True, seed=seed, epoch=epoch,
            drop_last=True, scale="unit",
        ):  # fmt: skip
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    correct = 0
    with mg.no_grad():
        for x, y in data.batches(
            images.test, images.test_labels, batch_size=500, shuffle=False, drop_last=False,
            scale="unit",
        ):  # fmt: skip
            correct += int((mg.to_numpy(model(x).data).argmax(axis=1) == mg.to_numpy(y)).sum())
    return correct / len(images.test_labels)


def exercise_3(args, images):
    """Take out the ReLUs"""
    epochs = 1 if args.quick else 2
    for with_relu in (True, False):
        accuracy = train_classifier(images, with_relu, epochs, args.seed)
        label = "with ReLUs" if with_relu else "without (a linear map)"
        print(f"   {label:23s}: test accuracy {accuracy:.3f} after {epochs} epoch(s)")


run_exercises("lesson 02", globals())
