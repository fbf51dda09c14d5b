"""Hook order: fulmen calls module and callback hooks in exactly Lightning's order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

import hook_recorder as rec

FIXTURES = Path(__file__).parent / "fixtures" / "lightning"
_COMPARED = ("who", "hook", "batch_idx", "dataloader_idx", "stage", "gs", "ep", "st")


def _normalise(calls: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(str(call.get(key)) for key in _COMPARED) for call in calls if call["who"] != "marker"]


def _lightning(name: str) -> list[tuple[Any, ...]]:
    return _normalise(json.loads((FIXTURES / f"hooks_{name}.json").read_text()))


def _fulmen(run: Callable[[], object]) -> list[tuple[Any, ...]]:
    rec.CALLS.clear()
    torch.manual_seed(0)
    run()
    return _normalise(rec.CALLS)


def _assert_same(ours: list[tuple[Any, ...]], theirs: list[tuple[Any, ...]]) -> None:
    for index, (mine, lightning) in enumerate(zip(ours, theirs)):
        assert mine == lightning, f"call {index}: fulmen {mine} != Lightning {lightning}"
    assert len(ours) == len(theirs), f"fulmen made {len(ours)} calls, Lightning {len(theirs)}"


def test_fit_hook_order_matches_lightning() -> None:
    """fit with a sanity check, two epochs, epoch-end validation and a StepLR calls every hook in Lightning's order."""
    trainer = rec.quiet_trainer(max_epochs=2, num_sanity_val_steps=2, callbacks=[rec.RecordingCallback()])
    _assert_same(_fulmen(lambda: trainer.fit(rec.RecordingModule())), _lightning("fit"))


def test_validate_hook_order_matches_lightning() -> None:
    """validate calls the validation hooks in Lightning's order, with no optimizer or fit hooks."""
    trainer = rec.quiet_trainer(callbacks=[rec.RecordingCallback()])
    _assert_same(_fulmen(lambda: trainer.validate(rec.RecordingModule())), _lightning("validate"))


def test_test_hook_order_matches_lightning() -> None:
    """test calls the test hooks in Lightning's order."""
    trainer = rec.quiet_trainer(callbacks=[rec.RecordingCallback()])
    _assert_same(_fulmen(lambda: trainer.test(rec.RecordingModule())), _lightning("test"))


def test_predict_hook_order_matches_lightning() -> None:
    """predict calls the predict hooks in Lightning's order."""
    trainer = rec.quiet_trainer(callbacks=[rec.RecordingCallback()])
    _assert_same(_fulmen(lambda: trainer.predict(rec.RecordingModule())), _lightning("predict"))


@pytest.mark.parametrize(("name", "n_train"), [("fit_clip_accum", 8), ("fit_accum_odd", 6)])
def test_accumulation_and_clipping_hook_order_matches_lightning(name: str, n_train: int) -> None:
    """With accumulate_grad_batches=2 and clipping, zero_grad, backward, clipping and steps fire where Lightning fires them."""
    trainer = rec.quiet_trainer(
        max_epochs=1,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        gradient_clip_val=0.5,
        accumulate_grad_batches=2,
        callbacks=[rec.RecordingCallback()],
    )
    module = rec.RecordingModule(n_train=n_train, scheduler=False)
    _assert_same(_fulmen(lambda: trainer.fit(module)), _lightning(name))


def test_limit_train_batches_zero_hook_order_matches_lightning() -> None:
    """limit_train_batches=0 runs the sanity check but never asks for training data, as in Lightning."""
    trainer = rec.quiet_trainer(
        max_epochs=2, num_sanity_val_steps=1, limit_train_batches=0, callbacks=[rec.RecordingCallback()]
    )
    _assert_same(_fulmen(lambda: trainer.fit(rec.RecordingModule(scheduler=False))), _lightning("limit_train_0"))


def test_exception_calls_on_exception_only() -> None:
    """An error in training_step reaches callbacks' on_exception and propagates, with no end hooks, as in Lightning."""

    class Boom(rec.RecordingModule):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            if batch_idx == 1:
                raise ValueError("boom")
            return super().training_step(batch, batch_idx)

    trainer = rec.quiet_trainer(max_epochs=1, num_sanity_val_steps=0, callbacks=[rec.RecordingCallback()])

    def run() -> None:
        with pytest.raises(ValueError, match="boom"):
            trainer.fit(Boom(scheduler=False))

    _assert_same(_fulmen(run), _lightning("exception"))


def test_save_and_resume_hook_order_matches_lightning(tmp_path: Path) -> None:
    """save_checkpoint and a fit resumed from it call the checkpoint hooks (module first on load) and
    restore progress after on_fit_start, as in Lightning."""
    path = tmp_path / "ep1.ckpt"

    def save() -> None:
        trainer = rec.quiet_trainer(max_epochs=1, num_sanity_val_steps=0, callbacks=[rec.RecordingCallback()])
        trainer.fit(rec.RecordingModule())
        rec.record("marker", "---save_checkpoint---")
        trainer.save_checkpoint(path)

    _assert_same(_fulmen(save), _lightning("save_ckpt"))

    def resume() -> None:
        trainer = rec.quiet_trainer(max_epochs=3, num_sanity_val_steps=2, callbacks=[rec.RecordingCallback()])
        trainer.fit(rec.RecordingModule(), ckpt_path=path)

    _assert_same(_fulmen(resume), _lightning("fit_resume"))
