"""``LightningDataModule``: data preparation and loaders, kept apart from the model."""

from __future__ import annotations

import os
from typing import Any

import torch
from typing_extensions import Self

from fulmen_core._checkpoint import constructor_arguments, load_checkpoint_file
from fulmen_core._collections import move_data_to_device
from fulmen_core._exceptions import MisconfigurationException
from fulmen_core._hparams import HyperparametersMixin
from fulmen_core._trainer import TrainerView


class LightningDataModule(HyperparametersMixin):
    """Holds the dataloaders for every stage and the steps that build them.

    Override ``prepare_data`` (once per node), ``setup(stage)`` (every process) and the
    ``*_dataloader`` methods the stages you run need.
    """

    name: str | None = None

    def __init__(self) -> None:
        self.trainer: TrainerView | None = None
        self.prepare_data_per_node: bool = True

    def prepare_data(self) -> None:
        """Download or write data once per node."""

    def setup(self, stage: str) -> None:
        """Build datasets for ``stage`` ("fit", "validate", "test" or "predict")."""

    def teardown(self, stage: str) -> None:
        """Release what :meth:`setup` built."""

    def train_dataloader(self) -> Any:
        """The training data."""
        raise MisconfigurationException(
            f"{type(self).__qualname__} does not define train_dataloader(); fit needs it"
        )

    def val_dataloader(self) -> Any:
        """The validation data (optional for fit)."""
        return []

    def test_dataloader(self) -> Any:
        """The test data."""
        raise MisconfigurationException(
            f"{type(self).__qualname__} does not define test_dataloader(); test needs it"
        )

    def predict_dataloader(self) -> Any:
        """The data to predict on."""
        raise MisconfigurationException(
            f"{type(self).__qualname__} does not define predict_dataloader(); predict needs it"
        )

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Move ``batch`` to ``device``."""
        return move_data_to_device(batch, device)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Alter a batch before it moves to the device."""
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Alter a batch after it moved to the device."""
        return batch

    def state_dict(self) -> dict[str, Any]:
        """State to store in checkpoints."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def on_exception(self, exception: BaseException) -> None:
        """Called when a stage is interrupted by an exception."""

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | os.PathLike[str],
        map_location: Any = None,
        hparams_file: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Rebuild the datamodule from the hyperparameters and state a fit checkpoint saved."""
        checkpoint = load_checkpoint_file(checkpoint_path, map_location=map_location)
        arguments = constructor_arguments(
            checkpoint, "datamodule_hyper_parameters", "datamodule_hparams_name", hparams_file, kwargs
        )
        datamodule = cls(**arguments)
        state = checkpoint.get(cls.__qualname__)
        if state:
            datamodule.load_state_dict(state)
        return datamodule
