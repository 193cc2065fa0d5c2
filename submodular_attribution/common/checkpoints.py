"""Loading user weights into a freshly built model, with one-line errors naming the file."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from .errors import InputError

PREFIXES = ("module.", "model.")  # DataParallel / Lightning-style wrappers


def read_tensor_file(path: str | Path, what: str = "checkpoint") -> object:
    """Load a ``torch.save``/safetensors file on the CPU (tensors only); a missing or unreadable
    file is an InputError naming it and ``what`` it should be."""
    path = Path(path)
    if not path.is_file():
        hint = " (see ckpt/README.md for where to get it)" if what == "checkpoint" else ""
        raise InputError(f"{path}: {what} not found{hint}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        # training scripts store their argparse.Namespace under "args" (e.g. the attribution
        # benchmark's *_checkpoint_best.pth.tar); it holds plain values, so allow that one class
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise InputError(f"{path}: cannot read {what} ({type(err).__name__}: {str(err).splitlines()[0]})") from None


def read_state_dict(path: str | Path, keys: Iterable[str] = ("state_dict", "model", "model_state_dict")) -> dict:
    """Read a checkpoint on the CPU and return its tensor dict (unwrapping common containers)."""
    obj = read_tensor_file(path)
    for key in keys:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{path}: not a state dict of tensors")
    return obj


def strip_prefixes(state: dict, expected: Iterable[str], prefixes: Iterable[str] = PREFIXES) -> dict:
    """Remove wrapper prefixes (``module.``, ``model.``) that the model's own keys do not have."""
    expected = set(expected)
    for prefix in prefixes:
        if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in expected):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _few(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (f" … (+{len(keys) - n} more)" if len(keys) > n else "")


def load_weights(model: nn.Module, path: str | Path, allow_missing: Iterable[str] = ()) -> nn.Module:
    """Load the file ``path`` into ``model`` strictly (see :func:`load_state`)."""
    return load_state(model, read_state_dict(path), path, allow_missing)


def load_state(model: nn.Module, state: dict, source: str | Path, allow_missing: Iterable[str] = ()) -> nn.Module:
    """Load a state dict strictly: missing, unexpected or mis-shaped keys are an error naming
    ``source`` and the first few keys. ``allow_missing`` lists key prefixes that may be absent."""
    own = model.state_dict()
    state = strip_prefixes(state, own.keys())
    allow = tuple(allow_missing)
    missing = [k for k in own if k not in state and not k.startswith(allow)]  # startswith(()) is False
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)}≠{tuple(own[k].shape)}" for k in own
              if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys: {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_few(unexpected)}")
    if shapes:
        problems.append(f"shape mismatch: {_few(shapes, 2)}")
    if problems:
        raise InputError(f"{source}: weights do not fit {type(model).__name__} ({'; '.join(problems)})")
    model.load_state_dict(state, strict=False)
    return model
