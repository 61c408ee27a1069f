"""Losses: values against the formulas, gradients against finite differences,
every reduction, stability for huge logits, clear errors for bad input."""

import numpy as np
import pytest
from helpers import arrays, host, shapes, t
from hypothesis import given, settings
from hypothesis import strategies as st

import minigen
from minigen import ShapeError, nn
from minigen.nn import functional as F  # noqa: N812 - the PyTorch idiom

REDUCTIONS = ["mean", "sum", "none"]


def reduce(values, reduction):
    return {"mean": values.mean(), "sum": values.sum(), "none": values}[reduction]


def softplus(z):
    return np.logaddexp(0, z)


@settings(max_examples=15, deadline=None)
@given(data=st.data(), shape=shapes(1, 3), reduction=st.sampled_from(REDUCTIONS))
def test_bce_with_logits(data, shape, reduction):
    z = t(data.draw(arrays(shape, -4, 4), label="logits"))
    target = t(data.draw(arrays(shape, 0, 1), label="target"))
    loss = F.binary_cross_entropy_with_logits(z, target, reduction)
    zh, th = host(z), host(target)
    expected = reduce(th * softplus(-zh) + (1 - th) * softplus(zh), reduction)
    np.testing.assert_allclose(host(loss), expected, rtol=1e-12, atol=1e-12)
    minigen.gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction), z, target)


def test_bce_with_logits_is_stable_for_huge_logits():
    z = t(np.array([1e4, -1e4, 1e4, -1e4, 80.0, -80.0], np.float32))
    target = np.array([1, 0, 0, 1, 1, 0], np.float32)
    loss = F.binary_cross_entropy_with_logits(z, target, "none")
    np.testing.assert_allclose(host(loss), [0, 0, 1e4, 1e4, 0, 0], atol=1e-6)
    F.binary_cross_entropy_with_logits(z, target, "sum").backward()
    np.testing.assert_allclose(host(z.grad), [0, 0, 1, -1, 0, 0], atol=1e-6)
    assert loss.dtype == np.float32 and z.grad.dtype == np.float32


@settings(max_examples=15, deadline=None)
@given(data=st.data(), shape=shapes(1, 3), reduction=st.sampled_from(REDUCTIONS))
def test_mse_loss(data, shape, reduction):
    x = t(data.draw(arrays(shape), label="input"))
    target = t(data.draw(arrays(shape), label="target"))
    loss = F.mse_loss(x, target, reduction)
    np.testing.assert_allclose(
        host(loss), reduce((host(x) - host(target)) ** 2, reduction), rtol=1e-12, atol=1e-12
    )
    minigen.gradcheck(lambda a, b: F.mse_loss(a, b, reduction), x, target)


@settings(max_examples=15, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 4),
    k=st.integers(1, 5),
    reduction=st.sampled_from(REDUCTIONS),
    label_form=st.sampled_from(["host", "backend", "tensor"]),
)
def test_cross_entropy(data, n, k, reduction, label_form):
    z = t(data.draw(arrays((n, k), -4, 4), label="logits"))
    labels_host = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    labels = {
        "host": labels_host,
        "backend": minigen.backend.from_numpy(labels_host),
        "tensor": minigen.tensor(labels_host),
    }[label_form]
    loss = F.cross_entropy(z, labels, reduction)
    zh = host(z)
    log_softmax = zh - np.log(np.exp(zh).sum(axis=1, keepdims=True))
    expected = reduce(-log_softmax[np.arange(n), labels_host], reduction)
    np.testing.assert_allclose(host(loss), expected, rtol=1e-12, atol=1e-12)
    minigen.gradcheck(lambda a: F.cross_entropy(a, labels, reduction), z)


def test_cross_entropy_large_logits_and_float32():
    z = t(np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], np.float32))
    loss = F.cross_entropy(z, np.array([1, 2]), "none")
    np.testing.assert_allclose(host(loss), [1000.0, np.log(3)], rtol=1e-6)
    assert loss.dtype == np.float32


