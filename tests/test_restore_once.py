"""restore(): what runs once, not once per store shell: the change a restore makes (the
feed is the same code in both shells, tests/test_changes.py), and restores racing on
threads, which have no async twin the generator could make."""

from __future__ import annotations

import threading
from collections.abc import Callable

from test_restore import Msg, msgs

from docstore import DocStore


def test_a_restore_is_a_change_of_its_own(docstore_factory: Callable[..., DocStore]) -> None:
    store = docstore_factory()
    store.register("chat", Msg, mode="log")
    store.register("cfg", dict)
    cursor = store.change_cursor()
    store.append("chat", "c", msgs("a"))
    store.delete("chat", "c")
    store.restore("chat", "c")
    store.put("cfg", "stop", {})
    seen = []
    for change in store.changes(after=cursor):
        if change.name == "stop":
            break
        seen.append((change.op, change.version))
    assert seen == [("append", 1), ("delete", 1), ("restore", 1)]


def test_restores_racing_each_other_all_succeed_and_write_once(
    docstore_factory: Callable[..., DocStore],
) -> None:
    store = docstore_factory()
    store.register("cfg", dict)
    store.register("chat", Msg, mode="log")
    for round_ in range(5):
        store.put("cfg", f"x{round_}", {"n": round_})
        store.delete("cfg", f"x{round_}")
        store.append("chat", f"c{round_}", msgs("hi"))
        store.delete("chat", f"c{round_}")
        results: list[int | Exception] = []
        barrier = threading.Barrier(4)

        def restore(
            kind: str,
            name: str,
            results: list[int | Exception] = results,
            barrier: threading.Barrier = barrier,
        ) -> None:
            barrier.wait()
            try:
                results.append(store.restore(kind, name))
            except Exception as exc:
                results.append(exc)

        threads = [
            threading.Thread(target=restore, args=(kind, f"{prefix}{round_}"))
            for kind, prefix in (("cfg", "x"), ("cfg", "x"), ("chat", "c"), ("chat", "c"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        restored = [r for r in results if isinstance(r, int)]
        assert len(restored) == len(results) and sorted(restored) == [1, 1, 3, 3], results
        assert [v.version for v in store.versions("cfg", f"x{round_}")] == [1, 2, 3]
