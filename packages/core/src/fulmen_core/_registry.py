"""Registries: names mapped to factories, extended by third-party packages through entry points."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Generic, TypeVar, cast

_T = TypeVar("_T")


class Registry(Generic[_T]):
    """Maps names to factories of ``_T``.

    Entries come from :meth:`register` and, on the first lookup of a name not registered in code,
    from the entry-point ``group`` (each entry point loads to a factory). Entry points are read
    lazily so that importing a package never scans installed distributions.
    """

    def __init__(self, kind: str, group: str | None = None) -> None:
        self._kind = kind
        self._group = group
        self._factories: dict[str, Callable[[], _T]] = {}
        self._entry_points_loaded = group is None

    def register(self, name: str, factory: Callable[[], _T], *, override: bool = False) -> None:
        """Add ``name``; an existing name is an error unless ``override=True``."""
        if name in self._factories and not override:
            raise ValueError(
                f"{self._kind} {name!r} is already registered; pass override=True to replace it"
            )
        self._factories[name] = factory

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        assert self._group is not None
        for entry_point in metadata.entry_points(group=self._group):
            if entry_point.name not in self._factories:
                # The entry point's own type is unknown until loaded; create() returns what it builds.
                self._factories[entry_point.name] = cast(
                    Callable[[], _T], _LazyEntryPoint(entry_point)
                )

    def names(self) -> list[str]:
        """Every known name, including those from entry points, sorted."""
        self._load_entry_points()
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        if name in self._factories:
            return True
        self._load_entry_points()
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def create(self, name: str) -> _T:
        """A new instance for ``name``; an unknown name lists the known ones."""
        if name not in self:
            known = ", ".join(repr(n) for n in self.names()) or "none"
            raise ValueError(f"unknown {self._kind} {name!r}; known {self._kind}s: {known}")
        return self._factories[name]()


class _LazyEntryPoint:
    """A factory that imports its entry point only when first called."""

    def __init__(self, entry_point: metadata.EntryPoint) -> None:
        self._entry_point = entry_point

    def __call__(self) -> object:
        factory = self._entry_point.load()
        if not callable(factory):
            raise TypeError(
                f"entry point {self._entry_point.name!r} = {self._entry_point.value!r} does not "
                "load to a callable factory"
            )
        return factory()
