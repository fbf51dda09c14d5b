"""TensorBoardLogger: event files read back with TensorBoard's EventAccumulator and compared with Lightning's."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from fulmen_core import LightningModule, Logger

from fulmen_loggers import TensorBoardLogger

pytest.importorskip("tensorboard", reason="needs the tensorboard extra: pip install fulmen-loggers[tensorboard]")

# tensorboard and protobuf ship no type information: loaded untyped, so that the tests type-check
# whether or not the tensorboard extra is installed
json_format: Any = importlib.import_module("google.protobuf.json_format")
EventAccumulator: Any = importlib.import_module(
    "tensorboard.backend.event_processing.event_accumulator"
).EventAccumulator
plugin_data_pb2: Any = importlib.import_module("tensorboard.plugins.hparams.plugin_data_pb2")

FIXTURES = Path(__file__).parent / "fixtures" / "lightning"
SCENARIOS: dict[str, Any] = json.loads((FIXTURES / "scenarios.json").read_text())
TB_SCENARIOS = sorted(name for name, spec in SCENARIOS.items() if spec["logger"] == "tensorboard")
EVENTS_PREFIX = "events.out.tfevents."


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
    names = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.name.startswith(EVENTS_PREFIX):
            rel = rel[: -len(path.name)] + "events.out.tfevents"
        names.append(rel + ("/" if path.is_dir() else ""))
    return names


def _accumulator(directory: Path) -> Any:
    acc = EventAccumulator(str(directory))
    acc.Reload()
    return acc


def _read_events(log_dir: Path) -> dict[str, Any]:
    """Scalars and HParams plugin data of every event folder under ``log_dir``, as TensorBoard reads them."""
    out: dict[str, Any] = {}
    for directory in sorted({path.parent for path in log_dir.rglob(EVENTS_PREFIX + "*")}):
        acc = _accumulator(directory)
        scalars = {
            tag: [[event.step, event.value] for event in acc.Scalars(tag)] for tag in sorted(acc.Tags()["scalars"])
        }
        try:
            contents = acc.PluginTagToContent("hparams")
        except KeyError:  # no hparams summary in this folder
            contents = {}
        hparams = {
            tag: json_format.MessageToDict(plugin_data_pb2.HParamsPluginData.FromString(content))
            for tag, content in sorted(contents.items())
        }
        out[directory.relative_to(log_dir).as_posix()] = {"scalars": scalars, "hparams": hparams}
    return out


@pytest.mark.parametrize("scenario", TB_SCENARIOS)
def test_tensorboard_output_matches_lightning(scenario: str, tmp_path: Path) -> None:
    """Replaying a scenario gives the scalars, HParams data, files and hparams.yaml Lightning's logger gives."""
    spec = SCENARIOS[scenario]
    logger = TensorBoardLogger(save_dir=tmp_path, **spec["kwargs"])
    for method, args, kwargs in spec["calls"]:
        getattr(logger, method)(*_decode(args), **_decode(kwargs))

    expected = json.loads((FIXTURES / scenario / "expected.json").read_text())
    assert os.path.relpath(logger.log_dir, tmp_path) == expected["log_dir"]
    assert logger.version == expected["version"]
    assert _tree(tmp_path) == expected["tree"]
    assert _read_events(Path(logger.log_dir)) == expected["events"]
    expected_yaml = FIXTURES / scenario / "hparams.yaml"
    written_yaml = Path(logger.log_dir) / "hparams.yaml"
    assert written_yaml.is_file() == expected_yaml.is_file()
    if expected_yaml.is_file():
        assert written_yaml.read_text() == expected_yaml.read_text()


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)
        self.example_input_array = torch.zeros(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.layer(x))


class _LitNet(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)
        self.example_input_array = torch.zeros(3, 4)
        self.batches_seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.layer(x))

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        self.batches_seen.append(tuple(batch.shape))
        return batch


def _graph_has_linear(log_dir: str) -> bool:
    acc = _accumulator(Path(log_dir))
    return bool(acc.Tags()["graph"]) and any("linear" in node.op.lower() for node in acc.Graph().node)


def test_tensorboard_log_graph_writes_the_traced_graph(tmp_path: Path) -> None:
    """With log_graph=True, log_graph(model) traces example_input_array and TensorBoard finds the graph."""
    logger = TensorBoardLogger(tmp_path, log_graph=True)
    logger.log_graph(_Net())
    logger.finalize("success")
    assert _graph_has_linear(logger.log_dir)


def test_tensorboard_log_graph_of_a_lightning_module_runs_its_transfer_hooks(tmp_path: Path) -> None:
    """A LightningModule's graph is traced on its example input after its batch-transfer hooks."""
    model = _LitNet()
    logger = TensorBoardLogger(tmp_path, log_graph=True)
    logger.log_graph(model)
    logger.finalize("success")
    assert model.batches_seen == [(3, 4)]
    assert _graph_has_linear(logger.log_dir)


def test_tensorboard_log_graph_is_off_by_default_and_warns_without_input(tmp_path: Path) -> None:
    """log_graph does nothing unless enabled, and warns when there is no input to trace."""
    silent = TensorBoardLogger(tmp_path, version="off")
    silent.log_graph(_Net())
    assert not Path(silent.log_dir).exists()
    logger = TensorBoardLogger(tmp_path, version="on", log_graph=True)
    with pytest.warns(UserWarning, match="example_input_array"):
        logger.log_graph(torch.nn.Linear(2, 2))
    with pytest.warns(UserWarning, match="cannot be traced"):
        logger.log_graph(torch.nn.Linear(2, 2), input_array=[torch.zeros(1, 2)])


def test_tensorboard_versions_count_up(tmp_path: Path) -> None:
    """A second logger in the same save_dir picks version_1 once version_0 exists."""
    first = TensorBoardLogger(tmp_path, name="exp")
    first.log_metrics({"a": 1.0}, step=0)
    first.finalize("success")
    logger: Logger = TensorBoardLogger(tmp_path, name="exp")
    assert logger.version == 1 and logger.log_dir == os.path.join(str(tmp_path), "exp", "version_1")


def test_tensorboard_rejects_values_it_cannot_encode(tmp_path: Path) -> None:
    """Logging a non-number names the metric and what may be logged."""
    logger = TensorBoardLogger(tmp_path)
    with pytest.raises(ValueError, match="'bad'.*log a number"):
        logger.log_metrics({"bad": "text"}, step=0)
