#!/usr/bin/env python
"""How much fulmen costs over a raw PyTorch loop (and, when available, how much Lightning costs).

Run ``python benchmarks/bench_overhead.py`` (``--quick`` for a shorter run, ``--help`` for options).
It prints, side by side:

- wall time of ``Trainer(...)`` construction plus ``fit`` over a raw PyTorch loop in the same
  process, for fulmen with every feature off, fulmen with its defaults on, and the same two for
  Lightning; plus scaling rows (10 metrics logged per step, 5 no-op callbacks) that show the
  overhead grows only with what is asked for;
- ``import fulmen`` and ``import fulmen_core`` over ``import torch`` (fresh processes);
- peak memory per configuration (fresh processes);
- the cost of one ``self.log`` call.

Workload (the budget's, see DESIGN.md "Performance budget"): an MLP 32-64-2, batch 32, SGD, CPU,
``torch.set_num_threads(1)``, 800 optimizer steps. Rounds are interleaved (raw, each configuration,
raw) and every figure is a median over rounds, so that a machine shared with other work gives
usable numbers. Nothing here asserts a timing: it only prints.

The timed work runs in worker processes started from this same file (``--worker ...``): one per
Python interpreter, so Lightning may live in another virtual environment
(``--lightning-python /path/to/venv/bin/python``) and still be compared like for like, against a
raw loop timed in its own process. Framework output (progress bars, summaries, warnings) goes to
``/dev/null`` while timed, the same for every framework.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import importlib
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# ---------------------------------------------------------------------------------------- workload

STEPS = 800
BATCH_SIZE = 32
FEATURES, HIDDEN, CLASSES = 32, 64, 2
LEARNING_RATE = 0.1
N_METRICS = 10
N_CALLBACKS = 5
BUDGET = {"off": 1.10, "on": 1.25}
IMPORT_BUDGET_S = 0.25
LOG_CALLS = 2000
HEAVY_MODULES = (
    "tqdm",
    "rich",
    "tensorboard",
    "tensorboardX",
    "torchmetrics",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "mlflow",
    "wandb",
    "pandas",
    "matplotlib",
    "yaml",
    "lightning",
)


@dataclasses.dataclass(frozen=True)
class Config:
    """One timed configuration."""

    key: str
    framework: str  # "fulmen" or "lightning"
    label: str
    defaults: bool = False
    metrics: int = 0
    callbacks: int = 0
    budget: float | None = None


def configs_for(framework: str) -> list[Config]:
    """The timed configurations of one framework, in table order."""
    name = "fulmen" if framework == "fulmen" else "Lightning"
    own_budget = framework == "fulmen"
    return [
        Config(f"{framework}-off", framework, f"{name}, features off", budget=BUDGET["off"] if own_budget else None),
        Config(f"{framework}-on", framework, f"{name}, defaults on", defaults=True, budget=BUDGET["on"] if own_budget else None),
        Config(f"{framework}-metrics", framework, f"{name} off + {N_METRICS} self.log/step", metrics=N_METRICS),
        Config(f"{framework}-callbacks", framework, f"{name} off + {N_CALLBACKS} no-op callbacks", callbacks=N_CALLBACKS),
    ]


class NoOpHooks:
    """A callback body that overrides two per-batch hooks and does nothing in them."""

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        pass

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        pass


@dataclasses.dataclass
class Tasks:
    """The module bodies (mixins, combined with each framework's ``LightningModule``) and the raw loop."""

    plain: type[Any]
    logging: type[Any]
    probe: type[Any]
    raw_fit: Callable[[Any, int], int]
    mlp: Callable[[], Any]


def _time_per_call(body: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Microseconds per ``body()``: the best of ``repeats`` loops of up to ``calls`` calls (fewer
    when one call is slow: about 20 ms a loop), less an empty call's cost."""

    def empty() -> None:
        return None

    start = time.perf_counter()
    for _ in range(10):
        body()
    each = (time.perf_counter() - start) / 10
    calls = max(20, min(calls, int(0.02 / max(each, 1e-9))))

    def best(fn: Callable[[], object]) -> float:
        fastest = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            fastest = min(fastest, time.perf_counter() - start)
        return fastest

    return max(0.0, best(body) - best(empty)) / calls * 1e6


def define_tasks() -> Tasks:
    """Import torch and define the workload (kept out of module scope: the parent process and the
    import measurements must not import torch)."""
    import torch
    import torch.nn.functional as F

    def mlp() -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Linear(FEATURES, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, CLASSES)
        )

    class PlainTask(torch.nn.Module):
        """training_step and configure_optimizers, identical for every framework."""

        def __init__(self) -> None:
            super().__init__()
            self.net = mlp()

        if TYPE_CHECKING:

            def log(self, name: str, value: Any, **options: Any) -> None: ...

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            return F.cross_entropy(self.net(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=LEARNING_RATE)

    names = tuple(f"metric_{i}" for i in range(N_METRICS))

    class LoggingTask(PlainTask):
        """The same step, logging the loss under ``N_METRICS`` names every step."""

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = F.cross_entropy(self.net(x), y)
            for name in names:
                self.log(name, loss)
            return loss

    class ProbeTask(PlainTask):
        """Times ``self.log`` inside a real training_step (the whole path a user's call takes)."""

        def __init__(self) -> None:
            super().__init__()
            self.probe: dict[str, float] = {}

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = F.cross_entropy(self.net(x), y)
            if not self.probe:
                self.probe["tensor, on_step (default)"] = _time_per_call(
                    lambda: self.log("probe_step", loss), LOG_CALLS
                )
                self.probe["tensor, on_step+on_epoch"] = _time_per_call(
                    lambda: self.log("probe_epoch", loss, on_epoch=True), LOG_CALLS
                )
                self.probe["python float, on_step"] = _time_per_call(
                    lambda: self.log("probe_float", 0.5), LOG_CALLS
                )
            return loss

    def raw_fit(loader: Any, epochs: int) -> int:
        model = mlp()
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
        steps = 0
        for _ in range(epochs):
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                steps += 1
        return steps

    return Tasks(plain=PlainTask, logging=LoggingTask, probe=ProbeTask, raw_fit=raw_fit, mlp=mlp)


def make_loader(epochs: int) -> Any:
    """A DataLoader of ``STEPS // epochs`` batches of ``BATCH_SIZE`` random samples."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    batches = STEPS // epochs
    generator = torch.Generator().manual_seed(1234)
    x = torch.randn(batches * BATCH_SIZE, FEATURES, generator=generator)
    y = torch.randint(0, CLASSES, (batches * BATCH_SIZE,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=BATCH_SIZE, shuffle=False)


class Framework:
    """``fulmen`` or ``lightning``: the same flags, the same classes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ns: Any = importlib.import_module(name)
        self._classes: dict[type[Any], type[Any]] = {}

    @property
    def version(self) -> str:
        return str(self.ns.__version__)

    def module(self, body: type[Any]) -> Any:
        """An instance of ``body`` combined with this framework's LightningModule."""
        cls = self._classes.get(body)
        if cls is None:
            cls = type(f"{body.__name__}_{self.name}", (body, self.ns.LightningModule), {})
            self._classes[body] = cls
        return cls()

    def callbacks(self, count: int) -> list[Any]:
        cls = self._classes.get(NoOpHooks)
        if cls is None:
            cls = type(f"NoOpCallback_{self.name}", (NoOpHooks, self.ns.Callback), {})
            self._classes[NoOpHooks] = cls
        return [cls() for _ in range(count)]

    def trainer(self, epochs: int, *, defaults: bool, root: str | None, callbacks: list[Any] | None, max_steps: int = -1) -> Any:
        if defaults:
            return self.ns.Trainer(max_epochs=epochs, default_root_dir=root, callbacks=callbacks, max_steps=max_steps)
        return self.ns.Trainer(
            max_epochs=epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=callbacks,
            max_steps=max_steps,
        )


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Send file descriptors 1 and 2 (prints, bars, log records, warnings) to /dev/null."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


@contextlib.contextmanager
def scratch_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="fulmen-bench-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_config(config: Config, fw: Framework, tasks: Tasks, loader: Any, epochs: int) -> tuple[float, float, int]:
    """Wall and CPU seconds for ``Trainer(...)`` plus ``fit``, and the optimizer steps it took."""
    body = tasks.logging if config.metrics else tasks.plain
    model = fw.module(body)
    callbacks = fw.callbacks(config.callbacks) if config.callbacks else None
    with scratch_dir() as root:
        gc.collect()
        with silenced():
            cpu = time.process_time()
            start = time.perf_counter()
            trainer = fw.trainer(epochs, defaults=config.defaults, root=root if config.defaults else None, callbacks=callbacks)
            trainer.fit(model, loader)
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu
    return elapsed, cpu, int(trainer.global_step)


def run_raw(tasks: Tasks, loader: Any, epochs: int) -> tuple[float, float, int]:
    """Wall and CPU seconds for the raw loop, and the optimizer steps it took."""
    gc.collect()
    cpu = time.process_time()
    start = time.perf_counter()
    steps = tasks.raw_fit(loader, epochs)
    elapsed = time.perf_counter() - start
    return elapsed, time.process_time() - cpu, steps


def describe_defaults(fw: Framework, epochs: int) -> dict[str, list[str]]:
    """What the defaults-on Trainer turns on: its callbacks and loggers, by class name."""
    with scratch_dir() as root, silenced():
        trainer = fw.trainer(epochs, defaults=True, root=root, callbacks=None)
        callbacks = [type(c).__name__ for c in getattr(trainer, "callbacks", [])]
        loggers = [type(lg).__name__ for lg in getattr(trainer, "loggers", [])]
    return {"callbacks": callbacks, "loggers": loggers}


def log_probe(fw: Framework, tasks: Tasks, loader: Any) -> dict[str, float]:
    """``self.log`` microseconds per call, measured inside a running training_step."""
    model = fw.module(tasks.probe)
    with silenced():
        trainer = fw.trainer(1, defaults=False, root=None, callbacks=None, max_steps=1)
        trainer.fit(model, loader)
    return dict(model.probe)


def metric_store_probe() -> dict[str, float]:
    """``fulmen_loops.MetricStore.log`` alone (what ``self.log`` ends in), microseconds per call."""
    import torch
    from fulmen_loops import MetricStore

    value = torch.tensor(0.5, requires_grad=True) * 2
    batch = (torch.zeros(BATCH_SIZE, FEATURES), torch.zeros(BATCH_SIZE, dtype=torch.long))
    store = MetricStore(training=True)
    store.hook = "training_step"
    store.set_batch(batch, None)

    def log(name: str, on_epoch: bool | None) -> None:
        store.log(
            name,
            value,
            prog_bar=False,
            logger=None,
            on_step=None,
            on_epoch=on_epoch,
            reduce_fx="mean",
            enable_graph=False,
            sync_dist=False,
            add_dataloader_idx=True,
            batch_size=None,
            rank_zero_only=False,
        )

    return {
        "tensor, on_step (default)": _time_per_call(lambda: log("store_step", None), LOG_CALLS),
        "tensor, on_step+on_epoch": _time_per_call(lambda: log("store_epoch", True), LOG_CALLS),
    }


# ---------------------------------------------------------------------------------------- workers


def _reply(stream: IO[str], payload: object) -> None:
    stream.write(json.dumps(payload) + "\n")
    stream.flush()


def fits_worker(frameworks: Sequence[str], epochs: int, skip: Sequence[str]) -> None:
    """Serve timing rounds over stdin/stdout (one JSON line per command)."""
    import torch

    torch.set_num_threads(1)
    out = sys.stdout
    try:
        with silenced():
            fws = {name: Framework(name) for name in frameworks}
        tasks = define_tasks()
        loader = make_loader(epochs)
        configs = [c for name in frameworks for c in configs_for(name) if c.key not in skip]
        run_raw(tasks, loader, epochs)  # warm torch up, so that round 0 shows the frameworks' first-run costs
        _reply(
            out,
            {
                "ready": True,
                "python": platform.python_version(),
                "torch": torch.__version__,
                "versions": {name: fw.version for name, fw in fws.items()},
            },
        )
    except Exception as error:  # noqa: BLE001 - reported to the parent, which prints it
        _reply(out, {"ready": False, "error": f"{type(error).__name__}: {error}"})
        return
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        try:
            if command[0] == "round":
                index = int(command[1])
                shift = index % len(configs)
                order = configs[shift:] + configs[:shift]
                # raw, c1, raw, c2, ..., raw: each configuration sits between two raw loops.
                raw = [run_raw(tasks, loader, epochs)]
                times: dict[str, tuple[float, float]] = {}
                pairs: dict[str, list[tuple[float, float]]] = {}
                steps: dict[str, int] = {"raw": raw[0][2]}
                for config in order:
                    wall, cpu, steps[config.key] = run_config(config, fws[config.framework], tasks, loader, epochs)
                    times[config.key] = (wall, cpu)
                    raw.append(run_raw(tasks, loader, epochs))
                    pairs[config.key] = [raw[-2][:2], raw[-1][:2]]
                _reply(out, {"raw": [r[:2] for r in raw], "times": times, "pairs": pairs, "steps": steps})
            elif command[0] == "describe":  # after the cold round, so as not to warm it up
                _reply(out, {name: describe_defaults(fw, epochs) for name, fw in fws.items()})
            elif command[0] == "logbench":
                result: dict[str, dict[str, float]] = {}
                for name, fw in fws.items():
                    result[f"{name}: self.log"] = log_probe(fw, tasks, loader)
                    if name == "fulmen":
                        result["fulmen_loops.MetricStore.log"] = metric_store_probe()
                _reply(out, result)
            else:
                _reply(out, {"error": f"unknown command {command[0]!r}"})
        except Exception as error:  # noqa: BLE001 - reported to the parent, which prints it
            _reply(out, {"error": f"{type(error).__name__}: {error}"})


def memory_worker(key: str, epochs: int) -> None:
    """One configuration in a fresh process: peak RSS, RSS growth during a first fit, and the peak
    of Python allocations (tracemalloc) during a second, warm fit."""
    import torch

    torch.set_num_threads(1)
    framework = key.split("-", 1)[0]
    fw = None if framework == "raw" else Framework(framework)
    tasks = define_tasks()
    loader = make_loader(epochs)
    config = next((c for c in configs_for(framework) if c.key == key), None) if fw is not None else None

    def once() -> None:
        if fw is None or config is None:
            run_raw(tasks, loader, epochs)
        else:
            run_config(config, fw, tasks, loader, epochs)

    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    once()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gc.collect()
    tracemalloc.start()
    once()
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    unit = 1 if sys.platform == "darwin" else 1024
    print(json.dumps({"peak_rss": after * unit, "fit_rss": (after - before) * unit, "py_peak": py_peak}))


IMPORT_SNIPPET = """
import json, sys, time
start = time.perf_counter()
import torch
middle = time.perf_counter()
already = set(sys.modules)
import {module}
end = time.perf_counter()
heavy = {heavy!r}
added = set(sys.modules) - already
print(json.dumps({{"torch": middle - start, "extra": end - middle, "modules": len(added),
                  "loaded": [m for m in heavy if m in added],
                  "fulmen": sorted(m for m in added if m.startswith("fulmen") and "." not in m)}}))
"""


# ---------------------------------------------------------------------------------------- parent


class Worker:
    """A ``fits`` worker process: one interpreter, one or more frameworks."""

    def __init__(self, python: str, frameworks: Sequence[str], epochs: int, cwd: str, skip: Sequence[str] = ()) -> None:
        self.python = python
        self.frameworks = list(frameworks)
        command = [python, os.path.abspath(__file__), "--worker", "fits", "--frameworks", ",".join(frameworks)]
        command += ["--epochs", str(epochs), "--skip-configs", ",".join(skip)]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            return {"error": f"worker {self.python} ({','.join(self.frameworks)}) exited with {self.process.wait()}"}
        result: dict[str, Any] = json.loads(line)
        return result

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        if self.process.poll() is not None:
            return {"error": "worker is gone"}
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)


def has_lightning(python: str) -> bool:
    # Not realpath: a virtual environment's python is a symlink to the same base interpreter.
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return importlib.util.find_spec("lightning") is not None
    probe = subprocess.run([python, "-c", "import importlib.util as u; print(u.find_spec('lightning') is not None)"], capture_output=True, text=True)
    return probe.stdout.strip() == "True"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    align = right if right is not None else [False] + [True] * (len(headers) - 1)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, align)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def fit_section(workers: list[Worker], rounds: int, epochs: int, results: dict[str, Any]) -> None:
    # Per clock (0: wall time, 1: the process's CPU time), per configuration, one value per round.
    cold_times: dict[str, float] = {}
    times: list[dict[str, list[float]]] = [{}, {}]
    ratios: list[dict[str, list[float]]] = [{}, {}]
    per_step: list[dict[str, list[float]]] = [{}, {}]
    over_off: list[dict[str, list[float]]] = [{}, {}]
    for index in range(rounds + 1):  # round 0: the cold first run of each process (not in medians)
        for worker in workers:
            if "error" in worker.info:
                continue
            reply = worker.ask(f"round {index}")
            if "error" in reply:
                print(f"  round {index} failed in {worker.python}: {reply['error']}", file=sys.stderr)
                continue
            bad = {k: v for k, v in reply["steps"].items() if v != STEPS}
            if bad:
                print(f"  warning: configurations took {bad} steps instead of {STEPS}", file=sys.stderr)
            raw_key = f"raw-{worker.frameworks[0]}"
            for clock in (0, 1):
                raw_all = [r[clock] for r in reply["raw"]]
                if index == 0:
                    if clock == 0:
                        cold_times[raw_key] = statistics.median(raw_all)
                        for key, value in reply["times"].items():
                            cold_times[key] = value[0]
                    continue
                times[clock].setdefault(raw_key, []).append(statistics.median(raw_all))
                round_over: dict[str, float] = {}
                for key, value in reply["times"].items():
                    seconds = value[clock]
                    raw = statistics.fmean(p[clock] for p in reply["pairs"][key])
                    times[clock].setdefault(key, []).append(seconds)
                    ratios[clock].setdefault(key, []).append(seconds / raw)
                    round_over[key] = (seconds - raw) / STEPS * 1e6
                    per_step[clock].setdefault(key, []).append(round_over[key])
                for key, value in round_over.items():
                    off = round_over.get(f"{key.split('-')[0]}-off")
                    if off is not None and not key.endswith("-off"):
                        over_off[clock].setdefault(key, []).append(value - off)
        print(f"  round {index}/{rounds}{' (cold, not counted)' if index == 0 else ''} done", file=sys.stderr)
    for worker in workers:
        if "error" not in worker.info:
            described = worker.ask("describe")
            if "error" not in described:
                worker.info["defaults"] = described

    # A first run over the median warm raw loop of its process (see the legend printed below).
    cold: dict[str, float] = {}
    for worker in workers:
        raw_key = f"raw-{worker.frameworks[0]}"
        if raw_key in times[0]:
            for name in [raw_key] + [c.key for n in worker.frameworks for c in configs_for(n)]:
                if name in cold_times:
                    cold[name] = cold_times[name] / _median(times[0][raw_key])
    rows: list[list[str]] = []
    notes: list[str] = []
    for worker in workers:
        if "error" in worker.info:
            continue
        first = worker.frameworks[0]
        raw_key = f"raw-{first}"
        keys = [raw_key] + [c.key for name in worker.frameworks for c in configs_for(name)]
        labels = {raw_key: f"raw PyTorch loop ({' + '.join(worker.frameworks)} process)"}
        budgets: dict[str, float | None] = {}
        for name in worker.frameworks:
            for c in configs_for(name):
                labels[c.key] = c.label
                budgets[c.key] = c.budget
        for key in keys:
            if key not in times[0]:
                continue
            is_raw = key == raw_key
            wall = ratios[0].get(key, [1.0])
            cpu = ratios[1].get(key, [1.0])
            best = min(times[0][key]) / min(times[0][raw_key])
            budget = budgets.get(key)
            rows.append(
                [
                    labels[key],
                    f"{_median(times[0][key]) * 1e3:.0f}",
                    _fmt(_median(wall)),
                    f"{min(wall):.2f}-{max(wall):.2f}",
                    _fmt(best),
                    "-" if is_raw else f"{_median(per_step[0][key]):.0f}",
                    _fmt(_median(cpu)),
                    "-" if is_raw else f"{_median(per_step[1][key]):.0f}",
                    _fmt(cold.get(key, math.nan)),
                    "" if budget is None else f"<= {budget:.2f}" + (" ok" if _median(wall) <= budget else " OVER"),
                ]
            )
            if key in over_off[0]:
                extra_wall, extra_cpu = _median(over_off[0][key]), _median(over_off[1][key])
                per = ""
                if key.endswith("-metrics"):
                    per = f" = {extra_wall / N_METRICS:.1f} wall / {extra_cpu / N_METRICS:.1f} CPU us per self.log call"
                notes.append(f"  {labels[key]}: {extra_wall:+.0f} wall / {extra_cpu:+.0f} CPU us per step{per}")
            results.setdefault("fit", {})[key] = {
                "label": labels[key],
                "median_wall_s": _median(times[0][key]),
                "median_cpu_s": _median(times[1][key]),
                "ratio_wall": _median(wall),
                "ratio_wall_best": best,
                "ratio_cpu": _median(cpu),
                "ratios_wall": wall,
                "ratios_cpu": cpu,
                "us_per_step_wall": 0.0 if is_raw else _median(per_step[0][key]),
                "us_per_step_cpu": 0.0 if is_raw else _median(per_step[1][key]),
                "us_per_step_over_off_wall": _median(over_off[0].get(key, [])),
                "us_per_step_over_off_cpu": _median(over_off[1].get(key, [])),
                "cold_ratio_wall": cold.get(key),
            }
    print()
    print(
        f"Trainer(...) + fit vs a raw loop in the same process: {STEPS} steps ({epochs} epoch(s) x {STEPS // epochs} "
        f"batches of {BATCH_SIZE}), MLP {FEATURES}-{HIDDEN}-{CLASSES}, SGD, CPU, 1 thread; medians of {rounds} "
        "interleaved rounds"
    )
    print(
        _table(
            ["configuration", "wall ms", "ratio", "min-max", "best", "us/step", "CPU ratio", "CPU us/step", "cold", "budget (ratio)"],
            rows,
            [False, True, True, True, True, True, True, True, True, False],
        )
    )
    print(
        "  ratio: median over rounds of wall time / the mean of the raw loops run just before and after;\n"
        "  best: fastest run / fastest raw run; us/step: (time - raw) / steps, construction and start-up included;\n"
        "  CPU: the same with the process's CPU time (less disturbed by other work on the machine);\n"
        "  cold: the first run of the configuration in its process (after one untimed raw loop; lazy imports and\n"
        "  first-call costs included, shared with the configurations run before it in that round) / the median raw loop"
    )
    if notes:
        print("Scaling, per step over features off (same round):")
        print("\n".join(notes))
    for worker in workers:
        if "error" in worker.info:
            print(f"  not run: {worker.info['error']}")
            continue
        for name, parts in worker.info.get("defaults", {}).items():
            print(f"{name} {worker.info['versions'][name]} defaults on = callbacks {parts['callbacks']}, loggers {parts['loggers']}")


