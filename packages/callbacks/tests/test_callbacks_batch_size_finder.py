"""BatchSizeFinder as a callback on a Runner: power and binsearch below a simulated OOM, errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from fulmen_core import LightningModule, MisconfigurationException
from fulmen_loops import LoopSettings, Runner
from torch.utils.data import DataLoader, TensorDataset

from fulmen_callbacks import BatchSizeFinder
from fulmen_callbacks._batch_size_finder import is_oom_error


class Sized(LightningModule):
    """Batches larger than ``limit`` raise ``torch.OutOfMemoryError``; the loader reads
    ``self.hparams.batch_size``."""

    def __init__(self, batch_size: int = 2, limit: int = 1000) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(2, 1)
        self.batch_sizes: list[int] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x,) = batch
        self.batch_sizes.append(x.shape[0])
        if x.shape[0] > self.hparams.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        out: torch.Tensor = self.layer(x)
        return out.pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(torch.randn(512, 2)), batch_size=self.hparams.batch_size)


@pytest.mark.parametrize(("mode", "expected"), [("power", 32), ("binsearch", 50)])
def test_search_below_the_oom_threshold(mode: str, expected: int) -> None:
    """Power mode keeps the last doubling that fits; binsearch refines up to the threshold; the real
    fit then trains with the found size, from the original weights."""
    model = Sized(limit=50)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    finder = BatchSizeFinder(mode=mode, margin=0.0)
    seen: list[dict[str, torch.Tensor]] = []

    runner = Runner(callbacks=[finder], settings=LoopSettings(max_steps=1))
    model.on_train_start = lambda: seen.append({k: v.clone() for k, v in model.state_dict().items()})  # type: ignore[method-assign]
    runner.fit(model)
    assert finder.optimal_batch_size == expected and model.hparams.batch_size == expected
    assert model.batch_sizes[-1] == expected and runner.global_step == 1
    for key, value in seen[-1].items():
        assert torch.equal(value, before[key])


def test_stops_when_one_batch_holds_the_dataset() -> None:
    """Doubling stops once a single batch holds the whole dataset."""
    finder = BatchSizeFinder(init_val=128)
    Runner(callbacks=[finder], settings=LoopSettings(max_steps=1)).fit(Sized())
    assert finder.optimal_batch_size == 512


def test_missing_attribute_and_failing_search() -> None:
    """A missing attribute names batch_arg_name; OOM at every size names the sizes and the fix."""
    with pytest.raises(MisconfigurationException, match="batch_arg_name='bs'"):
        Runner(callbacks=[BatchSizeFinder(batch_arg_name="bs")], settings=LoopSettings(max_steps=1)).fit(Sized())
    model = Sized(limit=0)
    with pytest.raises(MisconfigurationException, match=r"every size it tried \(2, 1; init_val=2\)"):
        Runner(callbacks=[BatchSizeFinder()], settings=LoopSettings(max_steps=1)).fit(model)
    assert model.hparams.batch_size == 2


def test_oom_recognition_and_modes() -> None:
    """OutOfMemoryError and RuntimeErrors saying "out of memory" are OOM; an unknown mode lists modes."""
    assert is_oom_error(torch.OutOfMemoryError("x"))
    assert is_oom_error(RuntimeError("CUDA out of memory. Tried to allocate"))
    assert not is_oom_error(RuntimeError("shape mismatch"))
    with pytest.raises(MisconfigurationException, match=r"\['power', 'binsearch'\]"):
        BatchSizeFinder(mode="triple")


@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_count_arguments_must_be_ints_of_at_least_one(value: Any) -> None:
    """A count argument that is not an int >= 1 (bools included) is an error naming the finder and argument."""
    from fulmen_callbacks import LearningRateFinder

    with pytest.raises(MisconfigurationException, match=rf"BatchSizeFinder\(steps_per_trial={value!r}\) must be an int >= 1"):
        BatchSizeFinder(steps_per_trial=value)
    with pytest.raises(MisconfigurationException, match=rf"BatchSizeFinder\(max_val={value!r}\) must be an int >= 1"):
        BatchSizeFinder(max_val=value)
    with pytest.raises(MisconfigurationException, match=rf"LearningRateFinder\(num_training_steps={value!r}\) must be an int >= 1"):
        LearningRateFinder(num_training_steps=value)
