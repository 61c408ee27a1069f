"""Minibatches: every example once per epoch, reproducible by seed, scaled on the device."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigen import backend
from minigen.data import batches, num_batches, scale_pixels, unit_batches


def numbered(n, shape=(4, 4)):
    """n images whose pixels all hold their own index (mod 256), labelled by index."""
    images = (np.arange(n) % 256).astype(np.uint8)[:, None, None] * np.ones(shape, np.uint8)
    return images, np.arange(n, dtype=np.int64)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 60),
    batch_size=st.integers(1, 16),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    epoch=st.integers(0, 5),
)
def test_each_example_once_per_epoch(n, batch_size, drop_last, seed, epoch):
    images, labels = numbered(n)
    seen, count = [], 0
    for x, y in batches(
        images, labels, batch_size, seed=seed, epoch=epoch, drop_last=drop_last, scale="unit"
    ):
        x, y = backend.to_numpy(x), backend.to_numpy(y)
        assert x.shape[1:] == (1, 4, 4) and len(x) == len(y)
        if drop_last:
            assert len(y) == batch_size
        # each image travels with its own label
        np.testing.assert_allclose(x[:, 0, 0, 0] * 255, y % 256, atol=1e-4)
        seen.extend(y.tolist())
        count += 1
    assert count == num_batches(n, batch_size, drop_last)
    assert len(set(seen)) == len(seen), "no example twice"
    expected = n - n % batch_size if drop_last else n
    assert len(seen) == expected
    if not drop_last:
        assert sorted(seen) == list(range(n))


def order(**kwargs):
    images, labels = numbered(50)
    return [backend.to_numpy(y).tolist() for _, y in batches(images, labels, 10, **kwargs)]


def test_deterministic_by_seed_and_epoch():
    assert order(seed=3, epoch=0) == order(seed=3, epoch=0)
    assert order(seed=3, epoch=0) != order(seed=4, epoch=0)
    assert order(seed=3, epoch=0) != order(seed=3, epoch=1), "each epoch reshuffles"
    # (seed, epoch) is not seed + epoch: neighbouring seeds do not share epochs
    assert order(seed=3, epoch=1) != order(seed=4, epoch=0)
    assert sum(order(shuffle=False), []) == list(range(50))


def test_types_shapes_and_device():
    images = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    x, y = next(batches(images, np.arange(10), 4))
    assert backend.is_array(x) and backend.is_array(y)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.shape == (4, 1, 28, 28) and y.shape == (4,)
    x, y = next(batches(np.zeros((6, 3, 5, 7), np.uint8), batch_size=2))
    assert x.shape == (2, 3, 5, 7) and y is None


def test_scaling():
    pixels = np.array([0, 1, 127, 128, 254, 255], np.uint8).reshape(6, 1, 1)
    kw = dict(batch_size=6, shuffle=False)
    unit = backend.to_numpy(next(batches(pixels, **kw, scale="unit"))[0]).ravel()
    sym = backend.to_numpy(next(batches(pixels, **kw, scale="symmetric"))[0]).ravel()
    assert unit.dtype == np.float32 and sym.dtype == np.float32
    np.testing.assert_allclose(unit, pixels.ravel() / 255.0, rtol=1e-6)
    np.testing.assert_allclose(sym, pixels.ravel() / 127.5 - 1.0, atol=1e-6)
    assert unit[0] == 0.0 and unit[-1] == pytest.approx(1.0, abs=1e-6)
    assert sym[0] == -1.0 and sym[-1] == pytest.approx(1.0, abs=1e-6)


def test_device_input_and_len_helper():
    images, labels = numbered(9)
    got = [
        backend.to_numpy(y).tolist()
        for _, y in batches(backend.from_numpy(images), backend.from_numpy(labels), 4)
    ]
    assert len(got) == num_batches(9, 4, True) == 2
    assert num_batches(9, 4, drop_last=False) == 3 and num_batches(8, 4, False) == 2


def test_bad_input_is_refused_at_the_call():
    images, labels = numbered(8)
    with pytest.raises(TypeError, match="uint8 pixels.*got float32"):
        batches(images.astype(np.float32))
    with pytest.raises(ValueError, match=r"labels must have shape \(8,\).*got \(7,\)"):
        batches(images, labels[:7])
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, C, H, W\), got \(8, 16\)"):
        batches(images.reshape(8, 16))
    with pytest.raises(ValueError, match="scale must be one of"):
        batches(images, scale="minus-one-to-one")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        batches(images, batch_size=0)


def test_scale_pixels_is_the_one_formula_batches_use():
    pixels = np.array([[0, 51, 255]], np.uint8)
    np.testing.assert_allclose(backend.to_numpy(scale_pixels(pixels)), [[0.0, 0.2, 1.0]], rtol=1e-6)
    sym = backend.to_numpy(scale_pixels(backend.from_numpy(pixels), "symmetric"))
    np.testing.assert_allclose(sym, [[-1.0, 0.2 * 2 - 1, 1.0]], atol=1e-6)
    assert scale_pixels(pixels).dtype == np.float32
    images = np.random.default_rng(0).integers(0, 256, (4, 2, 2), dtype=np.uint8)
    x, _ = next(batches(images, None, 4, shuffle=False, scale="symmetric"))
    np.testing.assert_array_equal(
        backend.to_numpy(x), backend.to_numpy(scale_pixels(images[:, None], "symmetric"))
    )
    with pytest.raises(TypeError, match="uint8"):
        scale_pixels(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="scale must be one of"):
        scale_pixels(pixels, "signed")


def test_unit_batches_walk_in_order_and_check_float_ranges():
    images = np.random.default_rng(1).integers(0, 256, (5, 3, 3), dtype=np.uint8)
    parts = [backend.to_numpy(x) for x in unit_batches(images, 2, "test")]
    assert [len(p) for p in parts] == [2, 2, 1] and parts[0].shape == (2, 1, 3, 3)
    np.testing.assert_allclose(np.concatenate(parts)[:, 0], images / 255.0, rtol=1e-6)
    floats = images.astype(np.float32)[:, None] / 255
    np.testing.assert_allclose(
        np.concatenate([backend.to_numpy(x) for x in unit_batches(floats, 5, "t")]), floats
    )
    with pytest.raises(ValueError, match=r"who: float images must have pixels in \[0, 1\]"):
        next(unit_batches(floats * 2 - 1, 5, "who"))
