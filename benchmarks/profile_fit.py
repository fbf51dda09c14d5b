#!/usr/bin/env python
"""Where fulmen's per-step time goes: cProfile over one warm ``fit`` (features off by default).

Run ``python benchmarks/profile_fit.py`` (``--defaults`` for the defaults-on Trainer, ``--top N``
for more rows). It prints the Python-level calls per step of the raw loop and of fulmen, and
fulmen's own functions (everything under ``packages/`` and ``src/fulmen``) by their own time.

cProfile charges a fixed cost to every Python call, so it exaggerates code made of many small calls
(which is what a training loop's overhead is): read the table for *what* is called and how often,
and ``bench_overhead.py`` for how much it costs. The workload is bench_overhead's.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
from collections.abc import Callable, Sequence

import bench_overhead as bench

ROOTS = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), part)
    for part in ("packages", os.path.join("src", "fulmen"))
)


def profile(run: Callable[[], object]) -> pstats.Stats:
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    return pstats.Stats(profiler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--defaults", action="store_true", help="profile the defaults-on Trainer")
    parser.add_argument("--epochs", type=int, default=8, help="split the 800 steps into this many epochs")
    parser.add_argument("--top", type=int, default=25, help="rows of fulmen functions to print")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    framework = bench.Framework("fulmen")
    tasks = bench.define_tasks()
    loader = bench.make_loader(args.epochs)
    config = bench.configs_for("fulmen")[1 if args.defaults else 0]

    def fit() -> None:
        bench.run_config(config, framework, tasks, loader, args.epochs)

    def raw() -> None:
        bench.run_raw(tasks, loader, args.epochs)

    fit()  # warm: lazy imports and first-call costs are not per-step costs
    raw()
    raw_stats = profile(raw)
    fit_stats = profile(fit)
    steps = bench.STEPS
    raw_calls = raw_stats.total_calls / steps  # type: ignore[attr-defined]  # set by Stats, not in typeshed
    fit_calls = fit_stats.total_calls / steps  # type: ignore[attr-defined]
    print(f"{config.label}: {fit_calls:.0f} Python-level calls per step, raw loop {raw_calls:.0f} (+{fit_calls - raw_calls:.0f})")
    rows = []
    stats: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = fit_stats.stats  # type: ignore[attr-defined]
    for (path, line, name), (_, calls, own, cumulative, _) in stats.items():
        if path.startswith(ROOTS):
            rows.append((own, cumulative, calls, os.path.relpath(path, os.path.dirname(ROOTS[0])), line, name))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    print(f"fulmen's own code: {total * 1e3:.1f} ms profiled = {total / steps * 1e6:.1f} us/step (inflated by cProfile)")
    print(f"{'calls/step':>10}  {'own us/step':>11}  {'cum us/step':>11}  function")
    for own, cumulative, calls, path, line, name in rows[: args.top]:
        print(f"{calls / steps:10.2f}  {own / steps * 1e6:11.2f}  {cumulative / steps * 1e6:11.1f}  {path}:{line}({name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
