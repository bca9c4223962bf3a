"""What happened: every call with its outcome, and every change a feed delivered.

A call's outcome is ``ok`` (with its result), ``fail`` (an error that says the call was not
kept, or bad input refused) or ``unknown`` (OutcomeUnknown: the write may have landed).
The exception itself is kept, so that properties can read its text and its causes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from docstore import OutcomeUnknown

from .ops import Op

Outcome = Literal["ok", "fail", "unknown"]


@dataclass
class Call:
    """One operation as it ran: when (monotonic seconds since the run began) and how."""

    index: int
    op: Op
    start: float
    end: float = float("inf")
    outcome: Outcome | None = None
    result: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def may_have_happened(self) -> bool:
        """True unless the call surely left nothing behind."""
        return self.outcome != "fail"

    def line(self) -> str:
        """The call as one line of a printed history."""
        if self.outcome == "ok":
            told = f"ok {_short(self.result)}"
        elif self.error is not None:
            told = f"{self.outcome} {type(self.error).__name__}: {_short(str(self.error))}"
        else:
            told = "did not return"
        return f"[{self.start:7.3f}-{self.end:7.3f}] {self.op} -> {told}"


@dataclass(frozen=True)
class Delivery:
    """A change a consumer's feed handed out."""

    consumer: str
    segment: int
    at: float
    kind: str
    name: str
    version: int
    op: str
    written_at: datetime
    cursor: str

    @property
    def identity(self) -> tuple[str, str, int, str, datetime]:
        """The same for one committed write whichever feed delivers it."""
        return (self.kind, self.name, self.version, self.op, self.written_at)


@dataclass
class Segment:
    """A stretch of one consumer's life that starts from one ``change_cursor()`` (taken
    at ``start``) and goes on across stops and resumes, until the feed refuses to go on
    (``ended`` with the error, at ``end``) or the consumer starts over."""

    consumer: str
    index: int
    start: float
    cursor: str
    end: float = float("inf")
    ended: BaseException | None = None  # None, and an end: the consumer started over
    deliveries: list[Delivery] = field(default_factory=list)
    errors: list[tuple[float, BaseException]] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.end == float("inf")


class History:
    """Records calls and deliveries from many threads at once."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.calls: list[Call] = []
        self.segments: list[Segment] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def run(self, op: Op, action: Callable[[], Any]) -> Call:
        """Run ``action`` as the call of ``op`` and record how it went."""
        with self._lock:
            call = Call(len(self.calls), op, self.now())
            self.calls.append(call)
        try:
            call.result = action()
        except OutcomeUnknown as exc:
            call.outcome, call.error = "unknown", exc
        except Exception as exc:  # every error is recorded; properties judge it
            call.outcome, call.error = "fail", exc
        else:
            call.outcome = "ok"
        call.end = self.now()
        return call

    def segment(self, consumer: str, cursor: str, start: float) -> Segment:
        """A new segment of ``consumer``, from ``cursor`` taken at ``start``."""
        with self._lock:
            index = sum(1 for s in self.segments if s.consumer == consumer)
            seg = Segment(consumer, index, start, cursor)
            self.segments.append(seg)
        return seg

    def deliveries(self, consumer: str | None = None) -> list[Delivery]:
        return [d for s in self.segments if consumer in (None, s.consumer) for d in s.deliveries]


def _short(value: Any, limit: int = 160) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class Final:
    """What a run found once it had settled: the snapshot kind's documents on the
    primary and in the config watch (name -> model), the versions rows holding each
    write's token, rows left of purged documents, the warnings logged, the secrets."""

    stored: dict[str, Any]
    watched: dict[str, Any] | None
    watch_error: str | None
    tokens: dict[tuple[int, int | None], int]
    traces: dict[tuple[str, str], list[str]]
    logs: list[str]
    secrets: set[str]
