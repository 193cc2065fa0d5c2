"""The shared argument checks: a wrong type is a TypeError, a wrong value a ValueError, both naming
the argument; inside flag_errors either becomes the InputError a command prints as one line."""
import math

import numpy as np
import pytest

from submodular_attribution.common.checks import check_int, check_number, flag_errors
from submodular_attribution.common.errors import InputError


def test_integers():
    assert check_int("k", 3, 1) == 3 and type(check_int("k", np.int64(3), 1)) is int
    assert check_int("k", -5) == -5  # no minimum
    with pytest.raises(ValueError, match=r"^k must be ≥ 1, got 0$"):
        check_int("k", 0, 1)
    for wrong in (2.0, True, "3", None):
        with pytest.raises(TypeError, match=r"^k must be an integer, got "):
            check_int("k", wrong, 1)


def test_numbers():
    assert check_number("s", 1, 0) == 1.0 and type(check_number("s", 1, 0)) is float
    assert math.isnan(check_number("s", math.nan, 0))  # only finite=True refuses NaN and ±inf
    with pytest.raises(ValueError, match=r"^s must be ≥ 0, got -0.5$"):
        check_number("s", -0.5, 0)
    with pytest.raises(ValueError, match=r"^s must be a finite number, got inf$"):
        check_number("s", math.inf, finite=True)
    for wrong in ("high", False, None):
        with pytest.raises(TypeError, match=r"^s must be a number, got "):
            check_number("s", wrong)


def test_flag_errors_become_input_errors_with_the_same_message():
    for value, message in ((0, "--batch-size must be ≥ 1, got 0"), (1.5, "--batch-size must be an integer, got 1.5")):
        with pytest.raises(InputError) as caught, flag_errors():
            check_int("--batch-size", value, 1)
        assert str(caught.value) == message
