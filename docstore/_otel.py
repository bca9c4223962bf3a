"""OpenTelemetry: a span and a duration per store call and per call of a layer built on
the store (:func:`traced`, public as ``docstore.telemetry.CallTracer``), and the
counters operators ask for, through ``opentelemetry-api`` once the application has set
a tracer or meter provider (docs/observability.md).

Nothing here imports opentelemetry. A provider can only be set through the API's own
modules, so while ``opentelemetry.trace`` is not imported, or its global provider is
unset, :func:`active` is False and the stores run as they would without it: the check
is two dictionary lookups per call (docs/observability.md has the measured cost). It is
made on every call, not once when the store is built, so a provider set later (an SDK
configured after the framework built its storage) is honoured from its next call on.
When it turns true, the tracer and the instruments come from the providers set then,
and again if they change.

What is recorded says where and what, never a value: operation, kind, name, version,
database, schema, host and port. No DSN, user or password; no exception message either
(a validator's message may quote the value it refused): the exception's type and the
SQLSTATE only.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

from ._connect import server_parts
from .doc import Doc
from .errors import InvalidKey, OutcomeUnknown, VersionConflict

__all__ = [
    "DURATION",
    "FEED_LAG",
    "OFF",
    "VERSION_RESULTS",
    "Call",
    "StoreTelemetry",
    "active",
    "traced",
]

SCOPE = "docstore"
"""The instrumentation scope of every span and instrument."""

DURATION = "db.client.operation.duration"
CONFLICTS = "docstore.version_conflicts"
RETRIES = "docstore.retries"
OUTCOME_UNKNOWN = "docstore.outcome_unknown"
REPLICA_FALLBACKS = "docstore.replica.fallbacks"
FEED_LAG = "docstore.feed.lag"

# The semantic conventions' buckets for db.client.operation.duration (seconds).
_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0]
# Feed lag runs from milliseconds (a notifying kind) to a poll interval and beyond.
_LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]

VERSION_RESULTS = frozenset({"append", "rewrite", "clear", "delete", "restore"})
"""Operations whose int result is the document's version after them."""

_MODULES = sys.modules
_T = "opentelemetry.trace"
_M = "opentelemetry.metrics._internal"


def active() -> bool:
    """Whether the application has set a global tracer or meter provider.

    Read from the API's own globals (``_TRACER_PROVIDER``, ``_METER_PROVIDER``) rather
    than through ``get_tracer_provider()``, which looks the environment up on every call
    while none is set (ten times the cost of this). An API without those globals makes
    this True, and :func:`_tracer` and :func:`_instruments` decide through the public
    functions instead.
    """
    t = _MODULES.get(_T)
    if t is not None and getattr(t, "_TRACER_PROVIDER", t) is not None:
        return True
    m = _MODULES.get(_M)
    return m is not None and getattr(m, "_METER_PROVIDER", m) is not None


def load_configured_providers() -> None:
    """Let the API load a provider named by ``OTEL_PYTHON_TRACER_PROVIDER`` or
    ``OTEL_PYTHON_METER_PROVIDER``: it does so on the first ``get_*_provider()`` call,
    which :func:`active` never makes."""
    if "OTEL_PYTHON_TRACER_PROVIDER" not in os.environ and "OTEL_PYTHON_METER_PROVIDER" not in os.environ:
        return
    try:
        from opentelemetry import metrics, trace
    except ImportError:  # the otel extra is not installed
        return
    trace.get_tracer_provider()
    metrics.get_meter_provider()


class _Cache:
    """The tracer and instruments of the providers last seen (process-wide)."""

    tracer_provider: Any = None
    tracer: Any = None
    meter_provider: Any = None
    instruments: _Instruments | None = None


def _provider(module: str, name: str, getter: str) -> Any:
    mod = _MODULES.get(module)
    if mod is None:
        return None
    if hasattr(mod, name):
        return getattr(mod, name)
    return getattr(_MODULES["opentelemetry.trace" if module == _T else "opentelemetry.metrics"], getter)()


