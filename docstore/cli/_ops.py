"""Commands on the whole store: init, status, upgrade, prune, export, import, sync, bench, demo."""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from psycopg import sql

from .._connect import describe_dsn
from . import _out
from ._app import app, settings
from ._docs import _store
from ._errors import CliError
from ._kinds import ensure_kind
from ._store import dsn_configured, open_store, raw


@app.command()
def init(ctx: typer.Context) -> None:
    """Create the store's schema, tables and indexes (idempotent; never drops anything)."""
    with _store(ctx) as store:
        version = store.init_schema()
        where = describe_dsn(str(store.pool.conninfo))
        if settings(ctx).json:
            _out.emit_json({"schema": store.schema, "database": where, "ddl_version": version})
        else:
            print(f"schema {store.schema!r} ready in {where} (DDL version {version})")


@app.command()
def status(ctx: typer.Context) -> None:
    """DDL version, documents, versions and sizes per kind, oldest and newest writes."""
    with _store(ctx) as store:
        s = sql.Identifier(store.schema)
        (ddl,), = raw(store, sql.SQL(
            "SELECT (SELECT (data->>'ddl_version')::int FROM {s}.documents "
            "WHERE kind = '_docstore' AND name = 'schema')").format(s=s))
        heads = raw(store, sql.SQL(
            "SELECT kind, CASE max(mode) WHEN 'l' THEN 'log' ELSE 'snapshot' END, "
            "count(*) FILTER (WHERE NOT deleted), count(*) FILTER (WHERE deleted), "
            "min(created_at), max(updated_at) FROM {s}.documents "
            "WHERE left(kind, 1) <> '_' GROUP BY kind").format(s=s))
        versions = {k: (n, size) for k, n, size in raw(store, sql.SQL(
            "SELECT kind, count(*), sum(pg_column_size(data))::bigint FROM {s}.versions "
            "GROUP BY kind").format(s=s))}
        (total,), = raw(store, sql.SQL(
            "SELECT pg_total_relation_size(%(d)s::regclass) + pg_total_relation_size(%(v)s::regclass)"
        ), {"d": f"{s.as_string(None)}.documents", "v": f"{s.as_string(None)}.versions"})
        kinds = []
        for kind, mode, live, deleted, oldest, newest in sorted(heads):
            n, size = versions.get(kind, (0, 0))
            kinds.append({"kind": kind, "mode": mode, "documents": live, "deleted": deleted,
                          "versions": n, "bytes": int(size or 0), "oldest": oldest,
                          "newest": newest})
        where = describe_dsn(str(store.pool.conninfo))
        if settings(ctx).json:
            _out.emit_json({"database": where, "schema": store.schema, "ddl_version": ddl,
                            "total_bytes": total, "kinds": kinds})
            return
        print(f"{where} schema {store.schema!r}: DDL version {ddl}, "
              f"{_size(int(total))} on disk")
        _out.table(None, ["kind", "mode", "documents", "deleted", "versions", "data",
                          "oldest write", "newest write"],
                   [[k["kind"], k["mode"], k["documents"], k["deleted"], k["versions"],
                     _size(k["bytes"]), _out.when(k["oldest"]), _out.when(k["newest"])]
                    for k in kinds])


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@app.command()
def upgrade(ctx: typer.Context, kind: Annotated[str, typer.Argument(metavar="KIND", help="A snapshot kind.")],
            batch_size: Annotated[int, typer.Option(min=1)] = 500) -> None:
    """Rewrite documents stored at an older schema_version as new versions, in batches."""
    with _store(ctx, kind) as store:
        spec = store.kinds.get(kind)
        (stale,), = raw(store, sql.SQL(
            "SELECT count(*) FROM {s}.documents WHERE kind = %(k)s AND NOT deleted "
            "AND schema_version < %(sv)s").format(s=sql.Identifier(store.schema)),
            {"k": kind, "sv": spec.schema_version})
        with _out.progress(f"upgrading {kind}", int(stale)) as bar:
            done = store.upgrade(kind, batch_size=batch_size, progress=bar.update)
        if settings(ctx).json:
            _out.emit_json({"kind": kind, "upgraded": done, "schema_version": spec.schema_version})
        else:
            print(f"{kind}: {done} document(s) upgraded to schema_version {spec.schema_version}")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> timedelta | datetime:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w``, or an ISO 8601 date/time."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if match:
        return timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give e.g. 30d, 12h, 90m, or an ISO date") from None


@app.command()
def prune(ctx: typer.Context, kind: Annotated[str, typer.Argument(metavar="KIND", help="The kind to prune.")],
          older_than: Annotated[str | None, typer.Option(
              help="Delete documents last written before this age (30d, 12h) or date.",
              show_default=False)] = None,
          keep_last: Annotated[int | None, typer.Option(
              min=0, help="Keep the N most recently written documents (with --versions: "
              "the newest N versions of each, N >= 1).", show_default=False)] = None,
          versions: Annotated[bool, typer.Option(
              "--versions", help="Drop old versions instead of whole documents.")] = False,
          ) -> None:
    """Delete whole documents by age and/or count, or (--versions) their old versions."""
    age = parse_age(older_than) if older_than is not None else None
    if versions and (keep_last is None or age is not None):
        raise typer.BadParameter("--versions takes --keep-last N (and no --older-than)")
    if not versions and age is None and keep_last is None:
        raise typer.BadParameter("give --older-than, --keep-last, or both")
    with _store(ctx, kind) as store, _out.progress(f"pruning {kind}") as bar:
        if versions:
            assert keep_last is not None
            gone = store.prune_versions(kind, keep_last=keep_last, progress=bar.update)
        else:
            gone = store.prune(kind, older_than=age, keep_last=keep_last, progress=bar.update)
    what = "versions" if versions else "documents"
    if settings(ctx).json:
        _out.emit_json({"kind": kind, "pruned": gone, "what": what})
    else:
        print(f"{kind}: {gone} {what} pruned")


