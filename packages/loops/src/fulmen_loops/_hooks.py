"""Whether a class replaces a hook: the loops call only hooks somebody wrote."""

from __future__ import annotations


def overrides(obj: object, base: type, name: str) -> bool:
    """Whether ``obj``'s class replaces ``base``'s method ``name`` (a no-op default, typically)."""
    return getattr(type(obj), name, None) is not getattr(base, name)