def _version() -> str | None:
    """docstore's installed version, for the instrumentation scope."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("docstore")
    except PackageNotFoundError:  # a source tree never installed
        return None


def _tracer() -> Any:
    """The tracer of the global provider; None when there is none, or a no-op one."""
    provider = _provider(_T, "_TRACER_PROVIDER", "get_tracer_provider")
    if provider is not _Cache.tracer_provider:
        from opentelemetry import trace

        _Cache.tracer = (
            None
            if provider is None or isinstance(provider, trace.NoOpTracerProvider | trace.ProxyTracerProvider)
            else provider.get_tracer(SCOPE, _version())
        )
        _Cache.tracer_provider = provider
    return _Cache.tracer


class _Instruments:
    """The instruments of one meter provider."""

    def __init__(self, provider: Any) -> None:
        meter = self._meter = provider.get_meter(SCOPE, _version())
        self._layers: dict[str, Any] = {}
        self.duration = meter.create_histogram(
            DURATION,
            unit="s",
            description="Duration of docstore's calls (one per store method call)",
            explicit_bucket_boundaries_advisory=_BUCKETS,
        )
        self.conflicts = meter.create_counter(
            CONFLICTS, unit="{conflict}", description="Writes refused with VersionConflict"
        )
        self.retries = meter.create_counter(
            RETRIES, unit="{retry}", description="Calls docstore ran again by itself after a failure"
        )
        self.unknown = meter.create_counter(
            OUTCOME_UNKNOWN,
            unit="{write}",
            description="Writes whose connection broke after they were sent (OutcomeUnknown)",
        )
        self.fallbacks = meter.create_counter(
            REPLICA_FALLBACKS,
            unit="{read}",
            description="Reads meant for the read replica that ran on the primary",
        )
        self.lag = meter.create_histogram(
            FEED_LAG,
            unit="s",
            description="Time from a write's transaction to its delivery by a change feed",
            explicit_bucket_boundaries_advisory=_LAG_BUCKETS,
        )

    def layer(self, name: str, description: str) -> Any:
        """The histogram ``name`` timing a layer's calls, made on its first call. Two
        threads making it at once get the same instrument from the meter."""
        histogram = self._layers.get(name)
        if histogram is None:
            histogram = self._layers[name] = self._meter.create_histogram(
                name, unit="s", description=description, explicit_bucket_boundaries_advisory=_BUCKETS
            )
        return histogram


def _instruments() -> _Instruments | None:
    """The instruments of the global meter provider; None when there is none."""
    provider = _provider(_M, "_METER_PROVIDER", "get_meter_provider")
    if provider is not _Cache.meter_provider:
        from opentelemetry import metrics

        _Cache.instruments = (
            None
            if provider is None
            or isinstance(provider, metrics.NoOpMeterProvider)
            # The proxy, when the public getter answered: no provider is set.
            or type(provider).__name__ == "_ProxyMeterProvider"
            else _Instruments(provider)
        )
        _Cache.meter_provider = provider
    return _Cache.instruments


class Call:
    """One observed call: a span (current while it runs, unless ``current`` is False,
    as for a generator's: the caller's code runs between its items) and its duration.
    Use as a context manager."""

    __slots__ = ("_metric", "_span", "_start", "_token", "_what")

    def __init__(
        self,
        name: str,
        attributes: dict[str, Any],
        metric: dict[str, Any],
        what: str,
        *,
        client: bool = True,
        current: bool = True,
    ) -> None:
        self._metric = metric
        self._what = what
        self._span: Any = None
        self._token: Any = None
        self._start = time.perf_counter()
        tracer = _tracer()
        if tracer is not None:
            from opentelemetry import context, trace

            kind = trace.SpanKind.CLIENT if client else trace.SpanKind.INTERNAL
            self._span = tracer.start_span(name, kind=kind, attributes=attributes)
            if current:
                self._token = context.attach(trace.set_span_in_context(self._span))

    def __enter__(self) -> Call:
        return self

    def describe(self, kind: str, name: str | None) -> None:
        """The kind and name the call is about, once its arguments are checked (the
        span is renamed ``<operation> <kind>``)."""
        if kind:
            self._metric["db.collection.name"] = kind
        span = self._span
        if span is None:
            return
        if kind:
            span.update_name(f"{self._what} {kind}")
            span.set_attribute("db.collection.name", kind)
            span.set_attribute("docstore.kind", kind)
        if name is not None:
            span.set_attribute("docstore.name", name)

    def done(self, result: object) -> None:
        """Record the version a store call wrote or read, when its result says it."""
        if self._span is None:
            return
        if isinstance(result, Doc):
            self._span.set_attribute("docstore.version", result.version)
        elif type(result) is int and self._what in VERSION_RESULTS:
            self._span.set_attribute("docstore.version", result)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # A generator closed before its end (a consumer that stopped early) did not fail.
        error = None if exc is None or isinstance(exc, GeneratorExit) else error_type(exc)
        if error is not None and "db.collection.name" not in self._metric:
            # Refused before its op was made (an invalid value, an unknown kind): the
            # error names what it concerns.
            kind, name = getattr(exc, "kind", None), getattr(exc, "name", None)
            # Not an InvalidKey's: its kind or name is one the store refused to hold.
            if isinstance(kind, str) and not isinstance(exc, InvalidKey):
                self.describe(kind, name if isinstance(name, str) else None)
        instruments = _instruments()
        if instruments is not None:
            self._measure(instruments, time.perf_counter() - self._start, exc, error)
        span = self._span
        if span is None:
            return
        try:
            if exc is not None and error is not None:
                _failed(span, exc, error)
        finally:
            span.end()
            if self._token is not None:
                from opentelemetry import context

                context.detach(self._token)

    def _measure(
        self, instruments: _Instruments, elapsed: float, exc: BaseException | None, error: str | None
    ) -> None:
        metric = self._metric if error is None else {**self._metric, "error.type": error}
        instruments.duration.record(elapsed, metric)
        if exc is not None and error is not None:
            counts(instruments, exc, self._metric, conflicts=self._what != "transaction")


def error_type(exc: BaseException) -> str:
    """``error.type`` of an exception: its class name (docstore's are unique)."""
    return type(exc).__qualname__


def counts(
    instruments: _Instruments, exc: BaseException, metric: Mapping[str, Any], *, conflicts: bool = True
) -> None:
    """Count a call's failure where a counter exists for it. ``conflicts=False``: a
    transaction block, whose conflicts its calls counted."""
    if isinstance(exc, VersionConflict):
        if conflicts:
            instruments.conflicts.add(1, metric)
    elif isinstance(exc, OutcomeUnknown):
        instruments.unknown.add(1, metric)


def _failed(span: Any, exc: BaseException, error: str | None) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error)
    state = getattr(exc.__cause__, "sqlstate", None) or getattr(exc, "sqlstate", None)
    if isinstance(state, str):
        span.set_attribute("db.response.status_code", state)
    # The type only: a message may quote the value a validator refused.
    span.add_event("exception", {"exception.type": f"{type(exc).__module__}.{type(exc).__qualname__}"})
    span.set_status(Status(StatusCode.ERROR, error))


