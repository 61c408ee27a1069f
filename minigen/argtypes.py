"""argparse types shared by the command line (minigen/__main__.py) and the lessons
(lessons/_setup.py): each turns one word into a checked value, or an error that
argparse prints with the flag's name."""

import argparse


def positive_int(text):
    """argparse type: an integer >= 1 (argparse names the flag in its message)."""
    return _int_at_least(text, 1, "a positive integer")


def nonnegative_int(text):
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def _int_at_least(text, low, what):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def path(text):
    """argparse type: a file or folder name, not empty (``--out ""`` must not mean
    "the default")."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return text


def option_value(option):
    """argparse type for a model option (a ``minigen.models.options.Option``): one word
    checked against its declaration, so ``--margin nan`` is refused as ``build`` would."""

    def value(word):
        try:
            return option.parse(word)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    value.__name__ = option.name or "value"  # argparse names the type in some messages
    return value
