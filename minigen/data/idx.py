"""The IDX file format of MNIST and Fashion-MNIST: read and write.

An IDX file is a tiny header followed by raw array data, big-endian::

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16,
                0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    then        d sizes, each a 4-byte big-endian unsigned integer
    then        prod(sizes) elements, row-major

The datasets ship these files gzipped; ``read_idx`` recognises gzip by its
first two bytes (0x1f 0x8b), not by the file name, so either kind reads.
Everything here runs on the host: the result is a NumPy array.
"""

import gzip
import math
import struct
import zlib
from pathlib import Path

from minigen import backend
from minigen.errors import MinigenError

np = backend.host

# type code -> big-endian dtype, and back
_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("=") if dt.itemsize > 1 else dt: code for code, dt in _DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class DataError(MinigenError, OSError):
    """A data file is missing, damaged or not what it claims to be.

    The message names the file, what failed, and what the user can do.
    Subclass of OSError, so ``except OSError`` around file work still catches it.
    """


def read_idx(path):
    """Read an IDX file (gzipped or plain) into a host NumPy array.

    The array has the file's shape and its element type in native byte order.
    Raises DataError naming the file when it is truncated, not gzip-valid,
    or does not start with an IDX header.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: only {len(raw)} bytes, too short for an IDX header. {_REDO}")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _DTYPES:
        raise DataError(
            f"{path}: not an IDX file (magic bytes {raw[:4].hex()}, expected 0000 then a "
            f"type code {', '.join(f'{c:02x}' for c in _DTYPES)} and a dimension count). "
            "Is this the right file?"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated inside the IDX header. {_REDO}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: sizes cannot overflow
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "longer than its header says"
        raise DataError(
            f"{path}: {what}: header says shape {shape} of {dtype.name} "
            f"({expected:,} bytes of data), file has {got:,}. {_REDO}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # native order, and a writable copy


_REDO = "Delete it and download it again, or point minigen at a good copy."


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file.") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e}).") from e
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        # EOFError: the gzip stream ends early (an interrupted copy)
        raise DataError(f"{path}: damaged gzip data ({e or 'stream ends early'}). {_REDO}") from e


def write_idx(path, array):
    """Write a host array to an IDX file; gzipped when the name ends in ``.gz``.

    Supported dtypes: uint8, int8, int16, int32, float32, float64.
    """
    a = np.asarray(array)
    key = a.dtype.newbyteorder("=") if a.dtype.itemsize > 1 else a.dtype
    if key not in _CODES:
        raise TypeError(
            f"write_idx: IDX cannot hold dtype {a.dtype}; use one of "
            f"{', '.join(sorted(d.name for d in _CODES))}"
        )
    if a.ndim > 255:
        raise ValueError(f"write_idx: IDX holds at most 255 dimensions, got {a.ndim}")
    code = _CODES[key]
    header = struct.pack(">HBB", 0, code, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    body = np.ascontiguousarray(a, dtype=_DTYPES[code]).tobytes()
    path = Path(path)
    with open(path, "wb") as f:
        if path.name.endswith(".gz"):
            # mtime=0 and no stored name: the same array always gives the same bytes
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as g:
                g.write(header + body)
        else:
            f.write(header + body)
    return path
