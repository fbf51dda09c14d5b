"""parse_optimizers accepts every configure_optimizers shape Lightning accepts and rejects the rest clearly."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from fulmen_core import MisconfigurationException
from fulmen_loops import parse_optimizers


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_single_optimizer_and_lists() -> None:
    """An optimizer, a list of one and a tuple of one all give one optimizer and no scheduler."""
    for shape in (lambda o: o, lambda o: [o], lambda o: (o,)):
        opt = _optimizer()
        optimizers, schedulers = parse_optimizers(shape(opt))
        assert optimizers == [opt] and schedulers == []


def test_two_lists_and_dicts_build_scheduler_configs() -> None:
    """([opt], [sched]) and {'optimizer', 'lr_scheduler': {...}} yield configs with Lightning's defaults and overrides."""
    opt = _optimizer()
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    _, configs = parse_optimizers(([opt], [sched]))
    assert (configs[0].scheduler, configs[0].interval, configs[0].frequency) == (sched, "epoch", 1)
    _, configs = parse_optimizers(
        {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 2, "name": "s"}}
    )
    assert (configs[0].interval, configs[0].frequency, configs[0].name) == ("step", 2, "s")


def test_plateau_needs_a_monitor() -> None:
    """ReduceLROnPlateau without a monitor is an error; with a top-level monitor it is configured."""
    opt = _optimizer()
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
    with pytest.raises(MisconfigurationException, match="monitor"):
        parse_optimizers({"optimizer": opt, "lr_scheduler": plateau})
    _, configs = parse_optimizers({"optimizer": opt, "lr_scheduler": plateau, "monitor": "val_loss"})
    assert configs[0].reduce_on_plateau and configs[0].monitor == "val_loss"


@pytest.mark.parametrize(
    "returned",
    [5, "adam", (_optimizer(), torch.optim.lr_scheduler.StepLR(_optimizer(), 1)), {"lr_scheduler": 1}],
)
def test_unsupported_shapes_name_what_was_found(returned: Any) -> None:
    """Each unsupported shape raises an error naming the received type and listing the accepted ones."""
    with pytest.raises(MisconfigurationException, match="configure_optimizers"):
        parse_optimizers(returned)


def test_bad_interval_is_rejected() -> None:
    """An interval other than 'step' or 'epoch' names the value."""
    opt = _optimizer()
    with pytest.raises(MisconfigurationException, match="'batch'"):
        parse_optimizers({"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(opt, 1), "interval": "batch"}})


def test_none_warns_and_runs_without_optimizer() -> None:
    """None is accepted with a warning, as in Lightning."""
    with pytest.warns(UserWarning, match="returned None"):
        assert parse_optimizers(None) == ([], [])
