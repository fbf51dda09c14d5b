"""The profilers: ``SimpleProfiler`` (wall time per action), ``AdvancedProfiler`` (cProfile per
action), ``PyTorchProfiler`` (a ``torch.profiler`` trace) and ``PassThroughProfiler`` (nothing).

``cProfile``, ``pstats`` and ``torch.profiler`` are imported when a profiler first records, so that
importing fulmen-loops stays cheap.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import cProfile

    import torch.profiler

__all__ = ["AdvancedProfiler", "PassThroughProfiler", "PyTorchProfiler", "SimpleProfiler"]


class _ReportingProfiler:
    """What the profilers share: the stage they record, and where their report goes.

    A report goes to ``dirpath/{stage}-{filename}.txt`` (``{stage}-{filename}-{local_rank}.txt``
    with several processes) when ``filename`` is given, with ``dirpath`` defaulting to the run's
    ``log_dir``; otherwise it is printed (by local rank zero only).
    """

    def __init__(self, dirpath: str | os.PathLike[str] | None = None, filename: str | None = None) -> None:
        self.dirpath = os.fspath(dirpath) if dirpath is not None else None
        self.filename = filename
        self._stage: str | None = None
        self._local_rank: int | None = None
        self._log_dir: str | None = None

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        """Remember the stage, the process's rank and the run's directory."""
        self._stage = stage
        self._local_rank = local_rank
        self._log_dir = log_dir

    def start(self, action_name: str) -> None:
        raise NotImplementedError

    def stop(self, action_name: str) -> None:
        raise NotImplementedError

    def summary(self) -> str:
        raise NotImplementedError

    @contextlib.contextmanager
    def profile(self, action_name: str) -> Iterator[None]:
        """Record ``action_name`` around the ``with`` block."""
        self.start(action_name)
        try:
            yield
        finally:
            self.stop(action_name)

    def teardown(self, stage: str | None) -> None:
        """Nothing held between stages by default."""

    def describe(self) -> None:
        """Write :meth:`summary` to the report file, or print it when there is no file name."""
        report = self.summary()
        if not report:
            return
        path = self._output_path(".txt")
        if path is None:
            if not self._local_rank:  # None (one process) or local rank zero
                print(report)
            return
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        # Appended, as in Lightning: a second stage (or run) with the same name adds its report.
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(report + "\n")

    def _directory(self) -> str:
        return self.dirpath or self._log_dir or os.getcwd()

    def _file_stem(self, name: str | None, action_name: str | None = None) -> str:
        parts = [part for part in (self._stage, name) if part]
        if self._local_rank is not None:
            parts.append(str(self._local_rank))
        if action_name is not None:
            parts.append(action_name)
        return "-".join(parts)

    def _output_path(self, extension: str, action_name: str | None = None) -> str | None:
        if not self.filename:
            return None
        return os.path.join(self._directory(), self._file_stem(self.filename, action_name) + extension)

    def _title(self) -> str:
        return f"{self._stage.upper()} Profiler Report" if self._stage else "Profiler Report"


class PassThroughProfiler(_ReportingProfiler):
    """Records nothing: what ``trainer.profiler`` is when no profiler was asked for, so that user code
    such as ``with self.trainer.profiler.profile("my_action"):`` runs either way."""

    def start(self, action_name: str) -> None:
        """Nothing to record."""

    def stop(self, action_name: str) -> None:
        """Nothing to record."""

    def summary(self) -> str:
        """No report."""
        return ""


class SimpleProfiler(_ReportingProfiler):
    """Wall time per action: calls, mean and total, and each action's share of the stage.

    ``extended=False`` leaves out the call counts and percentages. Each :meth:`setup` (a new stage)
    starts a fresh record, so every report covers one stage (Lightning keeps adding up across stages).
    """

    def __init__(
        self, dirpath: str | os.PathLike[str] | None = None, filename: str | None = None, extended: bool = True
    ) -> None:
        super().__init__(dirpath, filename)
        self.extended = extended
        self._started: dict[str, float] = {}
        # action -> [number of calls, total seconds]; two numbers, however long the run
        self._recorded: dict[str, list[float]] = {}
        self._stage_started = time.perf_counter()

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        """Start a fresh record for ``stage``."""
        super().setup(stage, local_rank, log_dir)
        self._started = {}
        self._recorded = {}
        self._stage_started = time.perf_counter()

    def start(self, action_name: str) -> None:
        """Note when ``action_name`` started; an action already running is an error."""
        if action_name in self._started:
            raise ValueError(f"profiler action {action_name!r} was started again before it stopped")
        self._started[action_name] = time.perf_counter()

    def stop(self, action_name: str) -> None:
        """Add the time since :meth:`start` to ``action_name``'s record."""
        ended = time.perf_counter()
        started = self._started.pop(action_name, None)
        if started is None:
            raise ValueError(f"profiler action {action_name!r} was stopped but never started")
        record = self._recorded.get(action_name)
        if record is None:
            self._recorded[action_name] = [1, ended - started]
        else:
            record[0] += 1
            record[1] += ended - started

    @property
    def recorded(self) -> dict[str, tuple[int, float]]:
        """Each action's number of calls and total seconds so far."""
        return {name: (int(count), total) for name, (count, total) in self._recorded.items()}

    def summary(self) -> str:
        """A table of the actions, the longest in total first."""
        rows = sorted(self._recorded.items(), key=lambda item: item[1][1], reverse=True)
        if self.extended:
            return self._extended_table(rows)
        header = ("Action", "Mean duration (s)", "Total time (s)")
        cells = [(name, _number(total / count), _number(total)) for name, (count, total) in rows]
        return _table(self._title(), header, [], cells)

    def _extended_table(self, rows: list[tuple[str, list[float]]]) -> str:
        stage_seconds = max(time.perf_counter() - self._stage_started, 1e-12)
        header = ("Action", "Mean duration (s)", "Num calls", "Total time (s)", "Percentage %")
        calls = int(sum(count for count, _ in self._recorded.values()))
        total_row = ("Total", "-", str(calls), _number(stage_seconds), "100 %")
        cells = [
            (name, _number(total / count), str(int(count)), _number(total), _number(100.0 * total / stage_seconds))
            for name, (count, total) in rows
        ]
        return _table(self._title(), header, [total_row], cells)


