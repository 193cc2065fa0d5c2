"""Argument checks, one rule each, for the API, the engine and the command lines.

A value of the wrong type is a ``TypeError``; a value of the right type outside its range is a
``ValueError``. Both name the argument (``batch_size must be ≥ 1, got 0``), so a command line
passes the flag as the name (``--batch-size``) and reports either as one ``error:`` line by
checking inside :func:`flag_errors`.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any, Iterator

from .errors import InputError


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an int; TypeError unless it is an integer (bool is not one), ValueError when
    it is below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {value}")
    return int(value)


def check_number(name: str, value: Any, minimum: float | None = None, finite: bool = False) -> float:
    """``value`` as a float; TypeError unless it is a real number (bool is not one), ValueError
    when it is below ``minimum`` or, with ``finite``, infinite or NaN."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if finite and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {value}")
    return float(value)


@contextmanager
def flag_errors() -> Iterator[None]:
    """Checks of command-line flags: their TypeError or ValueError becomes an :class:`InputError`
    with the same message, which the command prints as one ``error:`` line."""
    try:
        yield
    except (TypeError, ValueError) as err:
        raise InputError(str(err)) from None
