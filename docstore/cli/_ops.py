"""Commands on the whole store: init, status, migrate, upgrade, prune, export, import, sync,
bench, demo."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from psycopg import sql

from .. import ddl_version
from ..agents import StorageManager
from ..store import DocStore
from . import _out
from ._app import command, settings
from ._docs import _store, message_lines
from ._errors import CliError, UsageError
from ._kinds import ensure_kind
from ._query import raw
from ._store import dsn_configured, open_store
from ._where import connected_to


@command()
def init(ctx: typer.Context) -> None:
    """Create the store's schema, tables and indexes, or upgrade an older store's, and the
    agents layer's views and indexes (idempotent)."""
    options = settings(ctx)
    with _store(ctx) as store, store.pool.connection() as conn:
        version = store.init_schema()
        StorageManager(store).init_db()
        if options.json:
            _out.emit_json({**options.where(conn.info), "ddl_version": version})
        else:
            print(f"{options.place(conn.info)}: ready (DDL version {version})")


def _versions(store_version: int | None) -> str:
    """The store's DDL version beside this release's, and what to do when they differ."""
    release = ddl_version()
    shown = "none recorded" if store_version is None else str(store_version)
    if store_version is None or store_version < release:
        return f"DDL version {shown} (this docstore writes {release}: run `docstore migrate`)"
    if store_version > release:
        return f"DDL version {shown} (this docstore knows {release}: install a newer docstore)"
    return f"DDL version {shown} (this docstore's)"


@command()
def status(ctx: typer.Context) -> None:
    """DDL versions (the store's, this docstore's), documents, versions and sizes per kind."""
    with _store(ctx) as store:
        s = sql.Identifier(store.schema)
        ((ddl,),) = raw(
            store,
            sql.SQL(
                "SELECT (SELECT (data->>'ddl_version')::int FROM {s}.documents "
                "WHERE kind = '_docstore' AND name = 'schema')"
            ).format(s=s),
        )
        heads = raw(
            store,
            sql.SQL(
                "SELECT kind, CASE max(mode) WHEN 'l' THEN 'log' ELSE 'snapshot' END, "
                "count(*) FILTER (WHERE NOT deleted), count(*) FILTER (WHERE deleted), "
                "min(created_at), max(updated_at) FROM {s}.documents "
                "WHERE left(kind, 1) <> '_' GROUP BY kind"
            ).format(s=s),
        )
        versions = {
            k: (n, size)
            for k, n, size in raw(
                store,
                sql.SQL(
                    "SELECT kind, count(*), sum(pg_column_size(data))::bigint FROM {s}.versions GROUP BY kind"
                ).format(s=s),
            )
        }
        ((total,),) = raw(
            store,
            sql.SQL(
                "SELECT pg_total_relation_size(%(d)s::regclass) + pg_total_relation_size(%(v)s::regclass)"
            ),
            {"d": f"{s.as_string(None)}.documents", "v": f"{s.as_string(None)}.versions"},
        )
        kinds = []
        for kind, mode, live, deleted, oldest, newest in sorted(heads):
            n, size = versions.get(kind, (0, 0))
            kinds.append(
                {
                    "kind": kind,
                    "mode": mode,
                    "documents": live,
                    "deleted": deleted,
                    "versions": n,
                    "bytes": int(size or 0),
                    "oldest": oldest,
                    "newest": newest,
                }
            )
        options = settings(ctx)
        with store.pool.connection() as conn:
            where = options.where(conn.info)
            place = options.place(conn.info)
        if options.json:
            _out.emit_json(
                {
                    **where,
                    "ddl_version": ddl,
                    "release_ddl_version": ddl_version(),
                    "total_bytes": total,
                    "kinds": kinds,
                }
            )
            return
        print(f"{place}: {_versions(ddl)}, {_size(int(total))} on disk")
        _out.table(
            None,
            ["kind", "mode", "documents", "deleted", "versions", "data", "oldest write", "newest write"],
            [
                [
                    k["kind"],
                    k["mode"],
                    k["documents"],
                    k["deleted"],
                    k["versions"],
                    _size(k["bytes"]),
                    _out.when(k["oldest"]),
                    _out.when(k["newest"]),
                ]
                for k in kinds
            ],
        )


