"""fulmen.cli.LightningCLI: subcommands, config files, subclass and optimizer selection, saved config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from cli_models import NoOptimizerModel, TinyData, TinyModel, WiderModel
from fulmen_callbacks import EarlyStopping
from fulmen_core import LightningModule, MisconfigurationException
from fulmen_loggers import CSVLogger

from fulmen.cli import LightningCLI, ReduceLROnPlateau

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def _restore_seed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """seed_everything writes PL_GLOBAL_SEED/PL_SEED_WORKERS; start each test without them and put
    back what other tests had afterwards."""
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    monkeypatch.delenv("PL_SEED_WORKERS", raising=False)


def first_layer(model: LightningModule) -> torch.nn.Linear:
    """The first Linear of a cli_models module (its width is the ``hidden`` argument)."""
    assert isinstance(model, TinyModel)
    layer = model.net[0]
    assert isinstance(layer, torch.nn.Linear)
    return layer


def quiet(root: Path, *extra: str) -> list[str]:
    """Trainer flags for a fast, silent run writing under ``root``."""
    return [
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=1",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={root}",
        *extra,
    ]


def test_fit_trains_the_model_with_command_line_arguments(tmp_path: Path) -> None:
    """fit builds model, datamodule and Trainer from --model.*/--data.*/--trainer.* and trains."""
    cli = LightningCLI(TinyModel, TinyData, args=["fit", "--model.hidden=7", "--data.batch_size=4", *quiet(tmp_path)])
    assert isinstance(cli.model, TinyModel) and first_layer(cli.model).out_features == 7
    assert isinstance(cli.datamodule, TinyData) and cli.datamodule.batch_size == 4
    assert cli.trainer.max_epochs == 1 and cli.trainer.state.fn == "fit"
    assert cli.trainer.global_step == 2
    assert cli.config.fit.model.hidden == 7 and cli.subcommand == "fit"


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_each_subcommand_runs_its_trainer_method(tmp_path: Path, subcommand: str) -> None:
    """validate, test and predict each run the Trainer method of that name, and not fit."""
    cli = LightningCLI(TinyModel, TinyData, args=[subcommand, *quiet(tmp_path)])
    assert cli.trainer.state.fn == subcommand and cli.trainer.state.status == "finished"
    assert cli.trainer.global_step == 0


def test_ckpt_path_is_passed_and_the_checkpoints_hyperparameters_are_used(tmp_path: Path) -> None:
    """test --ckpt_path loads that checkpoint into a model built with the hyperparameters fit saved."""
    fit = LightningCLI(TinyModel, TinyData, args=["fit", "--model.hidden=5", *quiet(tmp_path)])
    checkpoint = fit.trainer.checkpoint_callback.best_model_path
    assert os.path.isfile(checkpoint)
    test = LightningCLI(TinyModel, TinyData, args=["test", f"--ckpt_path={checkpoint}", *quiet(tmp_path)])
    assert test.trainer.ckpt_path == checkpoint
    assert first_layer(test.model).out_features == 5
    assert torch.equal(first_layer(test.model).weight, first_layer(fit.model).weight)


def test_config_file_and_command_line_precedence(tmp_path: Path) -> None:
    """A --config file sets values; an argument after it overrides them, one before it is overridden."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model": {"hidden": 3, "lr": 0.5}, "trainer": {"max_epochs": 2}}))
    after = LightningCLI(TinyModel, TinyData, run=False, args=["--config", str(config), "--model.hidden=6"])
    assert first_layer(after.model).out_features == 6 and after.model.hparams.lr == 0.5
    assert after.trainer.max_epochs == 2
    before = LightningCLI(TinyModel, TinyData, run=False, args=["--model.hidden=6", "--config", str(config)])
    assert first_layer(before.model).out_features == 3


def test_several_config_files_apply_in_order(tmp_path: Path) -> None:
    """With two --config files the later one wins for the keys both set."""
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("model:\n  hidden: 3\n  lr: 0.5\n")
    second.write_text("model:\n  hidden: 9\n")
    cli = LightningCLI(TinyModel, TinyData, run=False, args=["--config", str(first), "--config", str(second)])
    assert first_layer(cli.model).out_features == 9 and cli.model.hparams.lr == 0.5


def test_print_config_prints_yaml_that_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """fit --print_config prints the whole resolved config as YAML and exits; --config reads it back."""
    with pytest.raises(SystemExit) as exited:
        LightningCLI(TinyModel, TinyData, args=["fit", "--model.hidden=9", "--print_config"])
    assert exited.value.code == 0
    printed = capsys.readouterr().out
    loaded = yaml.safe_load(printed)
    assert loaded["model"] == {"hidden": 9, "lr": 0.1} and loaded["data"] == {"batch_size": 2, "samples": 8}
    assert loaded["trainer"]["max_epochs"] is None and loaded["seed_everything"] is True
    assert {"optimizer", "lr_scheduler", "ckpt_path"} <= set(loaded)
    config = tmp_path / "config.yaml"
    config.write_text(printed)
    cli = LightningCLI(TinyModel, TinyData, args=["fit", "--config", str(config), *quiet(tmp_path)])
    assert first_layer(cli.model).out_features == 9 and cli.trainer.global_step == 2


