"""One tensor read out of a forward pass by a hook that lives only for a ``with`` block."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Literal

import torch
from torch import nn


class Captured:
    """The tensors a hooked module saw inside the block, one per call, in call order."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.tensors: list[torch.Tensor] = []

    def one(self) -> torch.Tensor:
        """The tensor of the module's only call; RuntimeError naming ``what`` when it ran another
        number of times (a module reused in the network, or not on the path to the output)."""
        if len(self.tensors) != 1:
            raise RuntimeError(f"{self.what} ran {len(self.tensors)} times in one forward pass (need 1)")
        return self.tensors[0]


@contextmanager
def capture(module: nn.Module, what: str, of: Literal["input", "output"] = "output") -> Iterator[Captured]:
    """Record ``module``'s first positional input (``of="input"``) or its output (the first
    element of a tuple or list output) on every call inside the block, unchanged and still in
    the autograd graph; the hook is removed when the block ends, also on an error.

    ``what`` names the module in :meth:`Captured.one`'s error, e.g. ``"embedding layer"``."""
    seen = Captured(what)
    if of == "input":
        handle = module.register_forward_pre_hook(lambda _module, inputs: seen.tensors.append(inputs[0]))
    elif of == "output":
        def keep(_module: nn.Module, _inputs: tuple, output) -> None:
            seen.tensors.append(output[0] if isinstance(output, (tuple, list)) else output)

        handle = module.register_forward_hook(keep)
    else:
        raise ValueError(f"of must be 'input' or 'output', got {of!r}")
    try:
        yield seen
    finally:
        handle.remove()
