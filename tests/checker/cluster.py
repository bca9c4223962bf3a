"""The world of throwaway servers: a primary with a streaming standby, hosts reading
from a multi-host ``read_dsn`` (the standby behind a link that can be cut, then the
primary), a consumer, and a fresh cluster the store moves to at the end."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from servers import ReplicaPair, ThrowawayServer

from docstore import DocStore, _replica

from . import faults
from .history import Final
from .hosts import Consumer, Host
from .worlds import Settings, World, quietly


class Cluster:
    """The cluster scenario's servers, started once and shared by its runs: a primary
    with a streaming standby (commits wait for the WAL flush, so a crash loses nothing
    acknowledged), a database of another application on the primary, and a fresh
    cluster to move the store to."""

    OTHER_DB = "chk_other"

    def __init__(self) -> None:
        settings = {"synchronous_commit": "on", "wal_retrieve_retry_interval": "100ms"}
        pair = ReplicaPair(settings=settings)
        fresh = ThrowawayServer()
        with ThreadPoolExecutor(max_workers=2) as pool:
            started: list[Future[Any]] = [pool.submit(pair.__enter__), pool.submit(fresh.__enter__)]
        try:
            for future in started:
                future.result()
            with psycopg.connect(pair.primary.dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.OTHER_DB)))
                # A cluster in service has run many transactions, the fresh one few: a
                # move goes to a cluster whose transaction ids are behind.
                conn.execute(_BURN_XIDS)
        except BaseException:
            pair.close()
            fresh.close()
            raise
        self.pair, self.fresh = pair, fresh
        assert pair.replica is not None
        self.standby: ThrowawayServer = pair.replica

    def close(self) -> None:
        self.pair.close()
        self.fresh.close()


_BURN_XIDS = """
CREATE TEMP TABLE burn (n int);
DO $$ BEGIN
    FOR i IN 1..3000 LOOP
        BEGIN
            INSERT INTO burn VALUES (i);  -- a subtransaction that writes takes an id
            RAISE EXCEPTION 'next';
        EXCEPTION WHEN raise_exception THEN NULL;
        END;
    END LOOP;