def import_section(python: str, lightning_python: str | None, reps: int, results: dict[str, Any]) -> None:
    jobs = [(python, "fulmen"), (python, "fulmen_core")]
    if lightning_python is not None:
        jobs.append((lightning_python, "lightning"))
    found: dict[str, list[dict[str, Any]]] = {}
    with scratch_dir() as cwd:
        for _ in range(reps):
            for interpreter, module in jobs:
                code = IMPORT_SNIPPET.format(module=module, heavy=HEAVY_MODULES)
                done = subprocess.run([interpreter, "-c", code], capture_output=True, text=True, cwd=cwd)
                if done.returncode != 0:
                    print(f"  import {module} failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                    continue
                found.setdefault(module, []).append(json.loads(done.stdout.strip().splitlines()[-1]))
    rows = []
    for _, module in jobs:
        runs = found.get(module)
        if not runs:
            continue
        extra = _median([r["extra"] for r in runs])
        torch_s = _median([r["torch"] for r in runs])
        loaded = sorted({m for r in runs for m in r["loaded"] if m != module})
        own = sorted({m for r in runs for m in r["fulmen"]})
        budget = f"<= {IMPORT_BUDGET_S:.2f}" + (" ok" if extra <= IMPORT_BUDGET_S else " OVER") if module == "fulmen" else ""
        modules = int(_median([r["modules"] for r in runs]))
        rows.append(
            [
                f"import {module}",
                f"{torch_s:.3f}",
                f"{extra:.3f}",
                f"{min(r['extra'] for r in runs):.3f}",
                budget,
                str(modules),
                ", ".join(loaded) or "none",
                ", ".join(own) or "-",
            ]
        )
        results.setdefault("imports", {})[module] = {
            "torch_s": torch_s,
            "over_torch_s": extra,
            "modules": modules,
            "heavy": loaded,
            "fulmen_packages": own,
        }
    print()
    print(f"Import time over torch (fresh processes, torch imported first; medians of {reps})")
    print(
        _table(
            ["import", "torch s", "over torch s", "min", "budget", "modules added", "heavy modules added", "fulmen packages"],
            rows,
            [False, True, True, True, False, True, False, False],
        )
    )


def memory_section(python: str, lightning_python: str | None, epochs: int, results: dict[str, Any]) -> None:
    jobs = [(python, "raw-fulmen"), (python, "fulmen-off"), (python, "fulmen-on")]
    if lightning_python is not None:
        if lightning_python != python:
            jobs.append((lightning_python, "raw-lightning"))
        jobs += [(lightning_python, "lightning-off"), (lightning_python, "lightning-on")]
    rows = []
    with scratch_dir() as cwd:
        for interpreter, key in jobs:
            worker_key = "raw" if key.startswith("raw") else key
            done = subprocess.run(
                [interpreter, os.path.abspath(__file__), "--worker", "memory", "--config", worker_key, "--epochs", str(epochs)],
                capture_output=True,
                text=True,
                cwd=cwd,
            )
            if done.returncode != 0:
                print(f"  memory {key} failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                continue
            m = json.loads(done.stdout.strip().splitlines()[-1])
            label = "raw loop" + (" (Lightning's interpreter)" if key == "raw-lightning" else "") if key.startswith("raw") else key
            rows.append([label, f"{m['peak_rss'] / 2**20:.0f}", f"{m['fit_rss'] / 2**20:.1f}", f"{m['py_peak'] / 2**20:.2f}"])
            results.setdefault("memory", {})[key] = m
    print()
    print("Memory (one fresh process per row)")
    print(_table(["configuration", "peak RSS MiB", "RSS growth in 1st fit MiB", "Python peak in 2nd fit MiB (tracemalloc)"], rows))


def log_section(workers: list[Worker], results: dict[str, Any]) -> None:
    rows = []
    for worker in workers:
        if "error" in worker.info:
            continue
        reply = worker.ask("logbench")
        if "error" in reply:
            print(f"  self.log probe failed in {worker.python}: {reply['error']}", file=sys.stderr)
            continue
        for path, figures in reply.items():
            for case, us in figures.items():
                rows.append([path, case, f"{us:.2f}"])
        results.setdefault("log", {}).update(reply)
    print()
    print(f"self.log of a scalar, microseconds per call (best of 5 loops of up to {LOG_CALLS} calls, about 20 ms each, in one training_step)")
    print(_table(["path", "value", "us/call"], rows, [False, False, True]))


def _timed(name: str, section: Callable[[], None]) -> None:
    start = time.perf_counter()
    section()
    sys.stdout.flush()
    print(f"  ({name} section: {time.perf_counter() - start:.0f} s)", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (default 7; --quick: 3)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and import repetitions")
    parser.add_argument("--epochs", type=int, default=8, choices=[1, 2, 4, 5, 8, 10, 16, 20, 25, 40, 50, 100], help=f"split the {STEPS} steps into this many epochs (default 8 x 100)")
    parser.add_argument("--import-reps", type=int, default=7, help="fresh processes per import measurement (default 7; --quick: 3)")
    parser.add_argument(
        "--lightning-python",
        default=os.environ.get("FULMEN_BENCH_LIGHTNING_PYTHON"),
        help="an interpreter with lightning installed, when this one lacks it "
        "(default: $FULMEN_BENCH_LIGHTNING_PYTHON)",
    )
    parser.add_argument("--no-lightning", action="store_true", help="skip the Lightning rows")
    parser.add_argument(
        "--lightning-scaling",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time Lightning with metrics and callbacks (default: yes, but not with --quick; "
        "Lightning's self.log is slow, so these rows take most of the run)",
    )
    parser.add_argument("--skip", action="append", default=[], choices=["fit", "import", "memory", "log"], help="skip a section (repeatable)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")
    parser.add_argument("--worker", choices=["fits", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--frameworks", default="fulmen", help=argparse.SUPPRESS)
    parser.add_argument("--config", default="fulmen-off", help=argparse.SUPPRESS)
    parser.add_argument("--skip-configs", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker == "fits":
        fits_worker(args.frameworks.split(","), args.epochs, args.skip_configs.split(","))
        return 0
    if args.worker == "memory":
        memory_worker(args.config, args.epochs)
        return 0

    if args.rounds < 1 or args.import_reps < 1:
        parser.error("--rounds and --import-reps must be at least 1")
    rounds = 3 if args.quick and args.rounds == 7 else args.rounds
    import_reps = 3 if args.quick and args.import_reps == 7 else args.import_reps
    python = sys.executable
    lightning_python: str | None = None
    note = ""
    if not args.no_lightning:
        if has_lightning(python):
            lightning_python = python
        elif args.lightning_python and has_lightning(args.lightning_python):
            lightning_python = args.lightning_python
        else:
            note = (
                "Lightning rows skipped: `lightning` is not importable here"
                + (f" nor with {args.lightning_python}" if args.lightning_python else "")
                + "; pass --lightning-python /path/to/venv/bin/python (or set FULMEN_BENCH_LIGHTNING_PYTHON)"
            )
    cores = os.cpu_count()
    load = os.getloadavg()
    print(
        f"fulmen overhead benchmark  {time.strftime('%Y-%m-%d %H:%M')}  {platform.system()} {platform.machine()}, "
        f"{cores} cores, Python {platform.python_version()}, load average {load[0]:.2f} at start"
    )
    if note:
        print(note)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "cores": cores, "rounds": rounds, "epochs": args.epochs}
    started = time.perf_counter()
    with scratch_dir() as cwd:
        workers: list[Worker] = []
        scaling = args.lightning_scaling if args.lightning_scaling is not None else not args.quick
        skip = [] if scaling else ["lightning-metrics", "lightning-callbacks"]
        if "fit" not in args.skip or "log" not in args.skip:
            if lightning_python == python:
                workers.append(Worker(python, ["fulmen", "lightning"], args.epochs, cwd, skip))
            else:
                workers.append(Worker(python, ["fulmen"], args.epochs, cwd))
                if lightning_python is not None:
                    workers.append(Worker(lightning_python, ["lightning"], args.epochs, cwd, skip))
            for worker in workers:
                if "error" not in worker.info:
                    print(
                        f"worker: Python {worker.info['python']}, torch {worker.info['torch']}, "
                        + ", ".join(f"{k} {v}" for k, v in worker.info["versions"].items()),
                    )
        try:
            if "fit" not in args.skip:
                _timed("fit", lambda: fit_section(workers, rounds, args.epochs, results))
            if "log" not in args.skip:
                _timed("self.log", lambda: log_section(workers, results))
        finally:
            for worker in workers:
                worker.close()
    if "import" not in args.skip:
        _timed("import", lambda: import_section(python, lightning_python, import_reps, results))
    if "memory" not in args.skip:
        _timed("memory", lambda: memory_section(python, lightning_python, args.epochs, results))
    print()
    print(f"done in {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.2f} at end")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
