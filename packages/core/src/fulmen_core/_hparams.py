"""Hyperparameters: ``save_hyperparameters`` and the attribute-access dict it fills."""

from __future__ import annotations

import copy
import inspect
import types
from collections.abc import Iterable, Mapping
from typing import Any


class AttributeDict(dict[str, Any]):
    """A ``dict`` whose keys also read and write as attributes (``hparams.lr``)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as err:
            raise AttributeError(
                f"hyperparameter {key!r} was not saved; saved ones are {sorted(self)}"
            ) from err

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError as err:
            raise AttributeError(key) from err


def _init_arguments(frame: types.FrameType, owner: object) -> dict[str, Any]:
    """The arguments of every ``__init__`` of ``owner`` on the stack, outermost class last wins.

    A subclass's ``__init__`` that calls ``super().__init__(...)`` which then calls
    ``save_hyperparameters()`` should record the subclass's arguments too, as Lightning does.
    """
    collected: list[dict[str, Any]] = []
    current: types.FrameType | None = frame
    while current is not None:
        code = current.f_code
        local_vars = current.f_locals
        if code.co_name != "__init__" or local_vars.get("self") is not owner:
            break
        count = code.co_argcount + code.co_kwonlyargcount
        names = list(code.co_varnames[:count])
        args: dict[str, Any] = {n: local_vars[n] for n in names[1:] if n in local_vars}
        position = count
        if code.co_flags & inspect.CO_VARARGS:
            position += 1  # *args carry no names, so Lightning drops them and so do we
        if code.co_flags & inspect.CO_VARKEYWORDS:
            extra = local_vars.get(code.co_varnames[position], {})
            if isinstance(extra, Mapping):
                args.update(extra)
        collected.append(args)
        current = current.f_back
    merged: dict[str, Any] = {}
    for args in reversed(collected):  # outermost (the concrete class) first, then its bases
        for key, value in args.items():
            merged.setdefault(key, value)
    return merged


class HyperparametersMixin:
    """Adds ``save_hyperparameters``, ``hparams`` and ``hparams_initial``."""

    _hparams: AttributeDict
    _hparams_initial: AttributeDict
    _log_hyperparams: bool

    def save_hyperparameters(
        self,
        *args: Any,
        ignore: str | Iterable[str] | None = None,
        frame: types.FrameType | None = None,
        logger: bool = True,
    ) -> None:
        """Record the ``__init__`` arguments (all, or those named in ``args``) in ``self.hparams``.

        ``args`` may also be a single mapping, saved as it is. Names in ``ignore`` are left out;
        use it for arguments that are not plain data (modules, datasets), which a checkpoint cannot
        store safely.
        """
        object.__setattr__(self, "_log_hyperparams", logger)
        if len(args) == 1 and isinstance(args[0], Mapping):
            chosen: dict[str, Any] = dict(args[0])
        else:
            if frame is None:
                current = inspect.currentframe()
                frame = current.f_back if current is not None else None
            init_args = _init_arguments(frame, self) if frame is not None else {}
            if args:
                unknown = [a for a in args if not isinstance(a, str) or a not in init_args]
                if unknown:
                    raise ValueError(
                        f"save_hyperparameters got {unknown!r}, which are not arguments of "
                        f"{type(self).__qualname__}.__init__; pass argument names as strings "
                        f"(known: {sorted(init_args)}) or a single dict"
                    )
                chosen = {name: init_args[name] for name in args}
            else:
                chosen = init_args
        ignored = {ignore} if isinstance(ignore, str) else set(ignore or ())
        chosen = {k: v for k, v in chosen.items() if k not in ignored}
        hparams = self._hparams_or_new()
        hparams.update(chosen)
        object.__setattr__(self, "_hparams_initial", copy.deepcopy(hparams))

    def _hparams_or_new(self) -> AttributeDict:
        existing = self.__dict__.get("_hparams")
        if existing is None:
            existing = AttributeDict()
            object.__setattr__(self, "_hparams", existing)
        assert isinstance(existing, AttributeDict)
        return existing

    @property
    def hparams(self) -> AttributeDict:
        """The saved hyperparameters, readable as attributes."""
        return self._hparams_or_new()

    @property
    def hparams_initial(self) -> AttributeDict:
        """A copy of the hyperparameters as they were when saved, unaffected by later edits."""
        initial = self.__dict__.get("_hparams_initial")
        return copy.deepcopy(initial) if initial is not None else AttributeDict()