END $$;
"""

CLUSTER_HOSTS = {"p0": ("sync", False), "r0": ("sync", True), "r1": ("async", True)}
"""Host -> (shell, reads from the multi-host read_dsn)."""


class ClusterWorld(World):
    """Hosts on the cluster's primary; r0 and r1 read from ``read_dsn`` listing the
    standby (through a link that can be cut) and then the primary, as libpq's
    multi-host DSNs do. A move takes the store to the fresh cluster."""

    def __init__(self, cluster: Cluster, settings: Settings, seed: int) -> None:
        super().__init__(settings, seed)
        self.cluster = cluster
        self.admin_dsn = cluster.pair.primary.dsn
        self.take_password(self.admin_dsn)
        self.link = faults.Link(cluster.standby.port)
        self.xid = faults.XidHolder(make_conninfo(self.admin_dsn, dbname=Cluster.OTHER_DB))
        self.moved = False
        self.primary_readers = {"p0"}
        self._retry_after = _replica.RETRY_AFTER
        # Seconds on the primary after a replica failed: short, so that the replica
        # serves again within a history.
        _replica.RETRY_AFTER = 0.3
        try:
            faults.set_replay(cluster.standby.dsn, paused=False)
            self._open()
        except BaseException:
            self.close()
            raise

    def read_dsn(self, who: str) -> str:
        primary = conninfo_to_dict(self.admin_dsn)
        return make_conninfo(
            host="127.0.0.1,127.0.0.1",
            port=f"{self.link.port},{primary['port']}",
            user=str(primary.get("user") or "postgres"),
            dbname=str(primary.get("dbname") or "postgres"),
            password=next(iter(sorted(self.secrets)), None),
            application_name=f"chk-{self.run_id}-{who}-reads",
            connect_timeout="2",
        )

    def _open(self) -> None:
        first = Host.open("p0", self.host_dsn(self.admin_dsn, "p0"), shell="sync", schema=self.schema)
        self.hosts["p0"] = first
        first.do(lambda s: s.init_schema())
        primary_dsn = self.admin_dsn
        self._cleanups.append(lambda: self.drop_schema(primary_dsn, self.schema))
        self.caught_up()
        for name, (shell, replica) in CLUSTER_HOSTS.items():
            if name != "p0":
                options: dict[str, Any] = {"read_dsn": self.read_dsn(name), "max_size": 1} if replica else {}
                dsn = self.host_dsn(self.admin_dsn, name)
                self.hosts[name] = Host.open(name, dsn, shell=shell, schema=self.schema, **options)
        consumer = Host.open("c0", self.host_dsn(self.admin_dsn, "c0"), shell="sync", schema=self.schema)
        self.consumers["c0"] = Consumer("c0", consumer, self.history)
        self.consumers["c0"].start_over()

    def caught_up(self, limit: float = 20.0) -> None:
        """Wait until the standby has replayed all the primary has written."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        target = _replica.lsn_int(row[0] if row else None)
        deadline = time.monotonic() + limit
        with psycopg.connect(self.cluster.standby.dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
                if _replica.lsn_int(row[0] if row else None) >= target:
                    return
                time.sleep(0.02)
        raise RuntimeError("the standby did not catch up")

    def fault(self, what: str) -> Any:
        if what == "move":
            return self.move()
        if self.moved:
            return "moved: the old cluster's faults no longer apply"
        standby = self.cluster.standby.dsn
        if what in ("cut", "heal"):
            (self.link.cut if what == "cut" else self.link.heal)()
            return None
        if what in ("pause-replay", "resume-replay"):
            return faults.set_replay(standby, paused=what == "pause-replay")
        if what == "kill-reads":
            pattern = f"chk-{self.run_id}-%-reads"
            return faults.kill_connections(self.admin_dsn, pattern) + faults.kill_connections(
                standby, pattern
            )
        if what == "kill-connections":
            return faults.kill_connections(self.admin_dsn, f"chk-{self.run_id}-%")
        if what == "crash-primary":
            return faults.crash_and_restart(self.cluster.pair.primary)
        if what in ("hold-xid", "release-xid"):
            return (self.xid.hold if what == "hold-xid" else self.xid.release)()
        return super().fault(what)

    def move(self) -> dict[str, Any]:
        """Export the store, import it into the fresh cluster, and carry on there: every
        host reconnects to it, and each consumer resumes from its saved cursor."""
        self.xid.release()
        self.settle(self.missing)
        for consumer in self.consumers.values():
            consumer.stop()
        lines = self.export(self.hosts["p0"])
        fresh = self.cluster.fresh.dsn
        with DocStore.connect(fresh, schema=self.schema, max_size=1) as target:
            target.init_schema()
            target.import_lines(lines)
        self._cleanups.append(lambda: self.drop_schema(fresh, self.schema))
        old = [*self.hosts.values(), *(c.host for c in self.consumers.values())]
        for name, (shell, _) in CLUSTER_HOSTS.items():
            self.hosts[name] = Host.open(name, self.host_dsn(fresh, name), shell=shell, schema=self.schema)
        for name, consumer in self.consumers.items():
            consumer.rehost(Host.open(name, self.host_dsn(fresh, name), shell="sync", schema=self.schema))
            consumer.resume()
        for host in old:
            quietly(host.close)
        self.admin_dsn, self.moved = fresh, True
        return {"lines": len(lines)}

    def finish(self) -> Final:
        self.xid.release()
        self.settle(self.missing)
        for consumer in self.consumers.values():
            consumer.stop()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            return Final(
                stored={},
                watched=None,
                watch_error=None,
                tokens=self.tokens(conn),
                traces=self.traces(conn),
                logs=list(self.logs.lines),
                secrets=set(self.secrets),
            )

    def close(self) -> None:
        _replica.RETRY_AFTER = self._retry_after
        self.xid.release()
        self.link.close()
        quietly(lambda: faults.set_replay(self.cluster.standby.dsn, paused=False))
        super().close()
