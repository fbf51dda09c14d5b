"""Regenerate tests/fixtures/lightning/ from Lightning's own loggers (a test-only reference).

Run it in a separate environment that has Lightning, never in fulmen's own:

    python3 -m venv /work/venvs/lightning-ref
    /work/venvs/lightning-ref/bin/pip install torch==2.13.0 lightning tensorboard
    /work/venvs/lightning-ref/bin/python packages/loggers/scripts/make_lightning_fixtures.py

It replays every scenario of tests/fixtures/lightning/scenarios.json on ``lightning.pytorch.loggers``
and writes, per scenario, what a reader of the output sees: the text files verbatim, the file tree,
and for TensorBoard the scalars and hparams read back with tensorboard's ``EventAccumulator``.
fulmen's tests replay the same calls on fulmen_loggers and compare against these files.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from google.protobuf import json_format
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "lightning"
EVENTS_PREFIX = "events.out.tfevents."


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            return torch.tensor(value["__tensor__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _tree(root: Path) -> list[str]:
    names = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.name.startswith(EVENTS_PREFIX):
            rel = rel[: -len(path.name)] + "events.out.tfevents"
        names.append(rel + ("/" if path.is_dir() else ""))
    return names


def _read_events(log_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dirs = sorted({p.parent for p in log_dir.rglob(EVENTS_PREFIX + "*")})
    for directory in dirs:
        acc = EventAccumulator(str(directory))
        acc.Reload()
        scalars = {
            tag: [[event.step, event.value] for event in acc.Scalars(tag)] for tag in sorted(acc.Tags()["scalars"])
        }
        try:
            contents = acc.PluginTagToContent("hparams")
        except KeyError:  # no hparams summary in this directory
            contents = {}
        hparams = {
            tag: json_format.MessageToDict(plugin_data_pb2.HParamsPluginData.FromString(content))
            for tag, content in sorted(contents.items())
        }
        out[directory.relative_to(log_dir).as_posix()] = {"scalars": scalars, "hparams": hparams}
    return out


def main() -> None:
    scenarios = json.loads((FIXTURES / "scenarios.json").read_text())
    for name, spec in scenarios.items():
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for d in spec.get("setup_dirs", []):
                (root / d).mkdir(parents=True)
            for f in spec.get("setup_files", []):
                (root / f).parent.mkdir(parents=True, exist_ok=True)
                (root / f).write_text("")
            cls = CSVLogger if spec["logger"] == "csv" else TensorBoardLogger
            logger = cls(save_dir=str(root), **spec["kwargs"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for method, args, kwargs in spec["calls"]:
                    getattr(logger, method)(*_decode(args), **_decode(kwargs))
            out = FIXTURES / name
            if out.exists():
                shutil.rmtree(out)
            out.mkdir()
            log_dir = Path(logger.log_dir)
            expected: dict[str, Any] = {
                "log_dir": os.path.relpath(log_dir, root),
                "version": logger.version,
                "tree": _tree(root),
            }
            if spec["logger"] == "tensorboard":
                expected["events"] = _read_events(log_dir)
            for text in ("metrics.csv", "hparams.yaml"):
                if (log_dir / text).is_file():
                    shutil.copyfile(log_dir / text, out / text)
            (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
            print(f"{name}: {expected['log_dir']}", file=sys.stderr)


if __name__ == "__main__":
    main()
