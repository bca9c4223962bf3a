"""Seeded random plans: the same seed gives the same plan, operation for operation.

Each step holds one to three operations drawn by weight from the scenario's vocabulary
(client calls, feed consumers' stops and resumes, hostile inputs, faults); a few
operations are whole steps of their own (two hosts running prune_changes at once).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from . import hostile
from .ops import (
    LOG,
    SNAPSHOT,
    Append,
    BadCursor,
    BadDsn,
    BadImport,
    Copy,
    Delete,
    Fault,
    FeedReplay,
    FeedRestart,
    FeedResume,
    FeedStop,
    Get,
    Op,
    Plan,
    Prune,
    PruneChanges,
    PruneVersions,
    Purge,
    Put,
    Retry,
    Step,
    Transaction,
    Write,
)

SNAPSHOT_NAMES = ("a", "b", "c")
LOG_NAMES = ("s1", "s2")
UNREACHABLE_PORT = 1
"""A port no server listens on (below 1024, so no test server takes it)."""


class Generator:
    """Draws operations for a scenario's hosts and consumers."""

    def __init__(
        self,
        rng: random.Random,
        hosts: tuple[str, ...],
        consumers: tuple[str, ...],
        weights: dict[str, int],
        soak: bool,
        names: tuple[tuple[str, ...], tuple[str, ...]] = (SNAPSHOT_NAMES, LOG_NAMES),
        readback: tuple[str, ...] = (),
    ) -> None:
        self.rng = rng
        self.hosts = hosts  # a host named twice is drawn twice as often
        self.names = names
        self.readback = readback  # hosts that often read back what they wrote, a few steps on
        self.consumers = consumers
        self.weights = weights
        self.soak = soak
        self.token = 0
        self.keyed: list[Write] = []
        self.yaml_left = 3 if soak else 1
        self.made = 0  # steps made so far
        self.due: list[tuple[int, Op]] = []  # a fault's end, and the step it comes in
        # Exports run on a host the short run never kills the connections of: an export
        # on a killed connection lets psycopg's error out (docs/reliability.md).
        self.exporter = "" if soak else hosts[0]
        self.makers: dict[str, Callable[[], Op]] = {
            "put": self.put,
            "append": self.append,
            "get": self.get,
            "delete": self.delete,
            "retry": self.retry,
            "purge": self.purge,
            "prune": self.prune,
            "prune_versions": lambda: PruneVersions(self.host(), self.kind(), self.rng.randint(1, 3)),
            "copy": lambda: Copy(self.exporter or self.host()),
            "feed_stop": lambda: FeedStop(self.consumer()),
            "feed_resume": lambda: FeedResume(self.consumer()),
            "feed_restart": lambda: FeedRestart(self.consumer()),
            "feed_replay": lambda: FeedReplay(
                self.consumer(), self.rng.randint(8, 20), self.rng.randrange(10**6)
            ),
            "bad_cursor": self.bad_cursor,
            "bad_import": self.bad_import,
            "bad_dsn": self.bad_dsn,
            "yaml": self.yaml,
            "transaction": self.transaction,
        }

    # --- drawing ---------------------------------------------------------------------

    def host(self) -> str:
        return self.rng.choice(self.hosts)

    def consumer(self) -> str:
        return self.rng.choice(self.consumers)

    def kind(self) -> str:
        return self.rng.choice((SNAPSHOT, LOG))

    def name(self, kind: str) -> str:
        return self.rng.choice(self.names[0] if kind == SNAPSHOT else self.names[1])

    def next_token(self) -> int:
        self.token += 1
        return self.token

    def key(self, chance: float, token: int | None = None) -> str | None:
        if self.rng.random() >= chance:
            return None
        return f"k{token if token is not None else self.rng.getrandbits(40)}"

    def steps(self) -> list[Step]:
        """The next step, or steps: a consumer often checks its saved cursors right after
        two hosts pruned the feed. The ends of faults that last (a cut link is healed)
        join the step they are due in."""
        made = [self.step()]
        if any(isinstance(op, PruneChanges) for op in made[0]) and self.rng.random() < 0.6:
            made.append((self.makers["feed_replay"](),))
        out: list[Step] = []
        for step in made:
            at = self.made + len(out)
            due = tuple(op for when, op in self.due if when <= at)
            self.due = [(when, op) for when, op in self.due if when > at]
            out += [part for part in self.kept_apart(step + due) if part]
        self.made += len(out)
        return out

    def kept_apart(self, step: Step) -> list[Step]:
        """``step``, split so that no purge runs beside a write: a write racing a purge
        of its document outlives it (docs/reliability.md, "What the checker found").
        Only the soak runs them side by side."""
        if self.soak:
            return [step]
        writes = [op for op in step if isinstance(op, Put | Append | Delete | Retry | Transaction)]
        purges = [op for op in step if isinstance(op, Purge)]
        if not (writes and purges):
            return [step]
        return [tuple(op for op in step if op not in purges), tuple(purges)]

    def lasting(self, steps: tuple[int, int], start: str, *end: str) -> Fault:
        """A fault that lasts some ``steps``: ``start`` now, the ``end`` faults later,
        one step after the other."""
        at = self.made + self.rng.randint(*steps)
        self.due += [(at + n, Fault(what)) for n, what in enumerate(end)]
        return Fault(start)

    def step(self) -> Step:
        count = self.rng.choices((1, 2, 3), weights=(4, 4, 2))[0]
        ops: list[Op] = []
        for _ in range(count):
            what = self.rng.choices(list(self.weights), weights=list(self.weights.values()))[0]
            if what == "prune_changes_pair":
                return self.prune_changes_pair()
            if what.startswith("fault:"):
                ops.append(Fault(what.removeprefix("fault:")))
            elif what in LASTING:
                steps, faults = LASTING[what]
                ops.append(self.lasting(steps, *faults))
            else:
                ops.append(self.makers[what]())
        return tuple(ops)

    # --- operations ------------------------------------------------------------------

    def put(self) -> Put:
        token = self.next_token()
        expected = self.rng.choice((0, 1, 2, 3, 5)) if self.rng.random() < 0.15 else None
        op = Put(self.host(), self.name(SNAPSHOT), token, expected, self.key(0.4, token))
        self._keep(op)
        self._read_back(op.host, SNAPSHOT, op.name)
        return op

    def append(self) -> Append:
        token = self.next_token()
        op = Append(self.host(), self.name(LOG), token, self.rng.randint(1, 3), self.key(0.4, token))
        self._keep(op)
        self._read_back(op.host, LOG, op.name)
        return op

    def delete(self) -> Delete:
        kind = self.kind()
        op = Delete(self.host(), kind, self.name(kind), self.key(0.3))
        self._keep(op)
        return op

    def _read_back(self, host: str, kind: str, name: str) -> None:
        """A host that reads its own writes back does so soon, and again later."""
        if host in self.readback:
            for soon in ((1, 2), (3, 8)):
                self.due.append((self.made + self.rng.randint(*soon), Get(host, kind, name)))

    def _keep(self, op: Write) -> None:
        if op.key is not None:
            self.keyed.append(op)

    def retry(self) -> Op:
        if not self.keyed:
            return self.put()
        return Retry(self.host(), self.rng.choice(self.keyed[-8:]))

    def get(self) -> Get:
        kind = self.kind()
        return Get(self.host(), kind, self.name(kind))

    def purge(self) -> Purge:
        kind = self.kind()
        names = self.names[0] if kind == SNAPSHOT else self.names[1]
        return Purge(
            self.host(), kind, tuple(sorted(self.rng.sample(names, self.rng.randint(1, min(2, len(names))))))
        )

    def prune(self) -> Prune:
        if self.rng.random() < 0.5:
            return Prune(self.host(), self.kind(), keep_last=self.rng.randint(0, 2))
        return Prune(self.host(), self.kind(), older_than_ms=self.rng.choice((0, 50, 200)))

    def prune_changes_pair(self) -> Step:
        """Two hosts pruning the feed at once (a retention job on each, with its own
        retention), while a host writes."""
        first, second = self.rng.sample(sorted(set(self.hosts)), 2)
        pair: list[Op] = [
            PruneChanges(first, self.rng.choice((10, 50, 250))),
            PruneChanges(second, self.rng.choice((10, 50, 250))),
        ]
        if self.rng.random() < 0.7:
            pair.append(self.put() if self.rng.random() < 0.5 else self.append())
        return tuple(pair)

    def transaction(self) -> Transaction:
        names = self.rng.sample(SNAPSHOT_NAMES, 2)
        return Transaction(self.host(), tuple(Put(self.host(), n, self.next_token()) for n in names))

    def bad_cursor(self) -> BadCursor:
        cursor, why = hostile.bad_cursor(self.rng)
        return BadCursor(self.host(), cursor, why)

    def bad_import(self) -> BadImport:
        mutation = self.rng.choice(hostile.import_mutations(self.soak))
        return BadImport(self.exporter or self.host(), mutation, self.rng.randrange(1000))

    def bad_dsn(self) -> BadDsn:
        dsn, password = hostile.bad_dsn(self.rng, 5432, UNREACHABLE_PORT)
        return BadDsn(self.host(), self.rng.choice(hostile.DSN_ENTRIES), dsn, password)

    def yaml(self) -> Op:
        if self.yaml_left <= 0:
            return self.get()
        self.yaml_left -= 1
        from .ops import YamlFile

        text, nodes = hostile.alias_bomb(self.rng, f"yaml-{self.rng.randrange(10**6)}")
        return YamlFile(self.rng.choice(hostile.YAML_ENTRIES), text, nodes)


