"""Parser-friendly stand-ins for the Protocol-typed parameters of the Trainer.

jsonargparse accepts a ``class_path`` for a Protocol only when every method of the class has exactly
the Protocol's annotations, which real implementations rarely have (``trainer: fulmen.Trainer`` where
the Protocol says ``Any``). So for the parser, each Protocol in a parameter's type is replaced by an ABC
whose ``issubclass`` is structural (the class lists the Protocol as a base, or has all its members by
name), and whose listed subclasses are the implementations fulmen ships, so that short names such as
``--trainer.logger=CSVLogger`` or ``--trainer.callbacks+=EarlyStopping`` resolve as in Lightning.

Nothing here imports jsonargparse: the types are plain ``typing`` objects.
"""

from __future__ import annotations

import abc
import importlib
import inspect
import sys
import types
import typing
from collections.abc import Callable
from typing import Any

from typing_extensions import get_protocol_members, is_protocol

__all__ = ["parser_friendly_hints"]

#: Packages whose public classes are offered by short name for a Protocol of the same name.
_SHIPPED_IMPLEMENTATIONS: dict[str, tuple[str, ...]] = {
    "Accelerator": ("fulmen_accelerators",),
    "Strategy": ("fulmen_accelerators",),
    "Logger": ("fulmen_loggers",),
    "Callback": ("fulmen_callbacks",),
    "Profiler": ("fulmen_loops",),
}

_STAND_INS: dict[type, type] = {}


def _implements(candidate: type, protocol: type, members: frozenset[str]) -> bool:
    return protocol in candidate.__mro__ or all(hasattr(candidate, name) for name in members)


def _shipped(protocol: type, members: frozenset[str]) -> list[type]:
    found: list[type] = []
    for package in _SHIPPED_IMPLEMENTATIONS.get(protocol.__name__, ()):
        try:
            module = importlib.import_module(package)
        except ImportError:  # a package left out of a pieces-only install offers nothing
            continue
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name, None)
            if inspect.isclass(value) and not is_protocol(value) and _implements(value, protocol, members):
                found.append(value)
    return found


def _stand_in(protocol: type) -> type:
    """An ABC named like ``protocol`` that parsers can treat as a base class."""
    if protocol in _STAND_INS:
        return _STAND_INS[protocol]
    members = frozenset(get_protocol_members(protocol))

    def subclasshook(cls: type, other: type) -> bool:
        return _implements(other, protocol, members) if inspect.isclass(other) else False

    def subclasses(cls: type) -> list[type]:
        # Consulted by jsonargparse to resolve short class names: the Protocol's explicit subclasses
        # (user classes listing it as a base) and the shipped implementations, which do not.
        direct: list[type] = protocol.__subclasses__()
        explicit = [c for c in direct if not is_protocol(c)]
        return list(dict.fromkeys(explicit + _shipped(protocol, members)))

    stand_in = abc.ABCMeta(
        protocol.__name__,
        (abc.ABC,),
        {
            "__doc__": f"Any class implementing {protocol.__module__}.{protocol.__qualname__}.",
            "__module__": __name__,
            "__subclasshook__": classmethod(subclasshook),
            "__subclasses__": classmethod(subclasses),
        },
    )
    _STAND_INS[protocol] = stand_in
    return stand_in


def _replace_protocols(hint: Any) -> Any:
    if inspect.isclass(hint) and is_protocol(hint):
        return _stand_in(hint)
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin is None or not arguments:
        return hint
    replaced = tuple(_replace_protocols(a) for a in arguments)
    if replaced == arguments:
        return hint
    if origin is typing.Union or origin is types.UnionType:
        return typing.Union[replaced]
    return origin[replaced if len(replaced) > 1 else replaced[0]]


def _evaluate(annotation: Any, namespace: dict[str, Any]) -> Any:
    if not isinstance(annotation, str):
        return annotation
    # What typing.get_type_hints does, one parameter at a time, so that one annotation naming a
    # TYPE_CHECKING-only import leaves the others usable.
    return eval(annotation, namespace)  # noqa: S307  # annotations of the Trainer's own source


def parser_friendly_hints(function: Callable[..., object]) -> dict[str, Any]:
    """The parameters of ``function`` whose types name a Protocol, with parser-friendly types."""
    namespace = dict(vars(sys.modules[function.__module__]))
    hints: dict[str, Any] = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        try:
            hint = _evaluate(parameter.annotation, namespace)
        except Exception:  # unresolvable here: jsonargparse resolves it its own way
            continue
        replaced = _replace_protocols(hint)
        if replaced is not hint:
            hints[name] = replaced
    return hints
