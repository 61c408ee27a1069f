"""The one base class of minigen's own errors.

Every error minigen raises on purpose about a bad input (a backend that cannot
run, shapes that do not fit, a damaged data file, a checkpoint that is not
what it should be, training that diverged) derives from ``MinigenError`` as
well as from the built-in class a Python user would expect (``ValueError``,
``OSError``, ...). The command line catches ``MinigenError`` and prints its
message as one line; ``except ValueError`` and the like keep working.
"""


class MinigenError(Exception):
    """A bad input or state that minigen explains in one sentence: what is wrong, what to do."""