def test_subclass_mode_model_selects_a_subclass_by_class_path(tmp_path: Path) -> None:
    """With subclass_mode_model, --model=<class path> picks a subclass and --model.<arg> configures it."""
    cli = LightningCLI(
        TinyModel, TinyData, subclass_mode_model=True, run=False, args=["--model=cli_models.WiderModel", "--model.width=3"]
    )
    assert type(cli.model) is WiderModel and first_layer(cli.model).out_features == 3


def test_without_model_class_any_module_is_chosen_by_name(tmp_path: Path) -> None:
    """With model_class=None, --model=<short name> and --data=<short name> pick any subclass."""
    cli = LightningCLI(args=["fit", "--model=WiderModel", "--model.width=2", "--data=TinyData", *quiet(tmp_path)])
    assert type(cli.model) is WiderModel and type(cli.datamodule) is TinyData
    assert cli.trainer.global_step == 2
    class_path = cli.config.fit.model.class_path
    assert class_path == "cli_models.WiderModel"


def test_optimizer_and_lr_scheduler_arguments_configure_the_module(tmp_path: Path) -> None:
    """--optimizer and --lr_scheduler give the optimizer and scheduler fit actually uses."""
    cli = LightningCLI(
        TinyModel,
        TinyData,
        args=["fit", "--optimizer=Adam", "--optimizer.lr=0.05", "--lr_scheduler=StepLR", "--lr_scheduler.step_size=4", *quiet(tmp_path)],
    )
    (optimizer,) = cli.trainer.optimizers
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["initial_lr"] == 0.05
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == {id(p) for p in cli.model.parameters()}
    (config,) = cli.trainer.lr_scheduler_configs
    assert isinstance(config.scheduler, torch.optim.lr_scheduler.StepLR) and config.scheduler.step_size == 4


def test_optimizer_argument_trains_a_module_without_configure_optimizers(tmp_path: Path) -> None:
    """A module with no configure_optimizers trains with --optimizer, and without it fit names the fix."""
    cli = LightningCLI(NoOptimizerModel, TinyData, args=["fit", "--optimizer=SGD", "--optimizer.lr=0.1", *quiet(tmp_path)])
    assert isinstance(cli.trainer.optimizers[0], torch.optim.SGD) and cli.trainer.global_step == 2
    with pytest.raises(MisconfigurationException, match="NoOptimizerModel has no configure_optimizers"):
        LightningCLI(NoOptimizerModel, TinyData, args=["fit", *quiet(tmp_path)])


def test_reduce_lr_on_plateau_gets_its_monitor(tmp_path: Path) -> None:
    """fulmen.cli.ReduceLROnPlateau's monitor reaches the scheduler config the Trainer steps."""
    cli = LightningCLI(
        TinyModel,
        TinyData,
        args=["fit", "--optimizer=SGD", "--optimizer.lr=0.1", "--lr_scheduler=fulmen.cli.ReduceLROnPlateau", "--lr_scheduler.monitor=val_loss", *quiet(tmp_path)],
    )
    (config,) = cli.trainer.lr_scheduler_configs
    assert isinstance(config.scheduler, ReduceLROnPlateau) and config.monitor == "val_loss"


def test_trainer_callbacks_and_logger_accept_class_paths(tmp_path: Path) -> None:
    """--trainer.callbacks+= and --trainer.logger take short class names with their init_args."""
    cli = LightningCLI(
        TinyModel,
        TinyData,
        run=False,
        args=[
            "--trainer.callbacks+=EarlyStopping",
            "--trainer.callbacks.monitor=val_loss",
            "--trainer.callbacks.patience=7",
            "--trainer.logger=CSVLogger",
            f"--trainer.logger.save_dir={tmp_path}",
        ],
    )
    (early,) = cli.trainer.early_stopping_callbacks
    assert isinstance(early, EarlyStopping) and early.patience == 7 and early.monitor == "val_loss"
    assert isinstance(cli.trainer.logger, CSVLogger) and cli.trainer.logger.save_dir == str(tmp_path)


def test_trainer_profiler_accepts_a_name_or_a_class_path(tmp_path: Path) -> None:
    """--trainer.profiler takes Lightning's names ('simple') and profiler classes by short name with init_args."""
    from fulmen_loops import AdvancedProfiler, SimpleProfiler

    by_name = LightningCLI(TinyModel, TinyData, run=False, args=["--trainer.profiler=simple"])
    assert isinstance(by_name.trainer.profiler, SimpleProfiler)
    by_class = LightningCLI(
        TinyModel, TinyData, run=False,
        args=["--trainer.profiler=AdvancedProfiler", f"--trainer.profiler.dirpath={tmp_path}"],
    )
    assert isinstance(by_class.trainer.profiler, AdvancedProfiler) and by_class.trainer.profiler.dirpath == str(tmp_path)