def _number(value: float) -> str:
    return f"{value:.5g}"


def _table(
    title: str, header: tuple[str, ...], totals: Sequence[tuple[str, ...]], rows: Sequence[tuple[str, ...]]
) -> str:
    """Lightning's report layout: a title, then ``|``-separated columns under rules."""
    widths = [max(len(row[i]) for row in [header, *totals, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "|  " + "  |  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  |"

    rule = "-" * len(line(header))
    lines = [title, "", rule, line(header), rule]
    if totals:
        lines += [line(row) for row in totals] + [rule]
    lines += [line(row) for row in rows] + [rule]
    return "\n".join(lines)


class AdvancedProfiler(_ReportingProfiler):
    """A ``cProfile`` profile per action, reported with ``pstats`` (sorted by cumulative time).

    ``line_count_restriction`` limits each action's listing (an int: that many lines; a float:
    that fraction). Nested actions: only the innermost running action's profile records, so an
    outer action's listing leaves out time spent in a profiled inner action (Python allows one
    active profiler at a time). ``dump_stats=True`` also writes each action's profile to
    ``{stage}-{filename}-{action}.prof`` for tools such as snakeviz.
    """

    def __init__(
        self,
        dirpath: str | os.PathLike[str] | None = None,
        filename: str | None = None,
        line_count_restriction: float = 1.0,
        dump_stats: bool = False,
    ) -> None:
        super().__init__(dirpath, filename)
        self.line_count_restriction = line_count_restriction
        self.dump_stats = dump_stats
        self._profiles: dict[str, cProfile.Profile] = {}
        self._running: list[str] = []

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        """Start fresh profiles for ``stage``."""
        super().setup(stage, local_rank, log_dir)
        self._profiles = {}
        self._running = []

    def start(self, action_name: str) -> None:
        """Pause the running action's profile, if any, and profile ``action_name``."""
        import cProfile

        if action_name in self._running:
            raise ValueError(f"profiler action {action_name!r} was started again before it stopped")
        if self._running:
            self._profiles[self._running[-1]].disable()
        profile = self._profiles.get(action_name)
        if profile is None:
            profile = self._profiles[action_name] = cProfile.Profile()
        self._running.append(action_name)
        profile.enable()

    def stop(self, action_name: str) -> None:
        """Stop ``action_name``'s profile and resume the action it interrupted."""
        if not self._running or self._running[-1] != action_name:
            raise ValueError(
                f"profiler action {action_name!r} was stopped but is not the running action "
                f"(running: {self._running}); stop actions in the reverse order of starting them"
            )
        self._profiles[action_name].disable()
        self._running.pop()
        if self._running:
            self._profiles[self._running[-1]].enable()

    def summary(self) -> str:
        """Each action's pstats listing under ``Profile stats for: <action>``."""
        import pstats

        if not self._profiles:
            return ""
        parts = [self._title(), ""]
        for action_name, profile in self._profiles.items():
            stream = io.StringIO()
            try:
                stats = pstats.Stats(profile, stream=stream)
            except TypeError:  # a profile that recorded no call has no stats
                continue
            stats.strip_dirs().sort_stats("cumulative").print_stats(self.line_count_restriction)
            parts.append(f"Profile stats for: {action_name}\n{stream.getvalue()}")
            if self.dump_stats and self.filename:
                path = self._output_path(".prof", action_name)
                assert path is not None
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                profile.dump_stats(path)
        return "\n".join(parts)

    def teardown(self, stage: str | None) -> None:
        """Stop any profile left running (a stage that raised)."""
        for action_name in self._running:
            self._profiles[action_name].disable()
        self._running = []


# Actions that end one step: with a ``schedule`` the torch profiler advances at each.
_STEP_ACTIONS = ("run_training_batch",)
_STEP_SUFFIXES = (".validation_step", ".test_step", ".predict_step")


class PyTorchProfiler(_ReportingProfiler):
    """``torch.profiler`` over the stage, each fulmen action a ``record_function`` range in it.

    Writes a Chrome trace (``{stage}-{filename or "pytorch"}.pt.trace.json``, JSON with
    ``traceEvents``) into ``dirpath``, else the run's ``log_dir``: open it in Perfetto
    (ui.perfetto.dev), ``chrome://tracing``, or TensorBoard's profiler plugin. The report is
    ``key_averages().table(...)`` sorted by ``sort_by_key`` (device time when CUDA is available,
    else CPU time). With a ``schedule`` (``torch.profiler.schedule(...)``), the profiler steps at each
    training batch and each evaluation/prediction step, and every active window writes its own trace
    (``...-{step}.pt.trace.json``). Other keyword arguments go to ``torch.profiler.profile``.
    """

    def __init__(
        self,
        dirpath: str | os.PathLike[str] | None = None,
        filename: str | None = None,
        export_to_chrome: bool = True,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        schedule: Callable[[int], Any] | None = None,
        sort_by_key: str | None = None,
        row_limit: int = 20,
        **profiler_kwargs: Any,
    ) -> None:
        super().__init__(dirpath, filename)
        self.export_to_chrome = export_to_chrome
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.schedule = schedule
        self.sort_by_key = sort_by_key
        self.row_limit = row_limit
        self.profiler_kwargs = profiler_kwargs
        self._trace: torch.profiler.profile | None = None
        self._ranges: dict[str, list[Any]] = {}
        self._report = ""
        #: The trace files written so far.
        self.trace_paths: list[str] = []

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        """Prepare a fresh trace for ``stage`` (it starts with the first action)."""
        self._finish()
        super().setup(stage, local_rank, log_dir)
        self._report = ""

    def start(self, action_name: str) -> None:
        """Open a ``record_function`` range named ``action_name`` (starting the trace if needed)."""
        from torch.profiler import record_function

        if self._trace is None:
            self._begin()
        scope = record_function(action_name)
        scope.__enter__()  # type: ignore[no-untyped-call]  # unannotated in torch; closed in stop()
        self._ranges.setdefault(action_name, []).append(scope)

    def stop(self, action_name: str) -> None:
        """Close ``action_name``'s range; step the schedule at the end of a step."""
        scopes = self._ranges.get(action_name)
        if not scopes:
            raise ValueError(f"profiler action {action_name!r} was stopped but never started")
        scopes.pop().__exit__(None, None, None)
        trace = self._trace
        if self.schedule is not None and trace is not None and (
            action_name in _STEP_ACTIONS
            or (action_name.startswith("[Strategy]") and action_name.endswith(_STEP_SUFFIXES))
        ):
            trace.step()

    def summary(self) -> str:
        """Stop the trace (writing it) and return its table of operators."""
        self._finish()
        return self._report

    def teardown(self, stage: str | None) -> None:
        """Stop the trace if it still runs (a stage that raised writes what it recorded)."""
        self._finish()

    def _begin(self) -> None:
        import torch.profiler

        options: dict[str, Any] = {
            "record_shapes": self.record_shapes,
            "profile_memory": self.profile_memory,
            "with_stack": self.with_stack,
            **self.profiler_kwargs,
        }
        if self.schedule is not None:
            options["schedule"] = self.schedule
            options["on_trace_ready"] = self._write_window
        self._trace = torch.profiler.profile(**options)
        self._trace.start()

    def _finish(self) -> None:
        trace = self._trace
        if trace is None:
            return
        self._trace = None
        for scopes in self._ranges.values():
            while scopes:
                scopes.pop().__exit__(None, None, None)
        trace.stop()
        if self.schedule is None and self.export_to_chrome:
            self._export(trace, self._trace_path(None))
        self._report = self._table(trace)

    def _write_window(self, trace: torch.profiler.profile) -> None:
        if self.export_to_chrome:
            self._export(trace, self._trace_path(trace.step_num))

    def _trace_path(self, step: int | None) -> str:
        stem = self._file_stem(self.filename or "pytorch", None if step is None else str(step))
        return os.path.join(self._directory(), stem + ".pt.trace.json")

    def _export(self, trace: torch.profiler.profile, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        trace.export_chrome_trace(path)
        self.trace_paths.append(path)

    def _table(self, trace: torch.profiler.profile) -> str:
        import torch

        sort_by = self.sort_by_key or ("device_time_total" if torch.cuda.is_available() else "cpu_time_total")
        try:
            table = trace.key_averages().table(sort_by=sort_by, row_limit=self.row_limit)
        except (AssertionError, RuntimeError, AttributeError):  # no window was recorded
            return ""
        return f"{self._title()}\n\n{table}"
