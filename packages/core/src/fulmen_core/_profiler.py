"""The ``Profiler`` role: what the loops tell about the time spent in each action they run."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


class Profiler(Protocol):
    """Records the time (or calls, or kernels) spent in named actions of a run.

    The loops call :meth:`start` and :meth:`stop` around each action, named as in Lightning
    (``run_training_batch``, ``[LightningModule]MyModel.on_train_batch_end``,
    ``[Callback]MyCallback.on_train_epoch_end``, ...). A stage (``"fit"``, ``"validate"``,
    ``"test"``, ``"predict"``) opens with :meth:`setup` and ends with :meth:`describe` (the report)
    and :meth:`teardown`. Without a profiler the loops run none of this.
    """

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        """Prepare for ``stage``; ``local_rank`` is ``None`` in a single process; ``log_dir`` is where
        the run writes its files (a report goes there when the profiler has a file name but no dirpath)."""
        ...

    def start(self, action_name: str) -> None:
        """Start recording ``action_name``."""
        ...

    def stop(self, action_name: str) -> None:
        """Stop recording ``action_name`` (started by :meth:`start`)."""
        ...

    def profile(self, action_name: str) -> AbstractContextManager[None]:
        """A context manager recording ``action_name`` around its block (``start``, then ``stop``)."""
        ...

    def summary(self) -> str:
        """The report of what was recorded, as text."""
        ...

    def describe(self) -> None:
        """Write the report where the profiler was told to (a file, or standard output)."""
        ...

    def teardown(self, stage: str | None) -> None:
        """Release what ``stage`` held (open files, a running trace)."""
        ...
