"""fulmen: the Lightning programming model on small, typed, fast packages.

``import fulmen as L`` gives the names a Lightning script uses: ``L.Trainer``, ``L.LightningModule``,
``L.LightningDataModule``, ``L.Callback``, ``L.seed_everything``.
"""

from fulmen_core import Callback, LightningDataModule, LightningModule, seed_everything

from fulmen._trainer import Trainer
from fulmen._version import __version__

__all__ = [
    "Callback",
    "LightningDataModule",
    "LightningModule",
    "Trainer",
    "__version__",
    "seed_everything",
]
