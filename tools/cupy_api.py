"""Read an installed CuPy and write the API list the strict stand-in is built from.

    python tools/cupy_api.py            # writes minigen/backend/cupy_api.json
    python tools/cupy_api.py --check    # exit 1 if the committed list differs

The strict backend (minigen/backend/strict.py) offers exactly the names this
list holds: the ``cupy`` module's public names, ``cupy.ndarray``'s attributes
(dunders included, so a missing ``__index__`` is recorded), the ``flags``
fields, ``cupy.linalg`` and ``cupy.random``, and for every ``cupy.ufunc`` the
methods (at, reduce, accumulate, outer, reduceat) that CuPy implements for it.
The list lives inside the package because the stand-in reads it at run time.

CuPy installs and imports without a GPU (``pip install cupy-cuda12x``). The
ufunc methods are probed by calling them: CuPy raises ``NotImplementedError``
before touching the device for a method it lacks. Without a GPU the probes
use arrays over host memory wrapped as device memory (``UnownedMemory``); such
arrays are never read, since every implemented method stops at the missing
driver. With a GPU the probes use real device arrays.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "minigen" / "backend" / "cupy_api.json"
UFUNC_METHODS = ("accumulate", "at", "outer", "reduce", "reduceat")


def _public(names):
    return sorted(n for n in names if not n.startswith("_"))


def _probe_arrays(cupy):
    """A float32 vector and an index vector on the device (or over host memory)."""
    if cupy.is_available():
        return cupy.zeros(4, dtype=cupy.float32), cupy.asarray([0, 1, 1]), []
    from cupy.cuda import memory

    keep = []  # the host buffers must outlive the arrays that point at them

    def fake(host):
        keep.append(host)
        mem = memory.UnownedMemory(host.ctypes.data, host.nbytes, host, device_id=0)
        ptr = memory.MemoryPointer(mem, 0)
        return cupy.ndarray(host.shape, dtype=host.dtype, memptr=ptr)

    a = fake(np.zeros(4, dtype=np.float32))
    index = fake(np.array([0, 1, 1], dtype=np.int64))
    return a, index, keep


def _implemented_methods(ufunc, a, index):
    calls = {
        "accumulate": lambda: ufunc.accumulate(a),
        "at": lambda: ufunc.at(a, index, a[:3]) if ufunc.nin == 2 else ufunc.at(a, index),
        "outer": lambda: ufunc.outer(a, a),
        "reduce": lambda: ufunc.reduce(a),
        "reduceat": lambda: ufunc.reduceat(a, index),
    }
    found = []
    for method in UFUNC_METHODS:
        try:
            calls[method]()
        except NotImplementedError:
            continue  # CuPy says it lacks this method for this ufunc
        except Exception:  # noqa: BLE001 - got past the check: the method exists
            pass
        found.append(method)
    return found


def read_api():
    """The API of the installed CuPy, as plain data."""
    import cupy

    a, index, _keep = _probe_arrays(cupy)
    ufuncs = {
        name: _implemented_methods(getattr(cupy, name), a, index)
        for name in _public(dir(cupy))
        if isinstance(getattr(cupy, name), cupy.ufunc)
    }
    return {
        "cupy_version": cupy.__version__,
        "module": _public(dir(cupy)),
        "ndarray": sorted(n for n in dir(cupy.ndarray) if not n.startswith("_") or n[:2] == "__"),
        "flags": _public(dir(type(a.flags))),
        "linalg": _public(dir(cupy.linalg)),
        "random": _public(dir(cupy.random)),
        "ufuncs": ufuncs,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed list")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT})")
    args = parser.parse_args(argv)
    try:
        text = json.dumps(read_api(), indent=1, sort_keys=True) + "\n"
    except ImportError:
        sys.exit("cupy is not installed: pip install cupy-cuda12x (no GPU needed to read its API)")
    if args.check:
        same = args.out.exists() and args.out.read_text() == text
        print(f"{args.out}: {'up to date' if same else 'differs from the installed CuPy'}")
        return 0 if same else 1
    args.out.write_text(text)
    print(f"wrote {args.out} (CuPy {json.loads(text)['cupy_version']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