@command()
def migrate(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the steps; change nothing.")] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Also run steps that stop writes while they run, without asking.")
    ] = False,
    partitions: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=1024,
            metavar="N",
            help="Then move a plain versions table into N hash partitions, online.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Upgrade the store's layout to this docstore's DDL version, in place and online."""
    as_json = settings(ctx).json
    with _store(ctx) as store:
        plan = store.migrate(dry_run=True, partitions=partitions)
        with store.pool.connection() as conn:
            place = settings(ctx).place(conn.info)
            where = settings(ctx).where(conn.info)
        if not as_json:
            print(f"{place}: DDL version {plan.store_version}, this docstore writes {plan.release_version}")
            for step in plan.steps:
                stops = "" if step.online else " [STOPS WRITES]"
                print(f"  DDL {step.version} {step.name}{stops}: {step.summary}; locks: {step.locks}")
            for note in plan.notes:
                print(f"  note: {note}")
        offline = [s.name for s in plan.steps if not s.online]
        run_it = bool(plan.steps) and not dry_run
        if run_it and offline and not yes:
            if as_json or not sys.stdin.isatty():
                raise CliError(
                    f"steps {', '.join(offline)} stop writes while they run; nothing was "
                    "changed: run again with --yes at a quiet time"
                )
            if not typer.confirm(f"Run {', '.join(offline)}, which stop writes while they run?"):
                raise CliError("nothing was changed")
        done = (
            store.migrate(
                offline_ok=bool(offline), progress=None if as_json else print, partitions=partitions
            )
            if run_it
            else plan
        )
        after = done.release_version if run_it else plan.store_version
        if as_json:
            _out.emit_json(
                {
                    **where,
                    "store_ddl_version": plan.store_version,
                    "release_ddl_version": plan.release_version,
                    "ddl_version": after,
                    "dry_run": dry_run,
                    "steps": [
                        {
                            "version": s.version,
                            "name": s.name,
                            "summary": s.summary,
                            "locks": s.locks,
                            "online": s.online,
                        }
                        for s in plan.steps
                    ],
                    "notes": list(plan.notes),
                }
            )
        elif not plan.steps:
            print("nothing to do")
        elif dry_run:
            print("dry run: nothing was changed")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@command()
def upgrade(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(metavar="KIND", help="A snapshot kind.")],
    batch_size: Annotated[
        int, typer.Option(min=1, metavar="N", help="Documents rewritten per transaction.")
    ] = 500,
) -> None:
    """Rewrite documents stored at an older schema_version as new versions, in batches."""
    with _store(ctx, kind) as store:
        spec = store.kinds.get(kind)
        ((stale,),) = raw(
            store,
            sql.SQL(
                "SELECT count(*) FROM {s}.documents WHERE kind = %(k)s AND NOT deleted "
                "AND schema_version < %(sv)s"
            ).format(s=sql.Identifier(store.schema)),
            {"k": kind, "sv": spec.schema_version},
        )
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
        raise typer.BadParameter(
            f"{text!r}: give e.g. 30d, 12h, 90m, or an ISO date", param_hint="'--older-than'"
        ) from None


@command()
def prune(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(metavar="KIND", help="The kind to prune.")],
    older_than: Annotated[
        str | None,
        typer.Option(
            metavar="AGE",
            help="Delete documents last written before this age (30d, 12h) or date.",
            show_default=False,
        ),
    ] = None,
    keep_last: Annotated[
        int | None,
        typer.Option(
            min=0,
            metavar="N",
            help="Keep the N most recently written documents (with --versions: "
            "the newest N versions of each, N >= 1).",
            show_default=False,
        ),
    ] = None,
    versions: Annotated[
        bool, typer.Option("--versions", help="Drop old versions instead of whole documents.")
    ] = False,
) -> None:
    """Delete whole documents by age and/or count, or (--versions) their old versions."""
    age = parse_age(older_than) if older_than is not None else None
    if versions and keep_last is None:
        raise UsageError("--versions needs --keep-last N")
    if versions and age is not None:
        raise UsageError("--versions takes no --older-than (it keeps the newest N versions)")
    if versions and keep_last == 0:
        raise typer.BadParameter(
            "--versions keeps at least the newest version: N >= 1", param_hint="'--keep-last'"
        )
    if not versions and age is None and keep_last is None:
        raise UsageError("give --older-than AGE, --keep-last N, or both")
    with _store(ctx, kind) as store, _out.progress(f"pruning {kind}") as bar:
        if versions:
            assert keep_last is not None
            gone = store.prune_versions(kind, keep_last=keep_last, progress=bar.update)
        else:
            gone = store.prune_documents(kind, older_than=age, keep_last=keep_last, progress=bar.update)
    what = "versions" if versions else "documents"
    if settings(ctx).json:
        _out.emit_json({"kind": kind, "pruned": gone, "what": what})
    else:
        print(f"{kind}: {gone} {what} pruned")


