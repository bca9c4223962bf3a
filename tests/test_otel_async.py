"""OpenTelemetry: a span per store call and per framework call, following the database
semantic conventions, and metrics, read back through the SDK's in-memory exporters.
What both store shells trace is here; the rest, checked once, is in test_otel_once.py.

The SDK's providers are global and can be set once per process: each test sets fresh
ones and the fixture puts back what was there after it (as OpenTelemetry's own test
utilities do), so the rest of the suite runs without any, as docstore's users without
an SDK do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import AsyncFactory
from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once
from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel, field_validator

from docstore import AsyncDocStore
from docstore.agents import AsyncStorageManager

PASSWORD = "pw-otel-7f3a9c"  # trust auth takes any password: it only has to be in the DSN
VALUE = "value-otel-5b8e21"


class Config(BaseModel):
    model: str

    @field_validator("model")
    @classmethod
    def no_forbidden(cls, value: str) -> str:
        if value.startswith("forbidden"):
            raise ValueError(f"{value} is not allowed")  # quotes the value refused
        return value


class Message(BaseModel):
    text: str


@dataclass
class Telemetry:
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        """Every data point of the metric ``name`` collected so far."""
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def total(self, name: str, **attributes: Any) -> int:
        """A counter's sum (a histogram's count) over the points with ``attributes``."""
        points = [
            p for p in self.points(name) if all(p.attributes.get(k) == v for k, v in attributes.items())
        ]
        total = 0
        for point in points:
            total += point.count if hasattr(point, "count") else point.value
        return total


def _globals() -> tuple[Any, ...]:
    return (
        trace._TRACER_PROVIDER_SET_ONCE,
        trace._TRACER_PROVIDER,
        metrics_internal._METER_PROVIDER_SET_ONCE,
        metrics_internal._METER_PROVIDER,
    )


def _put_globals(values: tuple[Any, ...]) -> None:
    (
        trace._TRACER_PROVIDER_SET_ONCE,
        trace._TRACER_PROVIDER,
        metrics_internal._METER_PROVIDER_SET_ONCE,
        metrics_internal._METER_PROVIDER,
    ) = values


def install() -> Telemetry:
    """Set fresh global providers, as an application configuring the SDK does."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    _put_globals((Once(), None, Once(), None))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return Telemetry(spans, reader)


@contextmanager
def providers_kept() -> Iterator[None]:
    """No providers inside; the ones there were, after."""
    saved = _globals()
    _put_globals((Once(), None, Once(), None))
    try:
        yield
    finally:
        _put_globals(saved)


@pytest.fixture
def restore_globals() -> Iterator[None]:
    with providers_kept():
        yield


@pytest.fixture
def otel(restore_globals: None) -> Telemetry:
    return install()


def with_kinds(store: AsyncDocStore) -> AsyncDocStore:
    store.register("cfg", Config)
    store.register("chat", Message, mode="log")
    return store


@pytest.fixture
async def astore(adocstore_factory: AsyncFactory) -> AsyncDocStore:
    """A fresh store of this module's shell, made before the test sets its providers."""
    return with_kinds(await adocstore_factory())


def namespace(dsn: str, schema: str) -> str:
    return f"{conninfo_to_dict(dsn)['dbname']}.{schema}"


def every_attribute(otel: Telemetry) -> list[str]:
    values: list[str] = []
    for span in otel.finished():
        values += [span.name, *map(str, (span.attributes or {}).values())]
        values.append(str(span.status.description))
        for event in span.events:
            values += [event.name, *map(str, (event.attributes or {}).values())]
        values += map(str, span.resource.attributes.values())
    data = otel.reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    values += map(str, (point.attributes or {}).values())
    return values


async def test_put_get_append_read_are_client_spans_with_the_database_conventions(
    astore: AsyncDocStore, otel: Telemetry, docstore_dsn: str
) -> None:
    await astore.put("cfg", "planner", {"model": "m"})
    await astore.get("cfg", "planner")
    await astore.append("chat", "s1", [{"text": "a"}, {"text": "b"}])
    await astore.read("chat", "s1", last=10)
    spans = otel.finished()
    assert [s.name for s in spans] == ["put cfg", "get cfg", "append chat", "read chat"]
    info = conninfo_to_dict(docstore_dsn)
    for span, (operation, kind, name, version) in zip(
        spans,
        [
            ("put", "cfg", "planner", 1),
            ("get", "cfg", "planner", 1),
            ("append", "chat", "s1", 2),
            ("read", "chat", "s1", None),
        ],
        strict=True,
    ):
        assert span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.UNSET
        attributes = dict(span.attributes or {})
        assert attributes.pop("docstore.version", None) == version
        assert attributes == {
            "db.system": "postgresql",
            "db.system.name": "postgresql",
            "db.operation.name": operation,
            "db.collection.name": kind,
            "db.namespace": namespace(docstore_dsn, astore.schema),
            "server.address": info.get("host") or "localhost",
            "server.port": int(info.get("port") or 5432),
            "docstore.kind": kind,
            "docstore.name": name,
        }


async def test_manager_calls_and_transaction_blocks_are_the_parents_of_their_store_calls(
    astore: AsyncDocStore, otel: Telemetry, docstore_dsn: str
) -> None:
    manager = AsyncStorageManager(astore)
    await manager.append_history("concierge", "s2", [{"role": "user", "content": "hi"}])
    assert await manager.load_history("concierge", "s2") == [{"role": "user", "content": "hi"}]
    async with astore.transaction():
        await astore.put("cfg", "a", {"model": "m"})
    block = f"transaction {namespace(docstore_dsn, astore.schema)}"
    spans = {span.context.span_id: span for span in otel.finished()}
    tree = [(span.name, spans[span.parent.span_id].name if span.parent else None) for span in spans.values()]
    assert tree == [
        ("get conversation", "AsyncStorageManager.append_history"),
        ("append conversation", "AsyncStorageManager.append_history"),
        ("AsyncStorageManager.append_history", None),
        ("read conversation", "AsyncStorageManager.load_history"),
        ("AsyncStorageManager.load_history", None),
        ("put cfg", block),
        (block, None),
    ]
