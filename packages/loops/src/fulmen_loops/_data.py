"""Dataloaders: where each stage's loaders come from, and how many batches each stage takes."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sized
from typing import Any

from fulmen_core import MisconfigurationException


def as_loader_list(loaders: Any) -> list[Iterable[Any]]:
    """One loader, a list/tuple of loaders, or a dict of loaders (in its order), as a list."""
    if loaders is None:
        return []
    if isinstance(loaders, Mapping):
        found = list(loaders.values())
    elif isinstance(loaders, (list, tuple)):
        found = list(loaders)
    else:
        found = [loaders]
    for loader in found:
        if not isinstance(loader, Iterable):
            raise MisconfigurationException(
                f"a dataloader must be iterable (e.g. torch.utils.data.DataLoader), got "
                f"{type(loader).__qualname__}"
            )
    return found


def length_of(loader: Iterable[Any]) -> int | float:
    """``len(loader)``, or ``inf`` for loaders without a length (iterable datasets)."""
    if isinstance(loader, Sized):
        try:
            return len(loader)
        except (TypeError, NotImplementedError):
            return math.inf
    return math.inf


def limit_batches(
    available: int | float, limit: int | float, flag: str, stage: str
) -> int | float:
    """How many batches to take from a loader of ``available`` batches under ``limit``."""
    if isinstance(limit, int) and not isinstance(limit, bool):
        return min(available, limit)
    if limit == 1.0:
        return available
    if available == math.inf:
        if limit == 0.0:
            return 0
        raise MisconfigurationException(
            f"{flag}={limit} is a fraction, but the {stage} dataloader has no length (an "
            f"iterable dataset); give {flag} an int number of batches instead"
        )
    taken = int(available * limit)
    if limit > 0.0 and taken == 0 and available > 0:
        minimum = 1.0 / available
        raise MisconfigurationException(
            f"{flag}={limit} of the {stage} dataloader's {available} batches is less than one "
            f"batch; increase it to at least {minimum:.4g} or give an int"
        )
    return taken


def without_shuffle(loader: Iterable[Any]) -> Iterable[Any]:
    """``loader`` with its random sampler replaced by a sequential one (a warning says so)."""
    import warnings

    from torch.utils.data import DataLoader, RandomSampler

    if not isinstance(loader, DataLoader) or not isinstance(loader.sampler, RandomSampler):
        return loader
    warnings.warn(
        "overfit_batches is set and the training dataloader shuffles; shuffling is turned off so "
        "that every epoch sees the same batches",
        UserWarning,
        stacklevel=3,
    )
    return rebuilt(loader, shuffle=False)


def distributed(loader: Iterable[Any], num_replicas: int, rank: int, seed: int = 0) -> Iterable[Any]:
    """``loader`` reading only this process's share of the data, keeping the user's ``shuffle``.

    Lightning always shuffles training data under DDP; fulmen keeps whatever the loader did (a
    sequential loader stays sequential), which is also what makes runs comparable across world sizes.
    """
    from torch.utils.data import DataLoader, RandomSampler
    from torch.utils.data.distributed import DistributedSampler

    if not isinstance(loader, DataLoader) or isinstance(loader.sampler, DistributedSampler):
        return loader
    if loader.batch_sampler is not None and type(loader.batch_sampler).__name__ != "BatchSampler":
        return loader  # a custom batch sampler decides itself what each process reads
    try:
        len(loader.dataset)  # type: ignore[arg-type]  # iterable datasets have no length
    except TypeError:
        return loader
    sampler: DistributedSampler[Any] = DistributedSampler(
        loader.dataset,
        num_replicas=num_replicas,
        rank=rank,
        shuffle=isinstance(loader.sampler, RandomSampler),
        seed=seed,
        drop_last=loader.drop_last,
    )
    return rebuilt(loader, sampler=sampler)


def rebuilt(loader: Any, **changes: Any) -> Iterable[Any]:
    """A DataLoader like ``loader`` (dataset, batch size, workers, collate, ...) but for ``changes``
    (its ``shuffle`` or ``sampler``)."""
    from torch.utils.data import DataLoader

    settings: dict[str, Any] = dict(
        batch_size=loader.batch_size,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        generator=loader.generator,
        persistent_workers=loader.persistent_workers,
    )
    settings.update(changes)
    rebuilt_loader: DataLoader[Any] = DataLoader(loader.dataset, **settings)
    return rebuilt_loader