@command()
def export(
    ctx: typer.Context,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", "-k", metavar="KIND", help="Only this kind (repeatable).", show_default=False),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write to this file instead of stdout.", show_default=False
        ),
    ] = None,
) -> None:
    """Write every version of every document as JSON lines, in a stable order.

    The output is always JSON lines (what `import` reads), also with --json, which then
    only makes the summary of `-o FILE` JSON."""
    if output is not None and not output.parent.is_dir():
        raise CliError(f"no such directory: {output.parent}")
    with _store(ctx) as store:
        s = sql.Identifier(store.schema)
        ((total,),) = raw(
            store,
            sql.SQL(
                "SELECT count(*) FROM {s}.documents WHERE left(kind, 1) <> '_' "
                "AND (%(k)s::text[] IS NULL OR kind = ANY(%(k)s::text[]))"
            ).format(s=s),
            {"k": kind or None},
        )
        # To a file: a temporary name in the same directory, renamed over FILE only when
        # complete, so an interrupted export (Ctrl-C, a lost connection) leaves FILE as it
        # was and no partial export behind.
        temp = _temp_beside(output) if output is not None else None
        sink: Any = temp.open("xb") if temp is not None else sys.stdout.buffer
        lines = docs = 0
        try:
            with _out.progress("exporting", int(total)) as bar:
                for line in store.export(kinds=kind or None):
                    sink.write(line.encode("utf-8") + b"\n")
                    lines += 1
                    if line.startswith('{"t": "document"'):
                        docs += 1
                        bar.advance()
            sink.flush()
            if temp is not None:
                os.fsync(sink.fileno())
                sink.close()
                assert output is not None
                temp.replace(output)
        finally:
            if temp is not None:
                sink.close()
                temp.unlink(missing_ok=True)
        if output is not None:
            summary = f"exported {docs} document(s), {lines - docs} version(s) to {output}"
            if settings(ctx).json:
                _out.emit_json({"documents": docs, "versions": lines - docs, "output": str(output)})
            else:
                print(summary, file=sys.stderr)


def _temp_beside(path: Path) -> Path:
    """A fresh name next to ``path`` for writing it whole before renaming."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")


@command("import")
def import_(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="An export (default: stdin).")] = "-",
    batch_size: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="Lines sent to the server per statement (the import is still one transaction).",
        ),
    ] = 1000,
) -> None:
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
                docs, vers = store.import_lines(stream, batch_size=batch_size, progress=bar.update)
    finally:
        if stream is not sys.stdin:
            stream.close()
    if settings(ctx).json:
        _out.emit_json({"documents": docs, "versions": vers})
    else:
        print(f"imported {docs} document(s), {vers} version(s)")


@command()
def sync(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH...",
            help="Project files, component files or directories; a name "
            "defined in several keeps the first, as in the framework.",
        ),
    ],
    partial: Annotated[
        bool, typer.Option(help="Store the valid entries even when some are broken (each one is reported).")
    ] = False,
) -> None:
    """Store the agent framework's config files as its loader reads them; unchanged
    entries write nothing."""
    from ._sync import sync_configs

    with _store(ctx) as store:
        with _out.progress("syncing") as bar:
            result = sync_configs(store, *paths, partial=partial, progress=bar.step)
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
        _out.table(
            f"synced {where}",
            ["kind", "written", "unchanged"],
            [[k, v["written"], v["unchanged"]] for k, v in result["kinds"].items()],
        )


@command(add_help_option=False, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context) -> None:
    """Run docstore's benchmarks (docstore.cli.bench); arguments after `bench` are its own."""
    from .bench import main as run_bench

    options = settings(ctx)
    if options.resolve():  # bench reads DOCSTORE_URL: the server this command chose
        os.environ["DOCSTORE_URL"] = options.resolve()
    try:
        code = run_bench(list(ctx.args))
    except SystemExit as exc:  # argparse's --help and usage errors
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if code != 0:
        raise typer.Exit(code)