class _Off:
    """What an unobserved call holds in place of a :class:`Call`."""

    __slots__ = ()

    def __enter__(self) -> _Off:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def describe(self, kind: str, name: str | None) -> None:
        return None

    def done(self, result: object) -> None:
        return None


OFF = _Off()


class StoreTelemetry:
    """A store's side of it: the attributes every span and measurement of the store
    carries (database and schema, server), worked out once from its DSN."""

    __slots__ = ("attributes", "measured")

    def __init__(self, conninfo: str, schema: str) -> None:
        host, port, dbname = server_parts(conninfo)
        # Measurements: the conventions' attributes of db.client.operation.duration.
        self.measured: dict[str, Any] = {
            "db.system.name": "postgresql",
            "db.namespace": f"{dbname}.{schema}",
            "server.address": host,
        }
        if port is not None:
            self.measured["server.port"] = port
        # Spans: db.system too, the conventions' name before db.system.name.
        self.attributes: dict[str, Any] = {"db.system": "postgresql", **self.measured}
        load_configured_providers()

    def call(self, what: str, *, current: bool = True) -> Call:
        """A store call: ``what`` is the method (put, get, append...); its kind and name
        come with :meth:`Call.describe`."""
        return Call(
            f"{what} {self.measured['db.namespace']}",
            {**self.attributes, "db.operation.name": what},
            {**self.measured, "db.operation.name": what},
            what,
            current=current,
        )

    def transaction(self) -> Call:
        """A ``transaction()`` block: the parent of the calls inside it."""
        return Call(
            f"transaction {self.measured['db.namespace']}",
            {**self.attributes, "db.operation.name": "transaction"},
            {**self.measured, "db.operation.name": "transaction"},
            "transaction",
            client=False,
        )

    def _measure(self, what: str, kind: str, **more: Any) -> dict[str, Any]:
        attributes = {**self.measured, "db.operation.name": what, **more}
        if kind:
            attributes["db.collection.name"] = kind
        return attributes

    def retried(self, what: str, kind: str, exc: BaseException) -> None:
        """The call failed with ``exc`` and runs again."""
        if not active():
            return
        instruments = _instruments()
        if instruments is not None:
            instruments.retries.add(1, self._measure(what, kind, **{"error.type": error_type(exc)}))
        span = _current_span()
        if span is not None:
            span.add_event("retry", {"error.type": error_type(exc)})

    def fell_back(self, what: str, kind: str, reason: str) -> None:
        """A read meant for the replica runs on the primary, for ``reason``."""
        if not active():
            return
        instruments = _instruments()
        if instruments is not None:
            instruments.fallbacks.add(1, self._measure(what, kind, **{"docstore.reason": reason}))
        span = _current_span()
        if span is not None:
            span.set_attribute("docstore.replica.fallback", reason)

    def on_replica(self, server: str) -> None:
        """The current call is served by the replica at ``server`` (``host:port``)."""
        if not active():
            return
        span = _current_span()
        if span is not None:
            host, _, port = server.rpartition(":")
            span.set_attribute("docstore.replica", True)
            span.set_attribute("server.address", host)
            if port.isdigit():
                span.set_attribute("server.port", int(port))

    def delivered(self, changes: Iterable[Any]) -> None:
        """A change feed hands out ``changes``: how long after their write's transaction."""
        if not active():
            return
        instruments = _instruments()
        if instruments is None:
            return
        now = datetime.now(UTC)
        for change in changes:
            instruments.lag.record(
                max(0.0, (now - change.written_at).total_seconds()),
                {**self.measured, "db.collection.name": change.kind, "docstore.kind": change.kind},
            )


