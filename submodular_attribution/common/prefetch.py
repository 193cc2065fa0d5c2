"""Preparing list items (reading images, dividing them) in background workers, so that the
device never waits for SLICO or a slow disk. Items come back in list order; an item that
cannot be prepared comes back as a :class:`~submodular_attribution.common.progress.Failed`."""
from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from torch.utils.data import DataLoader, Dataset

from .lists import ListItem
from .progress import Failed, failure_reason


class _Prepared(Dataset):
    def __init__(self, items: Sequence[ListItem], prepare: Callable[[ListItem], Any]) -> None:
        self.items, self.prepare = items, prepare

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.prepare(self.items[index])
        except Exception as err:  # noqa: BLE001 - carried back to the main process as data
            return Failed(failure_reason(err))


def prefetched(items: Sequence[ListItem], prepare: Callable[[ListItem], Any],
               workers: int = 0) -> Iterator[tuple[ListItem, Any]]:
    """``(item, prepare(item) or Failed)`` in order; ``workers`` > 0 prepares ahead in that many
    processes (``prepare`` and its results must pickle), 0 prepares each item when it is due."""
    dataset = _Prepared(items, prepare)
    if workers <= 0:
        yield from ((item, dataset[i]) for i, item in enumerate(items))
        return
    loader = DataLoader(dataset, batch_size=None, num_workers=workers, collate_fn=lambda x: x,
                        prefetch_factor=4, persistent_workers=False)
    yield from zip(items, loader)
