"""OpenTelemetry: what runs once, not once per store shell: failures, transactions and
exports, what is never recorded, the counters, a provider set late, the feed's lag and
the replica's fallbacks, the framework's calls, and docstore without OpenTelemetry. The
instrumentation is the same code under both shells (tests/test_otel.py runs what each
shell calls itself)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from proxy import LossyProxy
from psycopg.conninfo import conninfo_to_dict
from test_otel import (
    PASSWORD,
    VALUE,
    Message,
    Telemetry,
    every_attribute,
    install,
    providers_kept,
    with_kinds,
)

from docstore import (
    DocStore,
    DocumentInvalid,
    DocumentNotFound,
    InvalidKey,
    OutcomeUnknown,
    SchemaMissing,
    VersionConflict,
)
from docstore.agents import StorageManager
from docstore.telemetry import CallTracer


@pytest.fixture
def restore_globals() -> Iterator[None]:
    with providers_kept():
        yield


@pytest.fixture
def otel(restore_globals: None) -> Telemetry:
    return install()


@pytest.fixture
def s(docstore_factory: Callable[..., DocStore]) -> DocStore:
    return with_kinds(docstore_factory())


def test_a_transaction_is_the_parent_of_its_calls_and_export_is_a_span(s: DocStore, otel: Telemetry) -> None:
    with s.transaction():
        s.put("cfg", "a", {"model": "m"})
        s.put("cfg", "b", {"model": "m"})
    assert len(list(s.export())) == 4
    put_a, put_b, block, export = otel.finished()
    assert block.name == f"transaction {block.attributes['db.namespace']}"  # type: ignore[index]
    assert block.kind is SpanKind.INTERNAL
    assert put_a.parent is not None and put_b.parent is not None
    assert put_a.parent.span_id == put_b.parent.span_id == block.context.span_id
    assert export.name.startswith("export ") and export.attributes["db.operation.name"] == "export"  # type: ignore[index]
    assert otel.total("db.client.operation.duration", **{"db.operation.name": "transaction"}) == 1


def test_failed_calls_are_error_spans_with_their_type_and_sqlstate(
    s: DocStore, otel: Telemetry, docstore_factory: Callable[..., DocStore]
) -> None:
    s.put("cfg", "a", {"model": "m"})
    with pytest.raises(VersionConflict):
        s.put("cfg", "a", {"model": "n"}, expected_version=5)
    with pytest.raises(DocumentNotFound):
        s.get("cfg", "missing")
    with pytest.raises(DocumentInvalid):
        s.put("cfg", "b", {"model": 1})  # refused before any SQL: a span all the same
    bare = with_kinds(docstore_factory(init=False))
    with pytest.raises(SchemaMissing):
        bare.get("cfg", "a")
    _, conflict, missing, invalid, no_schema = otel.finished()
    assert invalid.name == "put cfg" and invalid.attributes["docstore.name"] == "b"  # type: ignore[index]
    for span, error in (
        (invalid, "DocumentInvalid"),
        (conflict, "VersionConflict"),
        (missing, "DocumentNotFound"),
        (no_schema, "SchemaMissing"),
    ):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == error
        assert span.attributes is not None and span.attributes["error.type"] == error
        [event] = span.events
        assert event.name == "exception"
        assert event.attributes == {"exception.type": f"docstore.errors.{error}"}
    assert no_schema.attributes["db.response.status_code"] == "42P01"  # type: ignore[index]
    assert "db.response.status_code" not in conflict.attributes  # type: ignore[operator]
    assert otel.total("db.client.operation.duration", **{"error.type": "VersionConflict"}) == 1


def test_no_value_and_no_password_reach_any_span_event_or_metric(
    s: DocStore, otel: Telemetry, docstore_dsn: str
) -> None:
    info = conninfo_to_dict(docstore_dsn)
    dsn = (
        f"postgresql://{info.get('user') or 'postgres'}:{PASSWORD}@{info.get('host') or '127.0.0.1'}"
        f":{info.get('port') or 5432}/{info['dbname']}"
    )
    with DocStore.connect(dsn, schema=s.schema, min_size=1, max_size=1) as store:
        with_kinds(store)
        store.put("cfg", "a", {"model": VALUE})
        assert store.get("cfg", "a").data.model == VALUE
        store.append("chat", "c", [{"text": VALUE}], meta={"note": VALUE})
        assert store.read("chat", "c") == [Message(text=VALUE)]
        with pytest.raises(DocumentInvalid, match=f"forbidden-{VALUE}"):
            store.put("cfg", "b", {"model": f"forbidden-{VALUE}"})
        with pytest.raises(InvalidKey):  # a name the store refuses is not shown either
            store.get("cfg", VALUE * 100)
        store.list("cfg", where={"model": VALUE})
    seen = every_attribute(otel)
    assert len(otel.finished()) == 7  # the refused calls too: they failed before any SQL
    assert not [v for v in seen if VALUE in v or PASSWORD in v]
    assert any("cfg" in v for v in seen)


def test_metrics_count_a_conflict_a_retry_and_an_unknown_outcome(
    s: DocStore, otel: Telemetry, docstore_dsn: str
) -> None:
    s.put("cfg", "a", {"model": "m"})
    with pytest.raises(VersionConflict):
        s.put("cfg", "a", {"model": "n"}, expected_version=0)
    assert otel.total("docstore.version_conflicts", **{"db.operation.name": "put"}) == 1
    info = conninfo_to_dict(docstore_dsn)
    with (
        LossyProxy(int(info.get("port") or 5432), str(info.get("host") or "127.0.0.1")) as proxy,
        DocStore.connect(
            proxy.dsn(str(info["dbname"]), str(info.get("user") or "postgres")),
            schema=s.schema,
            min_size=1,
            max_size=2,
            timeout=5,
            prepare_threshold=None,
        ) as lossy,
    ):
        with_kinds(lossy)
        proxy.drop_replies(1, writes_only=False)
        assert lossy.get("cfg", "a").version == 1  # a read runs again by itself
        proxy.drop_replies(1)
        with pytest.raises(OutcomeUnknown):
            lossy.append("chat", "c", [{"text": "hi"}])
    assert (
        otel.total("docstore.retries", **{"db.operation.name": "get", "error.type": "OperationalError"}) == 1
    )
    assert otel.total("docstore.outcome_unknown", **{"db.operation.name": "append"}) == 1
    assert otel.total("docstore.version_conflicts") == 1
    retried = [span for span in otel.finished() if span.name == "get cfg"][-1]
    assert [e.name for e in retried.events] == ["retry"]
    assert retried.status.status_code is StatusCode.UNSET
    gets = otel.total(
        "db.client.operation.duration", **{"db.operation.name": "get", "db.collection.name": "cfg"}
    )
    assert gets == 1


def test_a_provider_set_after_the_store_was_built_is_honoured(s: DocStore, restore_globals: None) -> None:
    s.put("cfg", "a", {"model": "m"})
    otel = install()
    s.get("cfg", "a")
    assert [span.name for span in otel.finished()] == ["get cfg"]
    assert otel.total("db.client.operation.duration") == 1


def test_a_storage_manager_call_is_the_parent_of_its_store_calls(s: DocStore, otel: Telemetry) -> None:
    manager = StorageManager(s)
    conversation = [{"role": "user", "content": VALUE}, {"role": "assistant", "content": "hello"}]
    assert manager.save_full_history("concierge", "s1", conversation) == 2
    spans = otel.finished()
    [save] = [span for span in spans if span.name == "StorageManager.save_full_history"]
    assert save.kind is SpanKind.INTERNAL
    assert dict(save.attributes or {}) == {
        "code.function.name": "StorageManager.save_full_history",
        "docstore.agents.operation": "save_full_history",
        "gen_ai.agent.name": "concierge",
        "gen_ai.conversation.id": "s1",
    }
    children = [
        span for span in spans if span.parent is not None and span.parent.span_id == save.context.span_id
    ]
    # The head read finds no conversation yet (an error span the manager handles), then one append.
    assert [(c.name, c.status.status_code) for c in children] == [
        ("get conversation", StatusCode.ERROR),
        ("append conversation", StatusCode.UNSET),
    ]
    assert children[1].attributes["docstore.version"] == 2  # type: ignore[index]
    assert (
        otel.total("docstore.agents.operation.duration", **{"docstore.agents.operation": "save_full_history"})
        == 1
    )
    assert not [v for v in every_attribute(otel) if VALUE in v]


def test_a_failed_manager_call_keeps_its_name_and_its_point_names_no_kind(
    s: DocStore, otel: Telemetry
) -> None:
    with pytest.raises(DocumentNotFound):
        StorageManager(s).get_config("agent", "missing")
    store_call, call = otel.finished()
    assert (store_call.name, call.name) == ("get agent", "StorageManager.get_config")
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes is not None and call.attributes["error.type"] == "DocumentNotFound"
    [point] = otel.points("docstore.agents.operation.duration")
    assert dict(point.attributes) == {
        "docstore.agents.operation": "get_config",
        "error.type": "DocumentNotFound",
    }


# A layer of the user's own, traced under its own names through the core's public helper.
traced = CallTracer(
    metric="library.operation.duration",
    operation_attribute="library.operation",
    description="Duration of the library's calls",
    arguments={"title": "library.title"},
    fields={"reader": {"id": "library.reader", "note": "library.note"}},
)


class Library:
    def __init__(self, store: DocStore) -> None:
        self.store = store

    @traced
    def lend(self, title: str, reader: dict[str, Any], copies: int = 1) -> int:
        self.store.put("cfg", title, {"model": str(reader.get("note"))})
        return copies

    @traced
    async def count(self, title: str) -> int:
        return len(title)


def test_a_layer_of_its_own_traces_its_calls_under_its_own_names(s: DocStore, otel: Telemetry) -> None:
    library = Library(s)
    assert library.lend("dune", {"id": "r1", "note": 5}) == 1  # a note that is no str: not shown
    assert library.lend(title="emma", reader={"id": "r2"}, copies=2) == 2
    with pytest.raises(DocumentInvalid):
        library.lend("forbidden", {"note": "forbidden-x"})
    assert asyncio.run(library.count("dune")) == 4
    spans = [span for span in otel.finished() if span.kind is SpanKind.INTERNAL]
    assert [span.name for span in spans] == [
        "Library.lend",
        "Library.lend",
        "Library.lend",
        "Library.count",
    ]
    shown = [dict(span.attributes or {}) for span in spans]
    assert shown[0] == {
        "code.function.name": "Library.lend",
        "library.operation": "lend",
        "library.title": "dune",
        "library.reader": "r1",
    }
    assert shown[1]["library.title"] == "emma" and shown[1]["library.reader"] == "r2"
    assert shown[2]["error.type"] == "DocumentInvalid" and spans[2].status.status_code is StatusCode.ERROR
    assert shown[3] == {
        "code.function.name": "Library.count",
        "library.operation": "count",
        "library.title": "dune",
    }
    put = next(span for span in otel.finished() if span.name == "put cfg")
    assert put.parent is not None and put.parent.span_id == spans[0].context.span_id
    assert otel.total("library.operation.duration", **{"library.operation": "lend"}) == 3
    assert otel.total("library.operation.duration", **{"error.type": "DocumentInvalid"}) == 1
    assert otel.total("library.operation.duration", **{"library.operation": "count"}) == 1
    assert otel.points("docstore.agents.operation.duration") == []
    assert (
        repr(traced)
        == "CallTracer(metric='library.operation.duration', operation_attribute='library.operation')"
    )


def test_the_change_feed_measures_its_lag_and_a_dead_replica_its_fallbacks(
    s: DocStore, otel: Telemetry, docstore_dsn: str
) -> None:
    cursor = s.change_cursor()
    s.put("cfg", "a", {"model": "m"})
    [change] = list(s.changes(["cfg"], after=cursor, stop=lambda: True))
    assert change.name == "a"
    [lag] = otel.points("docstore.feed.lag")
    assert lag.count == 1 and lag.attributes["docstore.kind"] == "cfg" and 0 <= lag.sum < 5
    with socket_closed() as port:
        read_dsn = f"host=127.0.0.1 port={port} dbname=none user=postgres"
        with DocStore.connect(docstore_dsn, schema=s.schema, read_dsn=read_dsn, timeout=0.2) as store:
            with_kinds(store)
            store.get("cfg", "a")  # tries the replica, fails, reads the primary
            store.get("cfg", "a")  # the replica is known down: the primary at once
    assert otel.total("docstore.replica.fallbacks", **{"docstore.reason": "unavailable"}) == 2
    last = otel.finished()[-1]
    assert last.attributes["docstore.replica.fallback"] == "unavailable"  # type: ignore[index]


class socket_closed:
    """A loopback port with nothing listening on it (bound, never listened)."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        return int(self._sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


@pytest.mark.servers
def test_without_opentelemetry_installed_docstore_works_and_never_imports_it(
    docstore_dsn: str, s: DocStore
) -> None:
    """The API made unimportable, as without the ``otel`` extra: every call works and
    none tries to import it (with the API installed, it is not imported either)."""
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys
        asked = []
        class NoOpenTelemetry(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "opentelemetry":
                    asked.append(name)
                    raise ImportError(f"No module named {{name!r}}")
        sys.meta_path.insert(0, NoOpenTelemetry())
        from docstore import DocStore
        from docstore.agents import StorageManager
        with DocStore.connect({docstore_dsn!r}, schema={s.schema!r}) as store:
            store.register("cfg", dict)
            store.put("cfg", "a", {{"x": 1}})
            with store.transaction():
                assert store.get("cfg", "a").version == 1
            assert len(list(store.export())) == 2
            StorageManager(store).save_full_history("a", "s", [{{"role": "user", "content": "hi"}}])
        assert asked == [], asked
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        assert conn.execute(
            f'SELECT count(*) FROM "{s.schema}".documents WHERE kind = %s', ["cfg"]
        ).fetchone() == (1,)
