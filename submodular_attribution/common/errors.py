"""Bad user input becomes one ``error:`` line and exit status 2, never a traceback."""
from __future__ import annotations

import sys
from typing import Callable


class InputError(ValueError):
    """Bad user input (file, list line, argument); the CLI prints it as one line."""


def run_reporting_input_errors(action: Callable[[], object]) -> int:
    """Exit status of a command: ``action()``'s own int status (0 when it returns anything else),
    or 2 after printing a bad-input error as one line on stderr."""
    try:
        status = action()
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) and not isinstance(status, bool) else 0