@app.command()
def export(ctx: typer.Context,
           kind: Annotated[list[str] | None, typer.Option(
               "--kind", "-k", help="Only this kind (repeatable).", show_default=False)] = None,
           output: Annotated[Path | None, typer.Option(
               "--output", "-o", help="Write to this file instead of stdout.",
               show_default=False)] = None) -> None:
    """Write every version of every document as JSON lines, in a stable order."""
    with _store(ctx) as store:
        s = sql.Identifier(store.schema)
        (total,), = raw(store, sql.SQL(
            "SELECT count(*) FROM {s}.documents WHERE left(kind, 1) <> '_' "
            "AND (%(k)s::text[] IS NULL OR kind = ANY(%(k)s::text[]))").format(s=s),
            {"k": kind or None})
        sink = output.open("wb") if output is not None else sys.stdout.buffer
        lines = docs = 0
        try:
            with _out.progress("exporting", int(total)) as bar:
                for line in store.export(kinds=kind or None):
                    sink.write(line.encode("utf-8") + b"\n")
                    lines += 1
                    if line.startswith('{"t": "document"'):
                        docs += 1
                        bar.advance()
        finally:
            if output is not None:
                sink.close()
            else:
                sink.flush()
        if output is not None:
            summary = f"exported {docs} document(s), {lines - docs} version(s) to {output}"
            if settings(ctx).json:
                _out.emit_json({"documents": docs, "versions": lines - docs,
                                "output": str(output)})
            else:
                print(summary, file=sys.stderr)


@app.command("import")
def import_(ctx: typer.Context,
            source: Annotated[str, typer.Argument(
                metavar="[FILE|-]", help="An export (default: stdin).")] = "-",
            batch_size: Annotated[int, typer.Option(min=1)] = 1000) -> None:
    """Restore an export into an empty store, in one transaction; running it again is a no-op."""
    if source == "-":
        stream: Any = sys.stdin
        total = None
    else:
        path = Path(source)
        if not path.is_file():
            raise CliError(f"no such file: {source}")
        with path.open("rb") as counting:
            total = sum(1 for _ in counting)
        stream = path.open(encoding="utf-8")
    try:
        with _store(ctx) as store:
            store.init_schema()
            with _out.progress("importing", total) as bar:
                docs, vers = store.import_lines(stream, batch_size=batch_size,
                                                progress=bar.update)
    finally:
        if stream is not sys.stdin:
            stream.close()
    if settings(ctx).json:
        _out.emit_json({"documents": docs, "versions": vers})
    else:
        print(f"imported {docs} document(s), {vers} version(s)")


@app.command()
def sync(ctx: typer.Context,
         paths: Annotated[list[Path], typer.Argument(
             metavar="PATH...", help="Project files, component files or directories; a name "
             "defined in several keeps the first, as in the framework.")],
         partial: Annotated[bool, typer.Option(
             help="Store the valid entries even when some are broken (each one is "
             "reported).")] = False) -> None:
    """Store the agent framework's config files as its loader reads them; unchanged
    entries write nothing."""
    from ._sync import sync_configs

    with _store(ctx) as store:
        with _out.progress("syncing"):
            result = sync_configs(store, *paths, partial=partial)
        if settings(ctx).json:
            _out.emit_json(result)
            return
        for warning in result["warnings"]:
            print(f"warning: {warning}", file=sys.stderr)
        for problem in result["problems"]:
            print(f"skipped: {problem}", file=sys.stderr)
        for kind, name in result["created"]:
            print(f"created {kind} {name!r}")
        for kind, name, version in result["updated"]:
            print(f"updated {kind} {name!r} to version {version}")
        where = " ".join(str(p) for p in paths)
        _out.table(f"synced {where}", ["kind", "written", "unchanged"],
                   [[k, v["written"], v["unchanged"]] for k, v in result["kinds"].items()])


@app.command(add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context) -> None:
    """Run docstore's benchmarks (docstore.bench); arguments after `bench` are its own."""
    try:
        from .. import bench as bench_module  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        raise CliError(f"docstore bench is not available in this installation ({exc})") from None
    runner: Any = getattr(bench_module, "main", None)
    if runner is None:
        raise CliError("docstore.bench has no main(argv)")
    options = settings(ctx)
    if options.dsn is not None or options.embedded:
        import os

        os.environ["DOCSTORE_URL"] = options.resolve()
    try:
        code = runner(list(ctx.args))
    except SystemExit as exc:  # argparse's --help and usage errors
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if isinstance(code, int) and code != 0:
        raise typer.Exit(code)


@app.command()
def demo(ctx: typer.Context) -> None:
    """A tour: sync example configs, simulate conversations, edit a config, show its
    history and a diff, run three analytics queries. Uses the embedded PostgreSQL when no
    database is configured; the default schema is docstore_demo, reset on every run."""
    from ..demo import run_demo

    options = settings(ctx)
    if not options.schema_given:
        options.schema = "docstore_demo"
    embedded = options.embedded or not dsn_configured(options.dsn)
    with open_store(options, embedded_by_default=True) as store:
        report = run_demo(store, reset=not options.schema_given, show=not options.json,
                          command="docstore --embedded" if embedded else "docstore")
        if options.json:
            _out.emit_json(report)


__all__ = ["ensure_kind", "parse_age"]