def _current_span() -> Any:
    """The current span when it records; None otherwise."""
    tracer = _tracer()
    if tracer is None:
        return None
    from opentelemetry import trace

    span = trace.get_current_span()
    return span if span.is_recording() else None


F = TypeVar("F", bound=Callable[..., Any])


def traced(
    method: F,
    *,
    metric: str,
    description: str,
    operation: str,
    arguments: Mapping[str, str],
    fields: Mapping[str, Mapping[str, str]],
) -> F:
    """A layer's call (a method, sync or async): an INTERNAL span named by the method's
    qualified name, the parent of the store calls it makes, and its duration in the
    histogram ``metric``; ``operation`` is the attribute giving the method's name. The
    parameters named in ``arguments`` are shown on the span (a str only) under the
    attribute given; for those in ``fields``, some of a Mapping's str entries are."""
    name = method.__name__
    qualname = method.__qualname__
    params = list(inspect.signature(method).parameters)
    shown = [(i, p, arguments[p]) for i, p in enumerate(params) if p in arguments]
    within = [(i, p, fields[p]) for i, p in enumerate(params) if p in fields]

    def start(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Call:
        attributes: dict[str, Any] = {"code.function.name": qualname, operation: name}
        for i, param, key in shown:
            value = args[i] if i < len(args) else kwargs.get(param)
            if isinstance(value, str):
                attributes[key] = value
        for i, param, keys in within:
            value = args[i] if i < len(args) else kwargs.get(param)
            if isinstance(value, Mapping):
                for field, key in keys.items():
                    if isinstance(value.get(field), str):
                        attributes[key] = value[field]
        return _LayerCall(qualname, attributes, {operation: name}, name, metric, description)

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            if not active():
                return await method(*args, **kwargs)
            with start(args, kwargs):
                return await method(*args, **kwargs)

        return run_async  # type: ignore[return-value]

    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        if not active():
            return method(*args, **kwargs)
        with start(args, kwargs):
            return method(*args, **kwargs)

    return run  # type: ignore[return-value]


class _LayerCall(Call):
    """A layer's call: INTERNAL, timed in the layer's own histogram."""

    __slots__ = ("_description", "_histogram")

    def __init__(
        self,
        name: str,
        attributes: dict[str, Any],
        metric: dict[str, Any],
        what: str,
        histogram: str,
        description: str,
    ) -> None:
        super().__init__(name, attributes, metric, what, client=False)
        self._histogram = histogram
        self._description = description

    def describe(self, kind: str, name: str | None) -> None:
        """Nothing: a layer's call keeps its method's name, whatever kind it failed on
        (a store call's span already names that)."""
        return None

    def _measure(
        self, instruments: _Instruments, elapsed: float, exc: BaseException | None, error: str | None
    ) -> None:
        # Failures are counted by the store calls that raised them, not again here.
        metric = self._metric if error is None else {**self._metric, "error.type": error}
        instruments.layer(self._histogram, self._description).record(elapsed, metric)
