"""CSVLogger: files read back with the csv module and compared with Lightning's CSVLogger output."""

from __future__ import annotations

import csv
import json
import os
import warnings
from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from fulmen_core import AttributeDict, Logger, MisconfigurationException

from fulmen_loggers import CSVLogger

FIXTURES = Path(__file__).parent / "fixtures" / "lightning"
SCENARIOS: dict[str, Any] = json.loads((FIXTURES / "scenarios.json").read_text())
CSV_SCENARIOS = sorted(name for name, spec in SCENARIOS.items() if spec["logger"] == "csv")


def _decode(value: Any) -> Any:
    """Scenario values as the logger gets them: ``{"__tensor__": x}`` becomes ``torch.tensor(x)``."""
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            return torch.tensor(value["__tensor__"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def _tree(root: Path) -> list[str]:
    return [path.relative_to(root).as_posix() + ("/" if path.is_dir() else "") for path in sorted(root.rglob("*"))]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("scenario", CSV_SCENARIOS)
def test_csv_output_matches_lightning(scenario: str, tmp_path: Path) -> None:
    """Replaying a scenario gives the same folder, metrics.csv rows/columns and hparams.yaml as Lightning."""
    spec = SCENARIOS[scenario]
    for folder in spec.get("setup_dirs", []):
        (tmp_path / folder).mkdir(parents=True)
    for name in spec.get("setup_files", []):
        (tmp_path / name).write_text("")
    logger = CSVLogger(save_dir=tmp_path, **spec["kwargs"])
    for method, args, kwargs in spec["calls"]:
        getattr(logger, method)(*_decode(args), **_decode(kwargs))

    expected = json.loads((FIXTURES / scenario / "expected.json").read_text())
    assert os.path.relpath(logger.log_dir, tmp_path) == expected["log_dir"]
    assert logger.version == expected["version"]
    assert _tree(tmp_path) == expected["tree"]
    log_dir = Path(logger.log_dir)
    assert _rows(log_dir / "metrics.csv") == _rows(FIXTURES / scenario / "metrics.csv")
    assert (log_dir / "metrics.csv").read_bytes() == (FIXTURES / scenario / "metrics.csv").read_bytes()
    expected_yaml = FIXTURES / scenario / "hparams.yaml"
    assert (log_dir / "hparams.yaml").is_file() == expected_yaml.is_file()
    if expected_yaml.is_file():
        assert (log_dir / "hparams.yaml").read_text() == expected_yaml.read_text()


def test_csv_rows_are_buffered_until_the_flush_step(tmp_path: Path) -> None:
    """Rows reach metrics.csv only when (step + 1) is a multiple of flush_logs_every_n_steps, or on save()."""
    logger = CSVLogger(tmp_path, flush_logs_every_n_steps=5)
    for step in range(4):
        logger.log_metrics({"loss": float(step)}, step=step)
    metrics = Path(logger.log_dir) / "metrics.csv"
    assert not metrics.exists()
    logger.log_metrics({"loss": 4.0}, step=4)
    assert [row["step"] for row in _rows(metrics)] == ["0", "1", "2", "3", "4"]
    logger.log_metrics({"loss": 5.0}, step=5)
    assert len(_rows(metrics)) == 5
    logger.save()
    assert _rows(metrics)[-1] == {"loss": "5.0", "step": "5"}


def test_csv_versions_and_directories(tmp_path: Path) -> None:
    """Automatic versions count up, an int version names version_N, a str version and name=None are used as given."""
    first = CSVLogger(tmp_path)
    first.log_metrics({"a": 1.0}, step=0)
    second = CSVLogger(tmp_path)
    assert (first.version, second.version) == (0, 1)
    assert second.log_dir == os.path.join(str(tmp_path), "lightning_logs", "version_1")
    assert second.root_dir == os.path.join(str(tmp_path), "lightning_logs")
    assert CSVLogger(tmp_path, version=7).log_dir.endswith(os.path.join("lightning_logs", "version_7"))
    assert CSVLogger(tmp_path, version="final").log_dir.endswith(os.path.join("lightning_logs", "final"))
    flat = CSVLogger(tmp_path / "flat", name=None)
    flat.log_metrics({"a": 1.0})
    flat.finalize("success")
    assert flat.name == "" and flat.save_dir == str(tmp_path / "flat")
    assert (tmp_path / "flat" / "version_0" / "metrics.csv").is_file()


def test_csv_reused_log_dir_replaces_old_metrics_with_a_warning(tmp_path: Path) -> None:
    """Logging into a version folder that has a metrics.csv warns and starts a fresh file."""
    old = tmp_path / "lightning_logs" / "version_0"
    old.mkdir(parents=True)
    (old / "metrics.csv").write_text("stale,step\n1,0\n")
    logger = CSVLogger(tmp_path, version=0)
    with pytest.warns(UserWarning, match="exists and is not empty"):
        logger.log_metrics({"fresh": 2.0}, step=0)
    logger.finalize("success")
    assert _rows(old / "metrics.csv") == [{"fresh": "2.0", "step": "0"}]


def test_csv_version_folder_with_other_files_is_used_without_a_warning(tmp_path: Path) -> None:
    """A version folder holding only other files (a CLI's config.yaml) is logged into silently."""
    run = tmp_path / "lightning_logs" / "version_0"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("seed_everything: 0\n")
    logger = CSVLogger(tmp_path, version=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger.log_metrics({"a": 1.0}, step=0)
    logger.finalize("success")
    assert (run / "config.yaml").is_file() and _rows(run / "metrics.csv") == [{"a": "1.0", "step": "0"}]


def test_csv_hparams_accepts_namespace_and_attribute_dict(tmp_path: Path) -> None:
    """Namespace and AttributeDict hyperparameters become plain YAML mappings that safe_load reads."""
    logger = CSVLogger(tmp_path)
    logger.log_hyperparams(Namespace(lr=0.1, layers=[3, 4]))
    logger.log_hyperparams(AttributeDict(model=AttributeDict(width=8), seed=1))
    loaded = yaml.safe_load((Path(logger.log_dir) / "hparams.yaml").read_text())
    assert loaded == {"lr": 0.1, "layers": [3, 4], "model": {"width": 8}, "seed": 1}


def test_csv_finalize_failed_keeps_buffered_rows(tmp_path: Path) -> None:
    """finalize("failed") writes the rows still in the buffer."""
    logger = CSVLogger(tmp_path)
    logger.log_metrics({"loss": 1.5}, step=0)
    logger.finalize("failed")
    assert _rows(Path(logger.log_dir) / "metrics.csv") == [{"loss": "1.5", "step": "0"}]


def test_csv_finalize_before_any_log_creates_nothing(tmp_path: Path) -> None:
    """finalize on a logger that never logged writes no folder (as on a non-zero rank)."""
    CSVLogger(tmp_path).finalize("success")
    assert list(tmp_path.iterdir()) == []


def test_csv_writes_only_on_rank_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a process whose launcher says RANK=1, logging, saving and finalizing write no files."""
    monkeypatch.setenv("RANK", "1")
    logger = CSVLogger(tmp_path)
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.save()
    logger.finalize("success")
    assert list(tmp_path.iterdir()) == []


def test_csv_save_dir_under_a_file_fails_at_construction(tmp_path: Path) -> None:
    """A save_dir that cannot be created raises at construction, naming the path and the fix."""
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    with pytest.raises(MisconfigurationException, match="not a directory") as info:
        CSVLogger(blocker / "logs")
    assert str(blocker) in str(info.value) and "save_dir" in str(info.value)


def test_csv_log_dir_that_becomes_unwritable_names_the_directory(tmp_path: Path) -> None:
    """When the log folder cannot be made at the first log call, the error names that folder and the fix."""
    logger = CSVLogger(tmp_path / "logs")
    (tmp_path / "logs").write_text("now a file")
    with pytest.raises(MisconfigurationException, match="could not create its log directory") as info:
        logger.log_metrics({"loss": 1.0}, step=0)
    assert str(tmp_path / "logs") in str(info.value) and "save_dir you can write to" in str(info.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write any directory")
def test_csv_read_only_save_dir_fails_at_construction(tmp_path: Path) -> None:
    """A save_dir in a directory without write permission raises at construction with the fix."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(MisconfigurationException, match="not writable"):
        CSVLogger(locked / "logs")


def test_csv_url_save_dir_is_refused(tmp_path: Path) -> None:
    """A remote URL as save_dir is refused with the advice to log locally."""
    with pytest.raises(MisconfigurationException, match="local directories only"):
        CSVLogger("s3://bucket/logs")


def test_csv_satisfies_the_logger_protocol(tmp_path: Path) -> None:
    """CSVLogger is a fulmen_core.Logger (checked by mypy) and reports its folders through it."""
    logger: Logger = CSVLogger(tmp_path, name="exp", version=2)
    assert (logger.name, logger.version, logger.save_dir) == ("exp", 2, str(tmp_path))
    assert logger.log_dir == os.path.join(str(tmp_path), "exp", "version_2")


def test_csv_rejects_a_flush_interval_below_one(tmp_path: Path) -> None:
    """flush_logs_every_n_steps=0 is refused with the allowed range."""
    with pytest.raises(ValueError, match=">= 1"):
        CSVLogger(tmp_path, flush_logs_every_n_steps=0)
