"""A model's options, declared once: name, type, allowed values, default, one line of help.

    class WGANGP(GenerativeModel):
        n_critic = Option(int, 5, "[1, 1000]", "critic updates per generator update")
        lr = Option(float, 1e-4, "(0, inf)", "Adam's learning rate")

Everything else reads the declaration:

- the constructor (and so ``build``) checks every value against it and fills
  in the defaults: ``latent_dim=0`` or ``ema=2.0`` is a ValueError naming the
  option and what it allows (``checked``);
- ``model.options`` holds the values, the one copy: ``model.lr`` reads it
  (an option set to None, "off", is left out of it);
- a checkpoint's options are checked against it before a model is built
  (``minigen.models.check_options``); an option the checkpoint lacks (one added after it
  was written) takes its default;
- the command line offers each one as a flag with its help line and default
  (``python -m minigen train dcgan --lr 1e-4 --z-dim 32``), so a new
  model's options reach ``--help`` without touching minigen/__main__.py.

Allowed ranges are intervals as written in mathematics, "[1, 65536]" or
"(0, inf)"; a string option lists its choices; a pair (Adam's betas) has
``size=2``.
"""

import math
import numbers

MAX_SIZE = 1 << 16  # the largest layer size (or count) an option may ask for

_WORDS = {int: "an integer", float: "a number", bool: "True or False", str: "one of"}


class Option:
    """One option of a model, declared as a class attribute (see the module docstring).

    ``kind``: int, float, bool or str. ``default``: the reference value; None
    means "off" (or "chosen from other options", as the help line says) and is
    then also allowed. ``allowed``: an interval for numbers, the choices for a
    string, None for a bool. ``size``: 2 for a pair of values.
    """

    def __init__(self, kind, default, allowed, help, *, size=None):
        self.kind, self.default, self.help, self.size = kind, default, help, size
        self.name = None  # set by __set_name__: the attribute's name
        self.choices = tuple(allowed) if kind is str else None
        self.interval = allowed if kind in (int, float) else None
        if self.interval is not None:
            low, high = (float(v) for v in allowed[1:-1].split(","))
            self.bounds = (allowed[0], low, high, allowed[-1])

    def __set_name__(self, owner, name):
        self.name = name
        self.check(self.default, owner.__name__)  # a declaration that contradicts itself fails here

    def __get__(self, model, owner=None):
        if model is None:  # on the class: the declaration itself
            return self
        return model.options.get(self.name, self.default)

    def __set__(self, model, value):
        value = self.check(value, type(model).__name__)
        if value is None:
            model.options.pop(self.name, None)
        else:
            model.options[self.name] = value

    # ------------------------------------------------------------------ checks

    def describe(self):
        """What the option allows, in words: 'an integer in [1, 65536]'."""
        if self.kind is str:
            what = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            what = _WORDS[self.kind] + (f" in {self.interval}" if self.interval else "")
        if self.size:
            what = f"{self.size} values, each {what}"
        return what + (", or None" if self.default is None else "")

    def check(self, value, owner):
        """``value`` as the option holds it (a float for a float option, a tuple for a
        pair), or a ValueError naming the option and what it allows."""
        if value is None and self.default is None:
            return None
        try:
            if self.size is None:
                return self._one(value)
            if not isinstance(value, (list, tuple)) or len(value) != self.size:
                raise ValueError
            return tuple(self._one(v) for v in value)
        except ValueError:
            raise ValueError(
                f"{owner}: option {self.name} must be {self.describe()}, got {value!r}"
            ) from None

    def _one(self, v):
        if self.kind is bool:
            if not isinstance(v, bool):
                raise ValueError
            return v
        if self.kind is str:
            if v not in self.choices:
                raise ValueError
            return v
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ValueError
        if self.kind is int and not isinstance(v, numbers.Integral):
            raise ValueError
        v = self.kind(v)
        opening, low, high, closing = self.bounds
        inside = (low < v if opening == "(" else low <= v) and (
            v < high if closing == ")" else v <= high
        )
        if not (math.isfinite(v) and inside):
            raise ValueError
        return v

    def parse(self, text):
        """One command-line word (``--lr 1e-4``) as a checked value of the option (of a
        pair, each word is one value)."""
        try:
            return self._one({int: int, float: float}.get(self.kind, str)(text))
        except ValueError:
            raise ValueError(f"{self.name} must be {self.describe()}, got {text!r}") from None


def declared(cls):
    """{name: Option} of a model class, base classes' first, in the order written."""
    found = {}
    for klass in reversed(cls.__mro__):
        found.update((k, v) for k, v in vars(klass).items() if isinstance(v, Option))
    return found


def checked(cls, options):
    """``options`` (a dict) checked against ``cls``'s declaration: {name: value} with
    every declared option, defaults filled in and values as the options hold them.
    An unknown name is a TypeError (as for any function), a bad value a ValueError."""
    declaration = declared(cls)
    unknown = [key for key in options if key not in declaration]
    if unknown:
        raise TypeError(
            f"{cls.__name__}: unknown option {unknown[0]!r}; its options are "
            + ", ".join(declaration)
        )
    return {
        name: option.check(options.get(name, option.default), cls.__name__)
        for name, option in declaration.items()
    }
