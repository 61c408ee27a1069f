"""IDX read/write: round trips for drawn arrays, and every kind of bad file."""

import gzip

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigen.data import DataError, read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@settings(max_examples=40, deadline=None)
@given(
    a=st.sampled_from(DTYPES).flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5))
    ),
    gz=st.booleans(),
)
def test_round_trip(tmp_path_factory, a, gz):
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, a)
    b = read_idx(path)
    assert b.shape == a.shape
    assert b.dtype == a.dtype  # native byte order comes back
    assert b.tobytes() == a.tobytes()  # bit-exact, NaNs and -0.0 included
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz


def test_header_is_big_endian(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.arange(6, dtype=np.int32).reshape(2, 3))
    raw = path.read_bytes()
    assert raw[:4] == b"\x00\x00\x0c\x02"
    assert raw[4:12] == b"\x00\x00\x00\x02\x00\x00\x00\x03"
    assert raw[12:16] == b"\x00\x00\x00\x00" and raw[16:20] == b"\x00\x00\x00\x01"


def test_same_array_same_bytes(tmp_path):
    a = np.arange(100, dtype=np.uint8)
    p1, p2 = write_idx(tmp_path / "1.gz", a), write_idx(tmp_path / "2.gz", a)
    assert p1.read_bytes() == p2.read_bytes()


def test_gzip_is_detected_by_content_not_name(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz = write_idx(tmp_path / "a.gz", a)
    renamed = tmp_path / "a-idx3-ubyte"
    renamed.write_bytes(gz.read_bytes())
    np.testing.assert_array_equal(read_idx(renamed), a)


def test_unsupported_dtype_is_refused(tmp_path):
    with pytest.raises(TypeError, match="bool"):
        write_idx(tmp_path / "b.idx", np.zeros(3, dtype=bool))


# ------------------------------------------------------------------ bad files


@pytest.fixture
def good(tmp_path):
    return write_idx(tmp_path / "good-idx3-ubyte", np.ones((5, 4, 4), dtype=np.uint8))


def test_truncated_plain(good):
    good.write_bytes(good.read_bytes()[:-7])
    with pytest.raises(DataError, match=r"good-idx3-ubyte: truncated.*80 bytes.*73") as e:
        read_idx(good)
    assert "download it again" in str(e.value)


def test_too_long(good):
    good.write_bytes(good.read_bytes() + b"\x00")
    with pytest.raises(DataError, match="longer than its header says"):
        read_idx(good)


def test_truncated_inside_header(good):
    good.write_bytes(good.read_bytes()[:9])
    with pytest.raises(DataError, match="truncated inside the IDX header"):
        read_idx(good)


def test_empty_file(good):
    good.write_bytes(b"")
    with pytest.raises(DataError, match="too short"):
        read_idx(good)


def test_truncated_gzip(tmp_path):
    rng = np.random.default_rng(0)
    path = write_idx(tmp_path / "t.gz", rng.integers(0, 256, (50, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t\.gz: damaged gzip data"):
        read_idx(path)


def test_corrupt_gzip(tmp_path):
    rng = np.random.default_rng(0)
    path = write_idx(tmp_path / "c.gz", rng.integers(0, 256, (50, 28, 28), dtype=np.uint8))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"c\.gz: damaged gzip data"):
        read_idx(path)


@pytest.mark.parametrize("head", [b"PK\x03\x04", b"\x00\x00\x07\x01", b"\x01\x00\x08\x01"])
def test_wrong_magic(tmp_path, head):
    path = tmp_path / "w.idx"
    path.write_bytes(head + bytes(16))
    with pytest.raises(DataError, match=r"w\.idx: not an IDX file \(magic bytes " + head.hex()):
        read_idx(path)


def test_wrong_magic_inside_gzip(tmp_path):
    path = tmp_path / "w.gz"
    path.write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.gz: no such file"):
        read_idx(tmp_path / "nope.gz")
