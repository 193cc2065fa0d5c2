"""One helper for multi-process runs: read torchrun's environment and shard work by rank.

Ranks share no state: each explains its own slice of the evaluation list and writes
its own per-image files, so no process group is needed and a crashed rank costs only
its unfinished images. They only count each other at the end (:func:`finish_rank`), so that
a rank whose items partly failed does not stop the others. Without torchrun this is a single
process (rank 0 of 1).
"""
from __future__ import annotations

import fcntl
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
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


def finish_rank(status: int, worker: Worker | None = None) -> int:
    """The exit status of a rank whose items ended with ``status`` (1: some failed). torchrun stops
    all ranks of a machine as soon as one exits with a non-zero status, so under torchrun a rank
    with failures exits with 0 while other ranks are still working, and the last rank to end exits
    with 1 when any rank had failures. The ranks count through the store of torchrun's agent
    (MASTER_ADDR:MASTER_PORT); a single process, or one that cannot reach the store, keeps
    ``status``."""
    worker = worker or current_worker()
    if worker.world_size == 1 or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return status
    from torch.distributed import TCPStore

    prefix = f"smdl_attribution/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    try:
        store = TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                         timeout=timedelta(seconds=60))
        store.add(f"{prefix}/ranks_failed", 1 if status else 0)
        last = store.add(f"{prefix}/ranks_ended", 1) == worker.world_size
        failed = store.add(f"{prefix}/ranks_failed", 0)  # every rank that ended has counted itself
    except (RuntimeError, OSError, ValueError) as err:  # the store's errors are RuntimeErrors
        if status:
            print(f"warning: rank {worker.rank} cannot reach torchrun's store ({err}); its status {status} "
                  "makes torchrun stop the other ranks of this machine", file=sys.stderr)
        return status
    if not last:
        if status:
            print(f"rank {worker.rank}: exiting with status 0 while other ranks still work (torchrun would stop "
                  "them); the last rank to end exits with status 1", file=sys.stderr)
        return 0
    if failed and not status:
        print(f"rank {worker.rank}: the last rank to end; items of {failed} rank(s) failed (see failures.jsonl): "
              "exiting with status 1", file=sys.stderr)
    return max(status, 1 if failed else 0)