DEMO_SCHEMA = "docstore_demo"


@command(
    help="A tour: sync example configs, simulate conversations, edit a config, show its "
    "history and a diff, run three analytics queries. Uses the embedded PostgreSQL when "
    "no database is configured; the default schema is docstore_demo, reset on every run."
)
def demo(
    ctx: typer.Context,
    clean: Annotated[
        bool,
        typer.Option(
            "--clean",
            help="Remove what the demo made instead: its schema; with the embedded "
            "server, the server's data and what its first start created (as root: the "
            "pgserver user, directories).",
        ),
    ] = False,
) -> None:
    from .demo import run_demo

    options = settings(ctx)
    if not options.schema_given:
        options.schema = DEMO_SCHEMA
    embedded = options.embedded or not dsn_configured(options.dsn)
    if clean:
        _clean_demo(ctx, embedded)
        return
    with open_store(options, embedded_by_default=True) as store:
        if options.schema_given:  # never reset: the demo wants it empty
            _refuse_documents(store)
        report = run_demo(store, reset=not options.schema_given, show=None if options.json else _Shown())
        if options.json:
            _out.emit_json(report)
            return
        # One command per line: a pasted line must run one docstore command, not a pipeline.
        program = _invoked_as() + (" --embedded" if embedded else "")
        prefix = f"{program} --schema {store.schema}"
        console = _out.console()
        console.print("Explore it, one command at a time:", markup=False, highlight=False)
        for tail in ("status", "ls agent", "history planner s3", "export"):
            console.print(f"  {prefix} {tail}", markup=False, highlight=False, soft_wrap=True)


def _refuse_documents(store: DocStore) -> None:
    store.init_schema()
    s = sql.Identifier(store.schema)
    ((count,),) = raw(
        store, sql.SQL("SELECT count(*) FROM {s}.documents WHERE left(kind, 1) <> '_'").format(s=s)
    )
    if count:
        raise CliError(
            f"schema {store.schema!r} already holds {count} document(s): the "
            "demo writes into an empty schema (or run it without --schema: "
            "it then uses docstore_demo, reset on every run)"
        )


class _Shown:
    """The demo's tour on stdout, in the command's own tables (a docstore.cli.demo.Show)."""

    def __init__(self) -> None:
        self.console = _out.console()

    def heading(self, text: str) -> None:
        self.console.rule(f"[bold]{text}", align="left")

    def note(self, text: str) -> None:
        self.console.print(text, markup=False)

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        _out.table(
            title, columns, [[_out.when(c) if isinstance(c, datetime) else c for c in r] for r in rows]
        )

    def messages(self, items: Sequence[tuple[int, Any]]) -> None:
        for version, message in items:
            for line in message_lines(message):
                self.console.print(f"[dim]{version:>5}[/] {line}")

    def lines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.console.print(line, markup=False, highlight=False)


def _invoked_as() -> str:
    """How to run docstore again, for the demo's hint: ``docstore`` when that is on PATH,
    else the path it was started by (``.venv/bin/docstore`` in an unactivated venv)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name != "docstore":
        return "docstore"  # run as a library (the tests' main([...])) or via python -m
    found = shutil.which("docstore")
    if found and Path(found).resolve() == Path(argv0).resolve():
        return "docstore"
    return shlex.quote(argv0)


def _clean_demo(ctx: typer.Context, embedded: bool) -> None:
    options = settings(ctx)
    if options.schema != DEMO_SCHEMA:
        raise CliError(
            f"demo --clean drops only the demo's own schema {DEMO_SCHEMA!r}, not "
            f"{options.schema!r} (drop that one yourself if you mean it)"
        )
    if embedded:
        from .embedded import clean, data_dir

        what = clean()
        if not what:
            print(f"nothing to remove: no embedded server data in {data_dir()}", file=sys.stderr)
    else:
        with open_store(options) as store, store.pool.connection() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(DEMO_SCHEMA)))
            what = [f"schema {DEMO_SCHEMA} in {connected_to(conn.info)}"]
    if options.json:
        _out.emit_json({"removed": what})
    elif what:
        print("removed:", *what, sep="\n  ")


__all__ = ["ensure_kind", "parse_age"]
