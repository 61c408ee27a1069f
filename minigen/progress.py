"""Progress bars for training loops, with the running losses beside them.

    bar = progress(range(steps), desc="dcgan")
    for step in bar:
        ...
        bar.set_postfix(d_loss=float(d_loss), g_loss=float(g_loss))

A thin layer over tqdm. The bar is shown only when stderr is a terminal, so
logs, CI runs and piped output stay free of carriage-return clutter; set
``MINIGEN_PROGRESS=1`` to force it on (e.g. in a notebook) or ``0`` to force
it off. A hidden bar still iterates and accepts set_postfix.
"""

import os
import sys

from tqdm import tqdm

_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def enabled(stream=None):
    """Whether bars are shown: MINIGEN_PROGRESS if set, else whether stderr is a terminal."""
    setting = os.environ.get("MINIGEN_PROGRESS", "").strip().lower()
    if setting in _ON:
        return True
    if setting in _OFF:
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def progress(iterable=None, total=None, desc=None, **kwargs):
    """A tqdm bar over ``iterable`` (or a manual one with ``total``), on stderr.

    Extra keyword arguments go to tqdm (unit, leave, position, ...).
    """
    stream = sys.stderr  # looked up now, so redirected stderr is honoured
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("disable", not enabled(stream))
    return tqdm(iterable, total=total, desc=desc, file=stream, **kwargs)
