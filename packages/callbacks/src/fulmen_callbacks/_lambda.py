"""``LambdaCallback``: a callback made of functions given by keyword (Lightning's callback)."""

from __future__ import annotations

import difflib
from typing import Any, Callable, Optional

from fulmen_core import Callback

#: The hooks a LambdaCallback accepts, in Lightning's argument order.
LAMBDA_HOOKS: tuple[str, ...] = (
    "setup",
    "teardown",
    "on_fit_start",
    "on_fit_end",
    "on_sanity_check_start",
    "on_sanity_check_end",
    "on_train_batch_start",
    "on_train_batch_end",
    "on_train_epoch_start",
    "on_train_epoch_end",
    "on_validation_epoch_start",
    "on_validation_epoch_end",
    "on_test_epoch_start",
    "on_test_epoch_end",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_train_start",
    "on_train_end",
    "on_validation_start",
    "on_validation_end",
    "on_test_start",
    "on_test_end",
    "on_exception",
    "on_save_checkpoint",
    "on_load_checkpoint",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_predict_start",
    "on_predict_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
    "on_predict_epoch_start",
    "on_predict_epoch_end",
)

_Hook = Optional[Callable[..., Any]]


class LambdaCallback(Callback):
    r"""A callback whose hooks are the functions passed by keyword.

    Each function is called with the hook's arguments (``trainer``, ``pl_module``, then the hook's
    own), e.g. ``LambdaCallback(on_train_epoch_end=lambda trainer, pl_module: print(trainer.current_epoch))``.
    Hooks not given do nothing. ``callback.<hook>`` is the function given, as in Lightning.

    Raises:
        TypeError: For a keyword that is not a hook name (the message suggests the closest ones),
            or a value that is not callable.
    """

    def __init__(
        self,
        setup: _Hook = None,
        teardown: _Hook = None,
        on_fit_start: _Hook = None,
        on_fit_end: _Hook = None,
        on_sanity_check_start: _Hook = None,
        on_sanity_check_end: _Hook = None,
        on_train_batch_start: _Hook = None,
        on_train_batch_end: _Hook = None,
        on_train_epoch_start: _Hook = None,
        on_train_epoch_end: _Hook = None,
        on_validation_epoch_start: _Hook = None,
        on_validation_epoch_end: _Hook = None,
        on_test_epoch_start: _Hook = None,
        on_test_epoch_end: _Hook = None,
        on_validation_batch_start: _Hook = None,
        on_validation_batch_end: _Hook = None,
        on_test_batch_start: _Hook = None,
        on_test_batch_end: _Hook = None,
        on_train_start: _Hook = None,
        on_train_end: _Hook = None,
        on_validation_start: _Hook = None,
        on_validation_end: _Hook = None,
        on_test_start: _Hook = None,
        on_test_end: _Hook = None,
        on_exception: _Hook = None,
        on_save_checkpoint: _Hook = None,
        on_load_checkpoint: _Hook = None,
        on_before_backward: _Hook = None,
        on_after_backward: _Hook = None,
        on_before_optimizer_step: _Hook = None,
        on_before_zero_grad: _Hook = None,
        on_predict_start: _Hook = None,
        on_predict_end: _Hook = None,
        on_predict_batch_start: _Hook = None,
        on_predict_batch_end: _Hook = None,
        on_predict_epoch_start: _Hook = None,
        on_predict_epoch_end: _Hook = None,
        **unknown: Callable[..., Any],
    ) -> None:
        arguments = dict(locals())
        if unknown:
            name = next(iter(unknown))
            close = difflib.get_close_matches(name, LAMBDA_HOOKS, n=3)
            hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
            raise TypeError(
                f"LambdaCallback got {name!r}, which is not a callback hook; {hint}"
                f"the hooks are: {', '.join(LAMBDA_HOOKS)}"
            )
        given = {name: arguments[name] for name in LAMBDA_HOOKS if arguments[name] is not None}
        for name, function in given.items():
            if not callable(function):
                raise TypeError(
                    f"LambdaCallback({name}=...) got {type(function).__qualname__}, which is not callable; "
                    "pass a function taking the hook's arguments (trainer, pl_module, ...)"
                )
            # An instance attribute shadows the class's do-nothing method: the loops call it directly.
            setattr(self, name, function)


def _not_given(self: LambdaCallback, *args: Any, **kwargs: Any) -> None:
    """A hook no function was given for: does nothing."""
    return None


# The loops call only the hooks a callback's class overrides; every hook is overridden here (by a
# no-op the instance's functions shadow) so that whichever hooks an instance was given are called.
for _name in LAMBDA_HOOKS:
    setattr(LambdaCallback, _name, _not_given)
del _name
