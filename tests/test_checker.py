"""The model-based fault checker (tests/checker) in the suite.

Short mode, the default: a few seeded histories of each scenario, against the suite's
server (``primary``) and against a throwaway primary with a standby and a fresh cluster
to move to (``cluster``; one crash of the primary with -9 in its plan). A failure prints
the seed, every property broken and, for each, the shortest history that still breaks
it. ``--checker-seed N`` runs seed N of each scenario; ``--soak SECONDS`` (or
``DOCSTORE_SOAK=SECONDS``) runs new seeds of both for that long, with the operations of
breaks still open (docs/reliability.md, "The checker").
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from checker.cluster import Cluster, ClusterWorld
from checker.generate import cluster_plan, primary_plan
from checker.ops import Plan
from checker.primary import PrimaryWorld
from checker.runner import describe, run_and_check
from checker.worlds import Settings, World


@dataclass(frozen=True)
class Spec:
    """A scenario and its seed (None: new seeds for ``soak`` seconds). ``soak`` > 0
    sends the soak's operations, in plans twice as long."""

    scenario: str
    seed: int | None
    soak: float = 0.0

    @property
    def steps(self) -> int:
        return STEPS[self.scenario] * (2 if self.soak else 1)

    @property
    def id(self) -> str:
        if self.seed is None:
            return f"{self.scenario}-soak"
        return f"{self.scenario}-seed{self.seed}" + ("-soak" if self.soak else "")

    def rerun(self, seed: int) -> str:
        soak = " --soak 1" if self.soak else ""
        return f"python -m pytest tests/test_checker.py --checker-seed {seed}{soak} -k {self.scenario}"


PLANS: dict[str, Callable[[int, int, bool], Plan]] = {"primary": primary_plan, "cluster": cluster_plan}
STEPS = {"primary": 40, "cluster": 40}
# Chosen so that, on the code before issue 24's fixes, each of its ten breaks makes one
# of them fail (docs/reliability.md, "What the checker found").
SHORT = [
    Spec("primary", 15),
    Spec("primary", 27),
    Spec("primary", 41),
    Spec("cluster", 25),
    Spec("cluster", 10),
]
SHRINK_SHORT = 10.0  # seconds of shrinking for a failing short run
SHRINK_SOAK = 60.0  # for each of the first few failing soak runs
SOAK_SHRUNK = 5


def soak_seconds(config: pytest.Config) -> float:
    given = config.getoption("soak")
    return float(given if given is not None else os.environ.get("DOCSTORE_SOAK") or 0)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "spec" not in metafunc.fixturenames:
        return
    soak = soak_seconds(metafunc.config)
    seed = metafunc.config.getoption("checker_seed")
    if seed is not None:
        specs = [Spec(s, seed, soak) for s in PLANS]
    elif soak > 0:
        specs = [Spec(s, None, soak / len(PLANS)) for s in PLANS]
    else:
        specs = SHORT
    # Every scenario runs for seconds: slow. The cluster scenario also starts a primary, a
    # standby and a spare cluster of its own: servers.
    params = [
        pytest.param(
            s, id=s.id, marks=[pytest.mark.slow, *([pytest.mark.servers] if s.scenario == "cluster" else [])]
        )
        for s in specs
    ]
    metafunc.parametrize("spec", params)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    try:
        yield made
    finally:
        made.close()


def test_random_histories_keep_every_promise(spec: Spec, request: pytest.FixtureRequest) -> None:
    soak = spec.soak > 0
    settings = Settings(soak=soak)

    def world_for(seed: int) -> Callable[[], World]:
        if spec.scenario == "primary":
            dsn: str = request.getfixturevalue("docstore_dsn")
            return lambda: PrimaryWorld(dsn, settings, seed)
        servers: Cluster = request.getfixturevalue("cluster")
        return lambda: ClusterWorld(servers, settings, seed)

    if spec.seed is not None:
        plan = PLANS[spec.scenario](spec.seed, spec.steps, soak)
        budget = SHRINK_SOAK if soak else SHRINK_SHORT
        outcome = run_and_check(world_for(spec.seed), plan, spec.scenario, spec.seed, budget)
        if outcome.violations:
            pytest.fail(describe(outcome, spec.rerun(spec.seed)), pytrace=False)
        return
    failures: list[str] = []
    seed = random.SystemRandom().randrange(10**6, 10**7)
    first, runs = seed, 0
    deadline = time.monotonic() + spec.soak
    while time.monotonic() < deadline:
        plan = PLANS[spec.scenario](seed, spec.steps, soak)
        budget = SHRINK_SOAK if len(failures) < SOAK_SHRUNK else 0.0
        outcome = run_and_check(world_for(seed), plan, spec.scenario, seed, budget)
        if outcome.violations:
            failures.append(describe(outcome, spec.rerun(seed)))
        seed, runs = seed + 1, runs + 1
    summary = f"soak of {spec.scenario}: seeds {first}..{seed - 1} ({runs} runs), {len(failures)} failed"
    print(summary)
    if failures:
        pytest.fail(summary + "\n\n" + "\n\n".join(failures), pytrace=False)
