"""One helper for multi-process runs: read torchrun's environment and shard work by rank.

Ranks share no state: each explains its own slice of the evaluation list and writes
its own per-image files, so no process group is needed and a crashed rank costs only
its unfinished images. Without torchrun this is a single process (rank 0 of 1).
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Worker:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_worker() -> Worker:
    """Rank, world size and local rank from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK)."""
    env = os.environ
    worker = Worker(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))
    if not 0 <= worker.rank < worker.world_size:
        raise ValueError(f"RANK={worker.rank} is outside WORLD_SIZE={worker.world_size}")
    return worker


def shard(items: Sequence[T], worker: Worker) -> list[T]:
    """This worker's share: every ``world_size``-th item from position ``rank`` (balanced when
    items are sorted by class, as evaluation lists usually are)."""
    return list(items[worker.rank :: worker.world_size])


def worker_device(name: str, worker: Worker) -> str:
    """``auto`` maps each local rank to its own GPU (round robin), or to the CPU without GPUs."""
    if name == "auto" and torch.cuda.is_available():
        return f"cuda:{worker.local_rank % torch.cuda.device_count()}"
    if name == "auto":
        return "cpu"
    return name


@contextmanager
def file_lock(path: str | Path):
    """Exclusive lock on ``<path>.lock`` so one process builds a shared artefact (a trained model,
    a generated data set, a prototype cache) while the other ranks wait and then reuse it."""
    lock_path = Path(f"{path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
