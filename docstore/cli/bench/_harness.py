"""Timing and reporting: rounds that alternate the sides of a comparison, medians, ratios."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Result", "Side", "Stat", "measure", "ratio_result"]


@dataclass
class Side:
    """One side of a comparison.

    ``run(round)`` does the timed work and returns how many operations it did;
    ``prepare(round)``, untimed, builds its inputs or resets the data before it.
    """

    label: str
    run: Callable[[int], int]
    prepare: Callable[[int], None] | None = None


@dataclass
class Stat:
    """Per-operation timings of one side over all rounds."""

    label: str
    wall: list[float] = field(default_factory=list)  # seconds per op, one per round
    cpu: list[float] = field(default_factory=list)  # this process's CPU seconds per op

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def ops_per_s(self) -> float:
        return 1.0 / self.median if self.median > 0 else float("inf")

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "median_s": self.median,
            "ops_per_s": self.ops_per_s,
            "client_cpu_s": self.cpu_median,
            "rounds_s": self.wall,
        }


def measure(rounds: int, sides: list[Side], warmup: bool = True) -> list[Stat]:
    """Run every side once per round, rotating their order each round so that drift in
    the machine's load falls on all sides alike; returns per-op timings per side."""
    stats = [Stat(side.label) for side in sides]
    if warmup:  # fills caches, and gets psycopg to prepare the statements
        for side in sides:
            if side.prepare is not None:
                side.prepare(-1)
            side.run(-1)
    for r in range(rounds):
        shift = r % len(sides)
        order = list(range(shift, len(sides))) + list(range(shift))
        for i in order:
            side = sides[i]
            if side.prepare is not None:
                side.prepare(r)
            gc.collect()
            cpu0, t0 = time.process_time(), time.perf_counter()
            ops = side.run(r)
            t1, cpu1 = time.perf_counter(), time.process_time()
            stats[i].wall.append((t1 - t0) / ops)
            stats[i].cpu.append((cpu1 - cpu0) / ops)
    return stats


Compare = Literal[">=", "<="]


@dataclass
class Result:
    """One row of the results table: a measured ratio against its target."""

    key: str
    workload: str
    baseline: str
    compare: Compare
    limit: float
    ratio: float
    unit: str = "x"
    docstore: Stat | None = None
    base: Stat | None = None
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.ratio >= self.limit if self.compare == ">=" else self.ratio <= self.limit

    @property
    def target(self) -> str:
        return f"{self.compare} {self.limit:g}{' ' if self.unit != 'x' else ''}{self.unit}"

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "workload": self.workload,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "unit": self.unit,
            "target": self.target,
            "passed": self.passed,
            "note": self.note,
            "docstore": self.docstore.as_json() if self.docstore else None,
            "base": self.base.as_json() if self.base else None,
        }


def ratio_result(
    key: str,
    workload: str,
    baseline: str,
    ds: Stat,
    base: Stat,
    compare: Compare,
    limit: float,
    how: Literal["speed", "time"],
    note: str = "",
) -> Result:
    """``how="speed"``: docstore's ops/s over the baseline's (higher is better);
    ``how="time"``: docstore's time over the baseline's (lower is better)."""
    ratio = base.median / ds.median if how == "speed" else ds.median / base.median
    return Result(key, workload, baseline, compare, limit, ratio, "x", ds, base, note)
