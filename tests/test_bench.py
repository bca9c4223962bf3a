"""`docstore bench --quick` runs end to end and reports every workload's ratio.

No timing is asserted: the numbers belong to docs/performance.md, not to the suite.
"""

from __future__ import annotations

import json
import math

import psycopg
import pytest

from docstore.cli.bench import main

EXPECTED = {
    "put_vs_same_sql",
    "put_vs_bare",
    "get_vs_raw",
    "put_many_vs_copy",
    "append_long_vs_short",
    "read_last_long_vs_50",
    "save_full_history_vs_rewrite",
    "save_full_history_200_vs_20",
    "iter_peak_rss",
    "async32_vs_sync",
    "feed_cost_put",
    "feed_cost_put_no_flush",
    "feed_cost_append",
    "feed_cost_concurrent_append",
    "feed_latency_p99",
    "cached_config_get_vs_raw",
}


@pytest.mark.slow
def test_quick_bench_reports_every_workload_and_drops_its_schema(
    docstore_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--dsn", docstore_dsn, "--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    results = {r["key"]: r for r in report["results"]}
    assert set(results) == EXPECTED
    for result in results.values():
        assert math.isfinite(result["ratio"]) and result["ratio"] >= 0
        assert isinstance(result["passed"], bool)
        assert result["target"]
    assert report["machine"]["nproc"] and report["machine"]["postgres"]
    with psycopg.connect(docstore_dsn) as conn:
        left = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'docstore_bench_%'"
        ).fetchall()
    assert not [n for (n,) in left if n.startswith(f"docstore_bench_{_pid()}_")]


def test_bench_says_so_when_the_database_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dsn", "host=127.0.0.1 port=1 connect_timeout=2", "--quick"]) == 2
    assert "cannot use the database" in capsys.readouterr().err


def _pid() -> int:
    import os

    return os.getpid()


@pytest.mark.servers
def test_bench_never_puts_the_dsn_on_a_child_process_command_line(docstore_dsn: str) -> None:
    """The iter workload runs a child process; `ps` must not show it the password."""
    import threading
    from pathlib import Path

    from docstore.cli.bench import Sizes, run

    marker = "pw-7f3a9c1e-never-shown"
    dsn = f"{docstore_dsn} password={marker}"  # trust auth: the password is ignored
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if "docstore.cli.bench._rss" in cmdline:
                    seen.append(cmdline)
            done.wait(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results = run(dsn, Sizes.quick(), only=["iter"])
    finally:
        done.set()
        watcher.join()
    assert [r.key for r in results] == ["iter_peak_rss"]
    assert seen, "never saw the iter child process running"
    assert not [c for c in seen if marker in c], seen[0]
