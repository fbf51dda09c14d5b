"""Train scikit-learn's bundled 8x8 digits from the command line with ``fulmen.cli.LightningCLI``.

Needs the ``cli`` extra (``pip install "fulmen[cli]"``) and scikit-learn. Try:

    python examples/cli.py fit --trainer.max_epochs=2 --model.lr=0.01
    python examples/cli.py fit --print_config > config.yaml      # edit it, then
    python examples/cli.py fit --config config.yaml
    python examples/cli.py fit --optimizer=SGD --optimizer.lr=0.1 --lr_scheduler=StepLR --lr_scheduler.step_size=2
    python examples/cli.py test --ckpt_path lightning_logs/version_0/checkpoints/<name>.ckpt
    python examples/cli.py --help ; python examples/cli.py fit --help
"""

from __future__ import annotations

from digits import DigitsClassifier, DigitsDataModule  # the model and data of examples/digits.py

from fulmen.cli import LightningCLI


def main() -> None:
    LightningCLI(DigitsClassifier, DigitsDataModule)


if __name__ == "__main__":
    main()
