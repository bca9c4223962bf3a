"""Run a plan against a world, check the record, and shrink a failing plan.

``run(world, plan)`` carries out the steps (each step's operations on threads of their
own, all at once), lets the feeds settle, and returns the :class:`Record`. ``shrink``
drops steps, then single operations, while the same property still fails, within a time
budget, and keeps the shortest plan that failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .history import Final
from .hosts import Consumer
from .ops import Fault, Plan, Step
from .properties import Record, check, missing_deliveries
from .worlds import World

MakeWorld = Callable[[], World]
EMPTY = Final(stored={}, watched=None, watch_error=None, tokens={}, traces={}, logs=[], secrets=set())


def run(make_world: MakeWorld, plan: Plan, scenario: str, seed: int) -> Record:
    world = make_world()
    moves: list[tuple[float, float]] = []

    def missing(consumer: Consumer) -> int:
        if consumer.segment is None:
            return 0
        partial = Record(scenario, seed, plan, world.history, EMPTY, world.primary_readers, moves)
        return len(missing_deliveries(partial, consumer.segment))

    world.missing = missing
    try:
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="checker-step") as pool:
            for step in plan:
                for future in [pool.submit(world.execute, op) for op in step]:
                    future.result()
        moves += [(c.start, c.end) for c in world.history.calls if c.op == Fault("move")]
        final = world.finish()
        return Record(scenario, seed, plan, world.history, final, world.primary_readers, moves)
    finally:
        world.close()


@dataclass
class Outcome:
    """A checked run; for each property it broke, the shortest failing plan found."""

    record: Record
    violations: dict[str, list[str]]
    shrunk: dict[str, Record] = field(default_factory=dict)
    shrink_seconds: float = 0.0
    runs: int = 1


def run_and_check(
    make_world: MakeWorld, plan: Plan, scenario: str, seed: int, shrink_budget: float
) -> Outcome:
    """Run ``plan`` and check it; a failing run is shrunk for each property it broke,
    sharing ``shrink_budget`` seconds among them."""
    record = run(make_world, plan, scenario, seed)
    outcome = Outcome(record, check(record))
    began = time.monotonic()
    for n, target in enumerate(sorted(outcome.violations)):
        left = began + shrink_budget - time.monotonic()
        share = left / (len(outcome.violations) - n)
        if share < 1:
            break
        shrunk, runs = shrink(make_world, plan, scenario, seed, target, share)
        outcome.runs += runs
        if shrunk is not None:
            outcome.shrunk[target] = shrunk
    outcome.shrink_seconds = time.monotonic() - began
    return outcome


def shrink(
    make_world: MakeWorld, plan: Plan, scenario: str, seed: int, target: str, budget: float
) -> tuple[Record | None, int]:
    """Drop steps (halves, quarters, ... single ones), then operations of the steps left,
    while ``target`` still fails; stop when the budget is spent. Returns the record of the
    shortest plan that failed (None if no shorter one did) and how many runs it took."""
    deadline = time.monotonic() + budget
    best: Record | None = None
    runs = 0

    def fails(candidate: Plan) -> bool:
        nonlocal best, runs
        if not candidate or time.monotonic() > deadline:
            return False
        runs += 1
        record = run(make_world, candidate, scenario, seed)
        if target in check(record):
            best = record
            return True
        return False

    chunks = 2
    while len(plan) > 1 and time.monotonic() < deadline:
        size = max(1, len(plan) // chunks)
        for start in range(0, len(plan), size):
            candidate = plan[:start] + plan[start + size :]
            if fails(candidate):
                plan = candidate
                chunks = max(chunks - 1, 2)
                break
        else:
            if size == 1:
                break
            chunks = min(chunks * 2, len(plan))
    for index in range(len(plan)):
        step = plan[index]
        for op in step:
            if len(step) > 1:
                smaller: Step = tuple(o for o in step if o is not op)
                if fails([*plan[:index], smaller, *plan[index + 1 :]]):
                    plan[index] = step = smaller
    return best, runs


def describe(outcome: Outcome, rerun: str, limit: int = 5) -> str:
    """The failure report: the seed, how to ``rerun`` it, and for each property broken,
    what was wrong and the shortest history that still breaks it."""
    record = outcome.record
    failing = len(outcome.violations)
    lines = [
        f"checker: scenario {record.scenario!r}, seed {record.seed}: {failing} properties fail "
        f"({len(record.plan)} steps; shrinking: {outcome.shrink_seconds:.1f} s, {outcome.runs - 1} runs)",
        f"rerun: {rerun}",
    ]
    for name, found in sorted(outcome.violations.items()):
        lines.append(f"property {name}:")
        lines += [f"  - {text}" for text in found[:limit]]
        if len(found) > limit:
            lines.append(f"  ... and {len(found) - limit} more")
        shown = outcome.shrunk.get(name)
        if shown is None:
            lines.append(f"  (not shrunk) the history of the seed's {len(record.plan)} steps:")
            shown = record
        else:
            lines.append(f"  shortest failing history: {len(shown.plan)} of {len(record.plan)} steps:")
            lines += [f"  - {text}" for text in check(shown).get(name, [])[:limit]]
        lines += [f"    {call.index:3d} {call.line()}" for call in shown.history.calls]
    return "\n".join(lines)
