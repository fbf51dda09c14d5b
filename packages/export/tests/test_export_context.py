"""Tests of the export mode: eval, no autograd, and every submodule's mode restored."""

from __future__ import annotations

import pytest
import torch

from fulmen_export._context import export_mode


def _model() -> torch.nn.Sequential:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2), torch.nn.Dropout())
    model.train()
    model[1].eval()  # a frozen batch norm inside a training model must stay frozen afterwards
    return model


def test_export_mode_is_eval_without_grad_and_restores_each_submodule() -> None:
    """Inside, every submodule is in eval mode with autograd off; after, each has its mode back."""
    model = _model()
    before = [m.training for m in model.modules()]
    with export_mode(model):
        assert not any(m.training for m in model.modules())
        assert not torch.is_grad_enabled()
    assert [m.training for m in model.modules()] == before == [True, True, False, True]
    assert torch.is_grad_enabled()


def test_export_mode_restores_modes_when_the_export_fails() -> None:
    """An exception inside the block still restores the modes and gradient tracking."""
    model = _model()
    before = [m.training for m in model.modules()]
    with pytest.raises(RuntimeError, match="boom"), export_mode(model):
        raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == before
    assert torch.is_grad_enabled()