def test_config_is_saved_in_log_dir_and_never_silently_replaced(tmp_path: Path) -> None:
    """fit writes config.yaml (with the seed used) in trainer.log_dir; a second run there is an error
    unless overwrite=True."""
    args = ["fit", "--trainer.logger=false", "--model.hidden=6", *quiet(tmp_path)]
    cli = LightningCLI(TinyModel, TinyData, args=args)
    saved = Path(str(cli.trainer.log_dir)) / "config.yaml"
    assert saved.parent == tmp_path
    content = yaml.safe_load(saved.read_text())
    assert content["model"]["hidden"] == 6 and content["seed_everything"] == 0
    with pytest.raises(RuntimeError, match="config.yaml already exists"):
        LightningCLI(TinyModel, TinyData, args=args)
    LightningCLI(TinyModel, TinyData, args=[*args, "--model.hidden=8"], save_config_kwargs={"overwrite": True})
    assert yaml.safe_load(saved.read_text())["model"]["hidden"] == 8


def test_config_goes_to_the_loggers_version_folder(tmp_path: Path) -> None:
    """With the default logger, config.yaml lands in lightning_logs/version_N beside the logs."""
    cli = LightningCLI(TinyModel, TinyData, args=["fit", *quiet(tmp_path)])
    assert cli.trainer.log_dir == str(tmp_path / "lightning_logs" / "version_0")
    assert (tmp_path / "lightning_logs" / "version_0" / "config.yaml").is_file()


def test_run_false_instantiates_without_running(tmp_path: Path) -> None:
    """run=False builds model, datamodule and Trainer from arguments without a subcommand, runs nothing."""
    cli = LightningCLI(TinyModel, TinyData, run=False, args=["--trainer.max_epochs=3", "--model.hidden=2"])
    assert cli.subcommand is None and cli.trainer.max_epochs == 3 and cli.trainer.global_step == 0
    assert first_layer(cli.model).out_features == 2 and "subcommand" not in cli.config
    assert not any(tmp_path.iterdir())


def test_seed_everything_seeds_and_is_recorded(tmp_path: Path) -> None:
    """--seed_everything=N seeds torch with N before the model is built; false leaves the RNG alone."""
    first = LightningCLI(TinyModel, TinyData, run=False, args=["--seed_everything=123"])
    assert torch.initial_seed() == 123 and first.config.seed_everything == 123
    second = LightningCLI(TinyModel, TinyData, run=False, args=["--seed_everything=123"])
    assert torch.equal(first_layer(first.model).weight, first_layer(second.model).weight)
    torch.manual_seed(5)
    LightningCLI(TinyModel, TinyData, run=False, args=["--seed_everything=false"])
    assert torch.initial_seed() == 5


def run_cli_script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "cli.py"), *args], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"trainer": {"max_epoch": 1}}, "trainer.max_epoch"),
        ({"trainer": {"max_epochs": "abc"}}, "trainer.max_epochs"),
        ({"model": {"hiden": 3}}, "model.hiden"),
    ],
)
def test_bad_config_file_exits_non_zero_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: dict[str, Any], named: str
) -> None:
    """A config file with an unknown key or a wrong type exits non-zero with the key in the message."""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as exited:
        LightningCLI(TinyModel, TinyData, args=["fit", "--config", str(path)])
    assert exited.value.code != 0
    assert named in capsys.readouterr().err


def test_unknown_model_class_exits_non_zero_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    """--model=<a class that does not exist> exits non-zero and the message names the key and the value."""
    with pytest.raises(SystemExit) as exited:
        LightningCLI(TinyModel, subclass_mode_model=True, args=["fit", "--model=nowhere.Missing"])
    assert exited.value.code != 0
    err = capsys.readouterr().err
    assert '"model"' in err and "nowhere.Missing" in err


def test_jsonargparse_is_loaded_only_by_fulmen_cli_which_names_the_extra_when_missing() -> None:
    """`import fulmen` does not load jsonargparse; without it, importing fulmen.cli names the pip line."""
    code = (
        "import sys, fulmen\n"
        "assert 'jsonargparse' not in sys.modules, 'import fulmen loaded jsonargparse'\n"
        "sys.modules['jsonargparse'] = None\n"
        "import fulmen.cli\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0 and "import fulmen loaded" not in result.stderr
    assert 'pip install "fulmen[cli]"' in result.stderr


def test_cli_example_fits_saves_config_and_tests_from_the_checkpoint(tmp_path: Path) -> None:
    """examples/cli.py fit writes a checkpoint and config.yaml; test --ckpt_path then reports test_acc."""
    fast = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.enable_progress_bar=false", "--trainer.default_root_dir=runs"]
    fit = run_cli_script(tmp_path, "fit", "--model.hidden=16", *fast)
    assert fit.returncode == 0, fit.stderr[-2000:]
    run = tmp_path / "runs" / "lightning_logs" / "version_0"
    (checkpoint,) = (run / "checkpoints").glob("*.ckpt")
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["hidden"] == 16
    test = run_cli_script(tmp_path, "test", f"--ckpt_path={checkpoint}", *fast)
    assert test.returncode == 0, test.stderr[-2000:]
    assert "test_acc" in test.stdout
