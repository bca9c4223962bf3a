# Generated from docstore/agents/_history_async.py by .ci/async_to_sync.py: do not edit.
# Change docstore/agents/_history_async.py and run `.venv/bin/python .ci/async_to_sync.py`.
"""Session history: saving, appending and loading conversations, and the framework's
session records, on an :class:`~docstore.DocStore`.

docstore/agents/_history.py is generated from docstore/agents/_history_async.py by
.ci/async_to_sync.py (``async`` and ``await`` taken out, the asyncio names replaced by
their synchronous ones): edit _history_async.py. The I/O-free part (the hash chain,
what a manager remembers of its last write) is in :mod:`._conversation`; the records'
conversions in :mod:`._sessions`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from docstore.doc import Doc
from docstore.errors import (
    DocStoreError,
    DocumentInvalid,
    DocumentNotFound,
    OutcomeUnknown,
    SchemaMissing,
    VersionConflict,
)
from docstore.store import DocStore

from ._conversation import (
    SAVE_ATTEMPTS,
    Conversation,
    Known,
    KnownCache,
    canonical,
    cas,
    chain,
    committed,
    digest_current,
    next_meta,
    note_unknown,
    store_meta,
    validate_messages,
)
from ._copies import saved_copies
from ._layout import (
    CLEANUP_FOLD_AT,
    FOLD_AT,
    VACUUM_AFTER,
    Page,
    fold,
    page_of,
    sessions_page,
    translate,
    vacuum_deltas,
)
from ._message_dicts import MESSAGE_DICT
from ._sessions import SESSION_KEYS, list_row, logged, session_fields, session_view
from ._settings import CONVERSATION, conversation_name
from .messages import MESSAGE_ADAPTER, MESSAGES_ADAPTER, STORED_MESSAGE

logger = logging.getLogger("docstore.agents")

__all__ = ["History", "fetch", "fold_counts", "list_page"]


HIDDEN_WITH = "hidden_with"
"""A workflow head's key naming the agents' sessions delete_session hid with it."""


class History:
    """The conversations of one store, and what this manager last wrote to each."""

    def __init__(self, store: DocStore) -> None:
        self.store = store
        self.known = KnownCache()

    # --- the agent-centred interface ---------------------------------------------------

    def load(self, agent_name: str, session_id: str | None, limit: int | None) -> list[dict[str, Any]]:
        """The last ``limit`` messages of a session, oldest first, as dicts."""
        self.store.kinds.get(CONVERSATION, "log")  # a kind that is no log fails, session or not
        if not session_id:
            return []
        name = conversation_name(agent_name, session_id)
        last = limit if limit is not None and limit > 0 else None
        return self._read_dicts(name, last)

    def _read_dicts(self, name: str, last: int | None) -> list[dict[str, Any]]:
        """The live messages (the ``last`` N, if given) as dicts: what their models dump."""
        spec = self.store.kinds.get(CONVERSATION, "log")
        ours = spec.adapter is STORED_MESSAGE or spec.adapter is MESSAGE_ADAPTER
        if ours:
            try:
                # Validated once, straight into the dicts (no model built and dumped).
                return self.store.read(CONVERSATION, name, last=last, into=MESSAGE_DICT)
            except DocumentInvalid:
                pass  # the models' path: their errors, or a message the mirror refuses
        items = self.store.read(CONVERSATION, name, last=last)
        if ours:
            # One call over the list rather than one a message.
            dumped: list[dict[str, Any]] = MESSAGES_ADAPTER.dump_python(items, mode="json")
            return dumped
        return [spec.adapter.dump_python(item, mode="json") for item in items]

    def save(
        self,
        agent_name: str,
        session_id: str | None,
        conversation: Sequence[Any],
        workflow_name: str | None,
        parent_session_id: str | None,
    ) -> int:
        """Store a session's full conversation; returns how many messages were written.

        When the stored live messages are a prefix of ``conversation`` only the rest is
        appended (and validated); otherwise the conversation replaces them (a rewrite,
        old ones kept). The head's meta keeps a hash chain of the live messages and the
        version it describes, so the prefix is checked with one head read and no item read.
        """
        if not session_id:
            return 0
        spec = self.store.kinds.get(CONVERSATION, "log")
        name = conversation_name(agent_name, session_id)
        given = {
            "agent_name": agent_name,
            "session_id": session_id,
            "workflow_name": workflow_name,
            "parent_session_id": parent_session_id,
        }
        return self._save(Conversation(spec, name, conversation), given)

    def append(
        self,
        agent_name: str,
        session_id: str | None,
        messages: Sequence[Any],
        workflow_name: str | None,
        parent_session_id: str | None,
    ) -> int:
        """Append new messages to a session; returns how many were written.

        Costs one head read and one append whatever the conversation's length, and keeps
        the head's hash chain current, so a later ``save`` stays cheap.
        """
        if not session_id:
            return 0
        spec = self.store.kinds.get(CONVERSATION, "log")
        name = conversation_name(agent_name, session_id)
        validated = validate_messages(spec, name, messages)
        canon = [canonical(spec.adapter, m) for m in validated]
        given = {
            "agent_name": agent_name,
            "session_id": session_id,
            "workflow_name": workflow_name,
            "parent_session_id": parent_session_id,
        }
        conflict: DocStoreError | None = None
        attempts: dict[tuple[str, int], int] = {}
        for _attempt in range(SAVE_ATTEMPTS):
            head, old_meta, meta = self._head(name, given)
            if committed(head, old_meta, attempts) is not None:
                return len(validated)  # an attempt whose reply was lost did commit
            base = head.version if head is not None else 0
            if head is None:
                meta["history_digest"] = chain(b"", canon).hex()
            elif digest_current(head, old_meta):
                meta["history_digest"] = chain(bytes.fromhex(old_meta["history_digest"]), canon).hex()
            else:
                meta.pop("history_digest", None)  # stale: the next full save re-reads
            if "history_digest" in meta:
                meta["history_digest_version"] = base + len(validated)
            else:
                meta.pop("history_digest_version", None)
            if not validated and (head is None or meta == old_meta):
                return 0
            key: str | None = None
            if "history_digest" not in meta:
                # No hash chain to recognise this write by: a key of its own instead.
                key = f"docstore-append:{uuid.uuid4().hex}"
            expected = cas(head)
            try:
                # With a key, a lost reply is asked once more with the same key: the
                # first attempt's version if it landed.
                for tries_left in (1, 0) if key is not None else (0,):
                    try:
                        self.store.append(
                            CONVERSATION,
                            name,
                            validated,
                            expected_version=expected,
                            meta=meta,
                            idempotency_key=key,
                        )
                        break
                    except OutcomeUnknown:
                        if not tries_left:
                            raise
            except VersionConflict as exc:
                conflict = exc
                continue
            except OutcomeUnknown as exc:
                if key is not None:
                    raise
                conflict = note_unknown(attempts, meta, len(validated), exc)
                continue
            return len(validated)
        assert conflict is not None
        raise conflict

    def _head(
        self, name: str, given: Mapping[str, Any], replace: Collection[str] = ()
    ) -> tuple[Doc[Any] | None, dict[str, Any], dict[str, Any]]:
        """The conversation's head (None if there is none), its meta, and the meta to write
        (see :func:`~._conversation.next_meta`)."""
        try:
            head: Doc[Any] | None = self.store.get(CONVERSATION, name)
        except DocumentNotFound:
            head = None
        old_meta, meta = next_meta(head, given, replace)
        return head, old_meta, meta

    def _save(self, conv: Conversation, given: dict[str, Any], replace: Collection[str] = ()) -> int:
        name = conv.name
        # The hash chain each attempt writes is this manager's own idempotency key: after
        # a lost reply, a head holding it at its version means that attempt committed.
        attempts: dict[tuple[str, int], int] = {}
        written = self._save_known(conv, given, attempts, replace)
        if written is not None:
            return written
        conflict: DocStoreError | None = None
        for _attempt in range(SAVE_ATTEMPTS):
            head, old_meta, meta = self._head(name, given, replace)
            done = committed(head, old_meta, attempts)
            if done is not None:
                return done
            base = head.version if head is not None else 0
            # How many messages are stored already (None: not a prefix of conv).
            stored, prefix_digest, items = self._stored_prefix(conv, head, old_meta)
            if self._lagging(conv, head, stored, items):
                return 0
            if stored is None:
                new, digest = conv.validated(0, len(conv)), chain(b"", conv.canonical())
            else:
                new = conv.validated(stored, len(conv))
                digest = chain(prefix_digest, conv.canonical(stored))
            meta["history_digest"] = digest.hex()
            meta["history_digest_version"] = base + len(new)
            if stored is not None and not new and (meta == old_meta if head is not None else not replace):
                return 0  # nothing new (or an empty conversation never stored)
            # Before the write (the host's own tasks may edit its messages while the write
            # is in flight): the JSON of what was validated, so what is remembered as saved
            # is what was written.
            copies = conv.raw_copies()
            try:
                if stored is not None:
                    self.store.append(CONVERSATION, name, new, expected_version=cas(head), meta=meta)
                else:
                    self.store.rewrite(CONVERSATION, name, new, expected_version=cas(head), meta=meta)
            except VersionConflict as exc:
                conflict = exc  # another writer got in between: look again
                continue
            except OutcomeUnknown as exc:
                conflict = note_unknown(attempts, meta, len(new), exc)
                continue
            self.known.remember(
                name,
                None
                if copies is None or not base + len(new)
                else Known(base + len(new), digest, copies, meta),
            )
            return len(new)
        assert conflict is not None
        raise conflict

    def _stored_prefix(
        self, conv: Conversation, head: Doc[Any] | None, old_meta: Mapping[str, Any]
    ) -> tuple[int | None, bytes, list[Any] | None]:
        """How many of ``conv``'s messages are stored live already (None when the stored
        ones are not a prefix of it), the hash chain of the stored ones, and the stored
        items when they had to be read."""
        if head is None:
            return 0, b"", None
        if digest_current(head, old_meta):
            stored = head.count or 0
            prefix_digest = bytes.fromhex(old_meta["history_digest"])
            return (stored if conv.has_prefix(stored, prefix_digest) else None), prefix_digest, None
        # No digest describing this version (written by other code, or by an older
        # docstore): compare with the live items themselves, once.
        items = self.store.read(CONVERSATION, conv.name)
        canon = [canonical(conv.spec.adapter, m) for m in items]
        prefix_digest = chain(b"", canon)
        if len(items) > len(conv) or conv.canonical(0, len(items)) != canon:
            return None, prefix_digest, items
        return len(items), prefix_digest, items

    def _lagging(
        self, conv: Conversation, head: Doc[Any] | None, stored: int | None, items: list[Any] | None
    ) -> bool:
        """Whether ``conv`` is a shorter prefix of the stored messages: a save lagging
        behind another manager's is stale, and writes nothing rather than cut the live
        conversation short. (An empty conversation still clears: no lagging host saves
        nothing.)"""
        if stored is not None or head is None or not 0 < len(conv) < (head.count or 0):
            return False
        if items is None:
            items = self.store.read(CONVERSATION, conv.name)
        return [canonical(conv.spec.adapter, m) for m in items[: len(conv)]] == conv.canonical()

    def _save_known(
        self,
        conv: Conversation,
        given: dict[str, Any],
        attempts: dict[tuple[str, int], int],
        replace: Collection[str] = (),
    ) -> int | None:
        """Save with what this manager wrote last, if the conversation extends it: one
        append, guarded by the version *and* the live count it left (a ``clear`` or
        ``delete`` by someone else leaves the version as it was), with no read and no
        hashing or validation of the stored messages (comparing them with their copies is
        a C-level ``==`` per message). The hash chain in the head's metadata moves on with
        ``meta_update``, which keeps any key another manager set meanwhile, and so do the
        head's keys this save changes. Returns None, having written nothing, when the
        general path must run (so does a save that clears a key of the head).
        """
        known = self.known.get(conv.name)
        if known is None:
            return None
        count = len(known.raw)
        if len(conv) < count or conv.messages[:count] != known.messages():
            return None
        changes = {
            k: v for k, v in given.items() if known.meta.get(k) != v and (v is not None or k in replace)
        }
        if any(v is None for v in changes.values()):
            return None  # a key to clear, which meta_update cannot do
        new = conv.validated(count, len(conv))
        if not new and not changes:
            return 0
        digest = chain(known.digest, conv.canonical(count))
        update = {
            "history_digest": digest.hex(),
            "history_digest_version": known.version + len(new),
            **changes,
        }
        # Before the write, as in the general path: what is remembered is what was written.
        copies = conv.raw_copies(count)
        kept = None if copies is None else saved_copies(conv.messages[count:], copies)
        try:
            self.store.append(
                CONVERSATION,
                conv.name,
                new,
                expected_version=known.version,
                expected_count=count,
                meta_update=update,
            )
        except VersionConflict:
            self.known.remember(conv.name, None)  # someone else wrote: take the general path
            return None
        except OutcomeUnknown as exc:
            self.known.remember(conv.name, None)  # the general path looks whether it landed
            note_unknown(attempts, {**known.meta, **update}, len(new), exc)
            return None
        self.known.remember(
            conv.name,
            None
            if copies is None or kept is None
            else Known(
                known.version + len(new),
                digest,
                known.raw + copies,
                {**known.meta, **update},
                known.messages() + kept,
            ),
        )
        return len(new)

    # --- the framework's session interface ---------------------------------------------

    def save_session(self, session_data: Any) -> bool:
        """Store a session record of the framework; its conversation as the log."""
        session_id, conversation, fields = session_fields(session_data)
        spec = self.store.kinds.get(CONVERSATION, "log")
        given = {"session_id": session_id, **fields}
        if conversation is not None:
            self._save(Conversation(spec, session_id, conversation), given, SESSION_KEYS)
            return True
        # No conversation in this result (a workflow's): only the head changes. The write
        # sets the head to ``meta``: after a lost reply, reading it back says whether it
        # landed (then it equals), so looking again is the retry.
        conflict: DocStoreError | None = None
        for _attempt in range(SAVE_ATTEMPTS):
            head, old_meta, meta = self._head(session_id, given, SESSION_KEYS)
            if head is not None and meta == old_meta:
                return True
            try:
                self.store.append(CONVERSATION, session_id, [], expected_version=cas(head), meta=meta)
            except (VersionConflict, OutcomeUnknown) as exc:
                conflict = exc
                continue
            self.known.remember(session_id, None)
            return True
        assert conflict is not None
        raise conflict

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        """A session record as ``save_session`` was given it, or None."""
        self.store.kinds.get(CONVERSATION, "log")  # a kind that is no log fails, session or not
        try:
            head = self.store.get(CONVERSATION, session_id)
        except DocumentNotFound:
            return None
        meta = store_meta(head.data)
        messages = self._read_dicts(session_id, None) if logged(meta) else None
        return session_view(head, meta, messages)

    def get_session_history(self, session_id: str) -> list[dict[str, Any]] | None:
        """The session's conversation, or None (no such session, or a workflow's)."""
        record = self.get_session(session_id)
        if record is None:
            return None
        history = record["execution_result"].get("conversation_history")
        return history if isinstance(history, list) else None

    def get_sessions_list(
        self, agent_name: str | None, workflow_name: str | None, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """(rows, total) of the sessions, newest first; a workflow's runs or an agent's
        own. One statement, reading only the page's heads (through agents.sql's indexes)
        at any offset."""
        page = list_page(
            self.store,
            lambda counted: sessions_page(
                self.store.schema, agent_name, workflow_name, limit, offset, counted
            ),
            "listing sessions",
        )
        return [list_row(*row) for row in page.rows], page.total

    def delete_session(self, session_id: str) -> bool:
        """Hide a session behind a tombstone (restorable until docstore's retention
        removes it); a workflow's takes its agents' sessions with it."""
        with self.store.transaction():
            try:
                head = self.store.get(CONVERSATION, session_id)
            except DocumentNotFound:
                return False
            meta = store_meta(head.data)
            doomed = [head]
            base = meta.get("base_session_id")
            if meta.get("result_type") == "workflow" and base:
                agents = self.store.list(
                    CONVERSATION, where={"base_session_id": base, "result_type": {"$ne": "workflow"}}
                )
                doomed += [doc for doc in agents if doc.name != session_id]
            if len(doomed) > 1:
                # Which sessions went with the workflow, so restore_session can bring them
                # back: a hidden session is found by no listing.
                meta[HIDDEN_WITH] = [doc.name for doc in doomed[1:]]
                self.store.append(CONVERSATION, session_id, [], expected_version=cas(head), meta=meta)
            for doc in doomed:
                self.store.delete(CONVERSATION, doc.name, expected_version=doc.version or None)
                self.known.remember(doc.name, None)
            return True

    def cleanup_old_sessions(self, days: int, max_sessions: int) -> int:
        """Hide sessions last written more than ``days`` ago, then all but the newest
        ``max_sessions``, behind tombstones; returns how many were hidden."""
        if not isinstance(days, int | float) or days < 0:
            raise ValueError(f"days must be a non-negative number, not {days!r}")
        if not isinstance(max_sessions, int) or max_sessions < 0:
            raise ValueError(f"max_sessions must be a non-negative int, not {max_sessions!r}")
        # One statement a batch, each head re-checked once locked: a session saved after
        # the cleanup began is kept.
        old = self.store.prune_documents(CONVERSATION, older_than=timedelta(days=days), restorable=True)
        over = self.store.prune_documents(CONVERSATION, keep_last=max_sessions, restorable=True)
        hidden = old + over
        self.known.clear()
        # Aurite cleans up before every list: the lists' totals then sum few deltas.
        fold_counts(self.store, CLEANUP_FOLD_AT)
        return hidden

    def restore_session(self, session_id: str) -> bool:
        """Bring back a session that ``delete_session`` or ``cleanup_old_sessions`` hid,
        with its messages; a workflow's brings back the agents' sessions it lists in
        ``agents_involved`` or hid with it. True when the session is live afterwards; False when there
        is no such session (never saved, or pruned or purged: gone for good)."""
        with self.store.transaction():
            try:
                self.store.restore(CONVERSATION, session_id)
            except DocumentNotFound:
                return False
            head = self.store.get(CONVERSATION, session_id)
            meta = store_meta(head.data)
            if meta.get("result_type") == "workflow":
                names = [*(meta.get(HIDDEN_WITH) or ()), *(meta.get("agents_involved") or ())]
                for name in dict.fromkeys(names):
                    if isinstance(name, str) and name != session_id:
                        try:
                            self.store.restore(CONVERSATION, name)
                        except DocumentNotFound:
                            continue  # pruned or purged since: gone for good
                        self.known.remember(name, None)
            self.known.remember(session_id, None)
            return True


def list_page(
    store: DocStore, statement: Callable[[bool], tuple[sql.Composed, dict[str, Any]]], what: str
) -> Page:
    """A page of one of the framework's lists; ``statement(counted)`` builds its
    statement. Its total is read from agents.sql's counts, or counted on a store whose
    agents.sql predates them; past :data:`FOLD_AT` deltas summed, they are folded."""
    query, params = statement(True)
    try:
        page = page_of(fetch(store, query, params, what))
    except SchemaMissing:
        query, params = statement(False)
        return page_of(fetch(store, query, params, what))
    if page.pending > FOLD_AT:
        fold_counts(store)
    return page


def fold_counts(store: DocStore, least: int = 0) -> int:
    """Fold the lists' deltas into their counts (agents.sql) when there are more than
    ``least``; how many were folded (0 on a store without the counts, or while another
    fold runs)."""
    query, params = fold(store.schema, least)
    try:
        rows = fetch(store, query, params, "folding the lists' counts")
    except SchemaMissing:
        return 0
    except DocStoreError as exc:
        # Upkeep, not the call's work: a role that may read the lists but not fold them
        # (or a fold that failed) leaves the deltas for the next fold; totals stay exact.
        logger.warning("%s", exc)
        return 0
    folded = int(rows[0][0])
    if folded > VACUUM_AFTER:
        try:
            with store.pool.connection() as conn:
                if conn.autocommit:  # VACUUM runs in no transaction
                    conn.execute(vacuum_deltas(store.schema))
        except psycopg.Error as exc:
            logger.warning("%s", translate(store.schema, "vacuuming the lists' deltas", exc))
    return folded


def fetch(store: DocStore, query: sql.Composed, params: dict[str, Any], what: str) -> list[tuple[Any, ...]]:
    """The rows of one of :mod:`._layout`'s statements, run on the store's pool."""
    try:
        with store.pool.connection() as conn:
            cur = conn.execute(query, params)
            rows: list[tuple[Any, ...]] = cur.fetchall()
            return rows
    except psycopg.Error as exc:
        raise translate(store.schema, what, exc) from exc