PRIMARY_WEIGHTS = {
    "put": 18,
    "append": 10,
    "get": 18,
    "delete": 4,
    "retry": 8,
    "purge": 4,
    "prune": 2,
    "prune_versions": 2,
    "prune_changes_pair": 5,
    "copy": 1,
    "feed_stop": 3,
    "feed_resume": 3,
    "feed_restart": 1,
    "feed_replay": 4,
    "bad_cursor": 2,
    "bad_import": 2,
    "bad_dsn": 2,
    "yaml": 1,
    "fault:lose-reply": 4,
    "fault:kill-connections": 2,
}
SOAK_WEIGHTS = {"transaction": 3}
"""Operations only the soak sends: they meet a break beyond issue 24's ten (see
docs/reliability.md, "What the checker found")."""


def primary_plan(seed: int, steps: int, soak: bool = False) -> Plan:
    """A plan for PrimaryWorld: four hosts, two consumers, the lost-reply proxy."""
    weights = {**PRIMARY_WEIGHTS, **(SOAK_WEIGHTS if soak else {})}
    gen = Generator(random.Random(seed), ("h0", "h1", "h2", "h3"), ("c0", "c1"), weights, soak)
    plan: Plan = []
    while len(plan) < steps:
        plan += gen.steps()
    return plan