def test_cross_entropy_bad_labels():
    z = t(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"\[0, 4\).*0 to 4"):
        F.cross_entropy(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"-1 to"):
        F.cross_entropy(z, np.array([0, -1, 2]))
    with pytest.raises(TypeError, match="integers"):
        F.cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ShapeError, match=r"\(3, 4\) and \(2,\)"):
        F.cross_entropy(z, np.array([0, 1]))


@settings(max_examples=15, deadline=None)
@given(data=st.data(), shape=shapes(1, 3), reduction=st.sampled_from(REDUCTIONS))
def test_gaussian_kl(data, shape, reduction):
    mu = t(data.draw(arrays(shape), label="mu"))
    logvar = t(data.draw(arrays(shape), label="logvar"))
    kl = F.gaussian_kl(mu, logvar, reduction)
    m, lv = host(mu), host(logvar)
    per_example = (0.5 * (m**2 + np.exp(lv) - 1 - lv)).reshape(shape[0], -1).sum(axis=1)
    expected = {
        "mean": per_example.mean(),  # over the batch axis only
        "sum": per_example.sum(),
        "none": per_example,
    }[reduction]
    np.testing.assert_allclose(host(kl), expected, rtol=1e-12, atol=1e-12)
    minigen.gradcheck(lambda a, b: F.gaussian_kl(a, b, reduction), mu, logvar)


def test_gaussian_kl_is_zero_at_the_prior_and_matches_closed_form():
    zeros = t(np.zeros((4, 8), np.float32))
    assert float(host(F.gaussian_kl(zeros, zeros))) == 0.0
    # KL(N(1, e^2) || N(0, 1)) per dim = 0.5 (1 + e^2 - 1 - 2) = 0.5 (e^2 - 2)
    mu, logvar = t(np.ones((3, 2), np.float32)), t(np.full((3, 2), 2.0, np.float32))
    kl = F.gaussian_kl(mu, logvar, "mean")
    assert kl.dtype == np.float32
    np.testing.assert_allclose(host(kl), 2 * 0.5 * (np.e**2 - 2), rtol=1e-6)


@pytest.mark.parametrize("loss", [F.binary_cross_entropy_with_logits, F.mse_loss, F.gaussian_kl])
def test_losses_reject_bad_input(loss):
    a, b = t(np.zeros((3, 4))), t(np.zeros((3, 5)))
    with pytest.raises(ShapeError, match=r"\(3, 4\).*\(3, 5\)"):
        loss(a, b)
    with pytest.raises(ValueError, match="reduction"):
        loss(a, a, reduction="average")


def test_losses_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((6, 5)) * 5, rng.random((6, 5))
    labels = rng.integers(0, 5, 6)
    tf = torch.nn.functional
    for reduction in REDUCTIONS:
        pairs = [
            (
                F.binary_cross_entropy_with_logits(t(z), y, reduction),
                tf.binary_cross_entropy_with_logits(
                    torch.tensor(z), torch.tensor(y), reduction=reduction
                ),
            ),
            (
                F.mse_loss(t(z), y, reduction),
                tf.mse_loss(torch.tensor(z), torch.tensor(y), reduction=reduction),
            ),
            (
                F.cross_entropy(t(z), labels, reduction),
                tf.cross_entropy(torch.tensor(z), torch.tensor(labels), reduction=reduction),
            ),
        ]
        for ours, theirs in pairs:
            np.testing.assert_allclose(host(ours), theirs.numpy(), rtol=1e-12, atol=1e-12)


def test_functional_namespace_has_everything():
    for name in [
        "linear",
        "conv2d",
        "conv_transpose2d",
        "batch_norm",
        "relu",
        "leaky_relu",
        "tanh",
        "sigmoid",
        "dropout",
        "binary_cross_entropy_with_logits",
        "mse_loss",
        "cross_entropy",
        "gaussian_kl",
    ]:
        assert callable(getattr(nn.functional, name)), name
