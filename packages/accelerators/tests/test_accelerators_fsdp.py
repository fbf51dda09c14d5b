"""FSDPStrategy's pieces that need no process group: optimizer states between name- and index-keyed
forms, and replacing a checkpoint directory so that the old one stays until the new one is in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from fulmen_accelerators._fsdp import _indexed, _named, _parameter_names, _replace_directory
from fulmen_core import CheckpointError, MisconfigurationException


def _model_and_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    groups: list[dict[str, Any]] = [{"params": model[0].parameters()}, {"params": model[1].parameters(), "lr": 0.5}]
    optimizer = torch.optim.Adam(groups, lr=0.1)
    model(torch.randn(4, 2)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_indexed_and_named_forms_round_trip_to_torchs_own_state() -> None:
    """Name-keyed state turned into index-keyed equals optimizer.state_dict(), and back again."""
    model, optimizer = _model_and_optimizer()
    names = _parameter_names(model, optimizer)
    assert names == [["0.weight", "0.bias"], ["1.weight", "1.bias"]]
    plain = optimizer.state_dict()
    named = _named(plain, names)
    assert sorted(named["state"]) == ["0.bias", "0.weight", "1.bias", "1.weight"]
    assert named["param_groups"][1]["params"] == ["1.weight", "1.bias"] and named["param_groups"][1]["lr"] == 0.5
    back = _indexed(named, names)
    assert back["param_groups"] == plain["param_groups"]
    for index, state in plain["state"].items():
        assert torch.equal(back["state"][index]["exp_avg"], state["exp_avg"])


def test_an_optimizer_state_of_other_groups_is_a_clear_error() -> None:
    """A state whose groups do not fit the optimizer's is rejected with CheckpointError."""
    model, optimizer = _model_and_optimizer()
    names = _parameter_names(model, optimizer)
    with pytest.raises(CheckpointError, match="different parameter groups"):
        _named({"state": {}, "param_groups": [{"params": [0, 1, 2, 3]}]}, names)


def test_an_optimizer_over_foreign_parameters_is_a_clear_error() -> None:
    """Parameters the module does not own cannot be named: the error says to use self.parameters()."""
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(MisconfigurationException, match="self.parameters()"):
        _parameter_names(model, optimizer)


def test_replacing_a_checkpoint_directory_leaves_only_the_new_one(tmp_path: Path) -> None:
    """The staged directory takes the final name; the old checkpoint is gone and nothing else is left."""
    final, staging = tmp_path / "last.ckpt", tmp_path / "last.ckpt.abc.tmp"
    final.mkdir()
    (final / "meta.pt").write_text("old")
    staging.mkdir()
    (staging / "meta.pt").write_text("new")
    _replace_directory(str(staging), str(final))
    assert (final / "meta.pt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_auto_wrap_policy_accepts_a_class_a_set_or_a_predicate() -> None:
    """Each form of auto_wrap_policy picks the Linear layers of a network and nothing else."""
    from fulmen_accelerators import FSDPStrategy

    network = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    for policy in (torch.nn.Linear, {torch.nn.Linear}, lambda m: isinstance(m, torch.nn.Linear)):
        strategy = FSDPStrategy(auto_wrap_policy=policy)
        assert [strategy._wraps(m) for m in network] == [True, False, True]
    assert not FSDPStrategy()._wraps(network[0])
