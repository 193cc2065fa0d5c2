"""Models trained at first use and cached: the embedded defaults (shapes, audio, detection),
and the training loop they share.

The cache is a ``torch.save`` file ``{"state_dict", "info"}``; it is reused only when its
``info`` records the same values for every key of ``expected`` (seed, data and model versions,
…), so a stale file is retrained and overwritten, never silently reused. The shipped files
(``ckpt/embedded/``, :func:`paths.is_shipped`) are never overwritten by a run: a stale one is an
error that names the command remaking them.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn
from tqdm import tqdm  # not tqdm.auto: it warns in notebooks without ipywidgets

from . import paths
from .atomic import atomic_torch_save

#: The command that remakes the shipped embedded models (``submodular_attribution/apps/embedded.py``).
RETRAIN_COMMAND = "python -m submodular_attribution.apps.embedded --retrain"


def load_or_train(path: str | Path, *, what: str, expected: Mapping, build: Callable[[dict], nn.Module],
                  train: Callable[[], tuple[nn.Module, dict]], quality: Callable[[dict], str],
                  device: str | torch.device = "cpu", verbose: bool = True,
                  duration: str = "about a minute") -> tuple[nn.Module, dict]:
    """``(net, info)`` for the model ``what`` (e.g. ``"shapes CNN"``): loaded from ``path`` when
    its info matches ``expected`` (``build(info)`` makes the empty module), else ``train()`` and
    saved there atomically. Callers that may run in parallel hold a file lock around this.

    An unreadable file, or one whose weights do not fit, is a ``RuntimeError`` naming it.
    ``quality(info)`` words the held-out score for the messages; ``duration`` the training time.
    """
    path, device = Path(path), torch.device(device)
    if path.exists():
        try:
            ckpt = torch.load(path, map_location=device, weights_only=True)
            info, state_dict = dict(ckpt["info"]), ckpt["state_dict"]
        except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
            raise RuntimeError(f"{path}: cannot read the {what} checkpoint ({type(exc).__name__}); "
                               "delete the file to retrain") from exc
        if all(info.get(key) == value for key, value in expected.items()):
            net = build(info)
            try:
                net.load_state_dict(state_dict)
            except Exception as exc:  # noqa: BLE001
                raise RuntimeError(f"{path}: checkpoint does not fit the {what} ({type(exc).__name__}); "
                                   "delete the file to retrain") from exc
            if verbose:
                shown = f"the shipped {Path(path).name}" if paths.is_shipped(path) else path
                print(f"Loaded the default {what} from {shown} ({quality(info)})")
            return net.to(device).eval(), info
        if paths.is_shipped(path):
            raise RuntimeError(f"{path}: the shipped {what} is for another seed or data/model version "
                               f"({', '.join(f'{k}={info.get(k)!r}' for k in expected)}); remake it with "
                               f"`{RETRAIN_COMMAND}`")
        if verbose:
            print(f"{path}: checkpoint is for another seed or data/model version; retraining")
    if verbose:
        print(f"Training the default {what} into {path} (once; {duration} on CPU) ...", flush=True)
        if not (paths.EMBEDDED_DIR / path.name).is_file():
            print(f"  (no shipped copy in {paths.EMBEDDED_DIR}: numbers will differ slightly from the docs)")
    net, info = train()
    atomic_torch_save({"state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}, "info": info}, path)
    if verbose:
        print(f"Trained the default {what} in {info['seconds']:.0f} s: {quality(info)}")
    return net, info


def fit_one_cycle(net: nn.Module, optimizer: torch.optim.Optimizer, loss_of: Callable[[torch.Tensor], torch.Tensor], *,
                  n_train: int, batch_size: int, epochs: int, peak_lr: float, generator: torch.Generator,
                  desc: str, progress: bool = True) -> nn.Module:
    """Train ``net`` for ``epochs`` passes over ``n_train`` examples in a fresh random order each
    epoch (drawn from ``generator``), ``loss_of(indices)`` giving each batch's loss, with a
    one-cycle learning-rate schedule peaking at ``peak_lr`` after 15 % of the steps. Returns
    ``net`` in eval mode. Deterministic for a given generator state."""
    steps = math.ceil(n_train / batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak_lr, total_steps=epochs * steps,
                                                    pct_start=0.15)
    bar = tqdm(total=epochs * steps, desc=desc, disable=None if progress else True, leave=False)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(n_train, generator=generator)
        for step in range(steps):
            loss = loss_of(order[step * batch_size:(step + 1) * batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    bar.close()
    return net.eval()
