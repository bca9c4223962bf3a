"""The world on the suite's server: four hosts (DocStore and AsyncDocStore, two of them
behind the lost-reply proxy), two feed consumers and a config watch (watch_configs)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from proxy import LossyProxy
from psycopg.conninfo import conninfo_to_dict

from docstore import DocStore, Registry
from docstore.agents import StorageManager

from . import faults
from .history import Final
from .hosts import Consumer, Host
from .ops import SNAPSHOT
from .worlds import Settings, World, quietly

PRIMARY_HOSTS = {"h0": ("sync", False), "h1": ("async", False), "h2": ("sync", True), "h3": ("async", True)}
"""Host -> (shell, through the lost-reply proxy)."""
PRIMARY_CONSUMERS = {"c0": "sync", "c1": "async"}


class PrimaryWorld(World):
    """The suite's server, hosts direct and behind the lost-reply proxy, two consumers
    and a config watch."""

    def __init__(self, dsn: str, settings: Settings, seed: int) -> None:
        super().__init__(settings, seed)
        self.admin_dsn = dsn
        self.take_password(dsn)
        params = conninfo_to_dict(dsn)
        self.proxy = LossyProxy(int(params.get("port") or 5432), str(params.get("host") or "127.0.0.1"))
        self.proxy.__enter__()
        self.watch: Any = None
        self.primary_readers = set(PRIMARY_HOSTS)
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        def open_host(name: str, shell: str, proxied: bool) -> Host:
            port = self.proxy.port if proxied else None
            options: dict[str, Any] = {"prepare_threshold": None} if proxied else {}
            return Host.open(
                name,
                self.host_dsn(self.admin_dsn, name, port=port),
                shell=shell,
                schema=self.schema,
                **options,
            )

        first = open_host("h0", "sync", False)
        self.hosts["h0"] = first
        first.do(lambda s: s.init_schema())
        self._cleanups.append(lambda: self.drop_schema(self.admin_dsn, self.schema))
        with ThreadPoolExecutor(max_workers=8) as pool:
            opened = {
                n: pool.submit(open_host, n, shell, proxied)
                for n, (shell, proxied) in PRIMARY_HOSTS.items()
                if n != "h0"
            }
            feeds = {n: pool.submit(open_host, n, shell, False) for n, shell in PRIMARY_CONSUMERS.items()}
            watcher = pool.submit(
                lambda: DocStore.connect(
                    self.host_dsn(self.admin_dsn, "w0"),
                    schema=self.schema,
                    kinds=Registry(),
                    max_size=2,
                    timeout=3.0,
                )
            )
            self.hosts.update({n: f.result() for n, f in opened.items()})
            for name, future in feeds.items():
                self.consumers[name] = Consumer(name, future.result(), self.history)
            self.manager = StorageManager(watcher.result(), owns_store=True)
        for consumer in self.consumers.values():
            consumer.start_over()
        self.watch = self.manager.watch_configs(poll_interval=0.05)

    def fault(self, what: str) -> Any:
        if what == "lose-reply":
            self.proxy.drop_replies(1)
            return None
        if what == "kill-connections":
            # The short run spares the host that exports (see generate.Generator).
            spare = "" if self.settings.soak else f"chk-{self.run_id}-h0"
            return faults.kill_connections(self.admin_dsn, f"chk-{self.run_id}-%", spare)
        return super().fault(what)

    def finish(self) -> Final:
        self.proxy.drop_replies(0)
        self.settle(self.missing)
        stored = {d.name: d.data.get("model") for d in self.hosts["h0"].do(lambda s: s.list(SNAPSHOT))}
        held: dict[str, Any] = {}
        deadline = time.monotonic() + self.settings.settle
        while time.monotonic() < deadline:
            held = {
                name: getattr(model, "model", None)
                for name, model in self.watch.configs.get(SNAPSHOT, {}).items()
            }
            if held == stored or self.watch.error is not None:
                break
            time.sleep(0.05)
        watch_error = None if self.watch.error is None else repr(self.watch.error)
        for consumer in self.consumers.values():
            consumer.stop()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            return Final(
                stored=stored,
                watched=held,
                watch_error=watch_error,
                tokens=self.tokens(conn),
                traces=self.traces(conn),
                logs=list(self.logs.lines),
                secrets=set(self.secrets),
            )

    def close(self) -> None:
        if self.watch is not None:
            quietly(self.manager.close)
        super().close()
        self.proxy.__exit__(None, None, None)