LASTING: dict[str, tuple[tuple[int, int], tuple[str, ...]]] = {
    "failover": ((1, 4), ("cut", "heal", "kill-reads")),  # reads move to the primary, then back
    "lag": ((4, 14), ("pause-replay", "resume-replay")),
    "hold-xid": ((4, 12), ("hold-xid", "release-xid")),
}
"""Faults that last some steps (how many, at least and at most): the fault, then what
ends it (drawn as one)."""

CLUSTER_WEIGHTS = {
    "put": 14,
    "append": 6,
    "get": 24,
    "delete": 2,
    "retry": 3,
    "purge": 2,
    "prune_changes_pair": 5,
    "feed_stop": 2,
    "feed_resume": 2,
    "feed_restart": 6,
    "feed_replay": 2,
    "failover": 8,
    "lag": 4,
    "fault:kill-reads": 3,
    "fault:kill-connections": 1,
    "hold-xid": 4,
}
AFTER_MOVE_WEIGHTS = {"put": 10, "append": 6, "get": 6, "feed_resume": 2, "feed_replay": 1}


def cluster_plan(seed: int, steps: int, soak: bool = False, after_move: int = 6) -> Plan:
    """A plan for ClusterWorld: ``steps`` steps on the primary and its standby, the
    primary killed with -9 (and restarted) during one of them (up to three in the soak),
    then a move of the store to a fresh cluster, then ``after_move`` steps there."""
    rng = random.Random(seed)
    # The hosts reading from the standby write and read most, on few documents.
    hosts = ("p0", "r0", "r1", "r0", "r1")
    gen = Generator(
        rng, hosts, ("c0",), CLUSTER_WEIGHTS, soak, names=(("a", "b"), ("s1",)), readback=("r0", "r1")
    )
    plan: Plan = []
    while len(plan) < steps:
        plan += gen.steps()
    for at in rng.sample(range(len(plan)), rng.randint(1, 3) if soak else 1):
        plan[at] += (Fault("crash-primary"),)
    plan.append((Fault("move"),))
    gen.weights = AFTER_MOVE_WEIGHTS
    plan += [gen.step() for _ in range(after_move)]
    plan.append((FeedResume("c0"),))
    return plan
