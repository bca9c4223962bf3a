"""The framework's session records, as docstore holds them: I/O-free conversions.

A session is one ``conversation`` log named by its session id. The framework hands
``save_session`` a record whose ``execution_result`` may carry a ``conversation_history``:
that list is the log (a save that extends it appends only the new messages); the rest
of the result and the session's fields (``name``, ``result_type``, ``base_session_id``,
``agents_involved``) are the log head's metadata. A workflow's result (``step_results``
or ``node_results`` with its agents' conversations nested) is kept whole in the head.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

from docstore.doc import Doc
from docstore.errors import DocumentInvalid

__all__ = [
    "QA_RESULT",
    "SESSION_KEYS",
    "QAResult",
    "list_row",
    "logged",
    "qa_record",
    "qa_row",
    "session_fields",
    "session_view",
]

QA_RESULT = "qa_result"
"""The kind QA test results are stored under."""

HISTORY = "conversation_history"

SESSION_KEYS = frozenset(
    {
        "agent_name",
        "workflow_name",
        "name",
        "result_type",
        "base_session_id",
        "agents_involved",
        "message_count",
        "result",
        "history_in_result",
    }
)
"""Head keys a ``save_session`` sets as given, clearing those it leaves out."""


class QAResult(BaseModel):
    """A QA test result (kind ``qa_result``, named by its result id). Extra keys are kept."""

    model_config = ConfigDict(extra="allow")

    evaluation_config_id: str = Field(min_length=1)
    result: Any = None
    component_type: str | None = None
    overall_score: float | None = None
    status: str | None = None


def iso(moment: datetime) -> str:
    """A time as the framework writes it: naive UTC, ISO 8601."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat()


def _jsonable(value: Any) -> Any:
    # The framework puts the exception object of a failed run into its result; a value
    # JSON cannot hold is kept as its str(), as the framework's own storage does.
    return to_jsonable_python(value, fallback=str)


def session_fields(session_data: Any) -> tuple[str, list[Any] | None, dict[str, Any]]:
    """(session id, the conversation to log or None, the head's session keys)."""
    if not isinstance(session_data, Mapping):
        raise DocumentInvalid(
            "conversation",
            "<session>",
            None,
            [{"loc": (), "msg": f"a session is a dict, not {type(session_data).__name__}"}],
            "write",
        )
    session_id = session_data.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise DocumentInvalid(
            "conversation",
            "<session>",
            None,
            [{"loc": ("session_id",), "msg": "a session needs a non-empty session_id string"}],
            "write",
        )
    result = session_data.get("execution_result")
    result = {} if result is None else result
    if not isinstance(result, Mapping):
        raise DocumentInvalid(
            "conversation",
            session_id,
            None,
            [
                {
                    "loc": ("execution_result",),
                    "msg": f"execution_result is a dict, not {type(result).__name__}",
                }
            ],
            "write",
        )
    conversation = result.get(HISTORY)
    logged = isinstance(conversation, list)
    body = {k: v for k, v in result.items() if not (logged and k == HISTORY)}
    result_type = session_data.get("result_type") or "agent"
    name = session_data.get("name")
    fields: dict[str, Any] = {
        "name": name,
        "result_type": result_type,
        "agent_name": name if result_type != "workflow" else None,
        "workflow_name": name if result_type == "workflow" else None,
        "base_session_id": session_data.get("base_session_id"),
        "agents_involved": session_data.get("agents_involved"),
        "message_count": None if logged else session_data.get("message_count"),
        "result": _jsonable(body),
        "history_in_result": True if logged else None,
    }
    return session_id, conversation if logged else None, fields


def logged(meta: Mapping[str, Any]) -> bool:
    """True when the session's conversation is its log (not inside its result)."""
    return meta.get("result") is None or bool(meta.get("history_in_result"))


def _count(items: int | None, meta: Mapping[str, Any]) -> int:
    if logged(meta):
        return items or 0
    return int(meta.get("message_count") or 0)


def _name(meta: Mapping[str, Any]) -> str | None:
    name = meta.get("name") or meta.get("agent_name") or meta.get("workflow_name")
    return None if name is None else str(name)


def list_row(
    name: str, meta: Mapping[str, Any], items: int, created_at: datetime, updated_at: datetime
) -> dict[str, Any]:
    """A session's row of ``get_sessions_list``, as the framework's storage gives it
    (``items``: the live messages of its log)."""
    result_type = meta.get("result_type") or "agent"
    return {
        "session_id": name,
        "base_session_id": meta.get("base_session_id"),
        "name": _name(meta),
        "result_type": result_type,
        "is_workflow": result_type == "workflow",
        "message_count": _count(items, meta),
        "agents_involved": meta.get("agents_involved"),
        "created_at": iso(created_at),
        "last_updated": iso(updated_at),
    }


def session_view(head: Doc[Any], meta: Mapping[str, Any], messages: list[Any] | None) -> dict[str, Any]:
    """The record ``get_session`` returns: what ``save_session`` was given, with the
    store's times."""
    body = meta.get("result")
    if body is None:  # written by save_full_history / append_history
        result: dict[str, Any] = {HISTORY: messages or [], "agent_name": meta.get("agent_name")}
    else:
        result = dict(body)
        if messages is not None:
            result[HISTORY] = messages
    return {
        "session_id": head.name,
        "base_session_id": meta.get("base_session_id"),
        "execution_result": result,
        "result_type": meta.get("result_type") or "agent",
        "created_at": iso(head.created_at),
        "last_updated": iso(head.updated_at),
        "name": _name(meta),
        "message_count": _count(head.count, meta),
        "agents_involved": meta.get("agents_involved"),
    }


def qa_record(result_data: Any) -> tuple[str, dict[str, Any]]:
    """(result id, the stored record) of a ``save_qa_result`` argument."""
    if not isinstance(result_data, Mapping):
        raise DocumentInvalid(
            QA_RESULT,
            "<result>",
            None,
            [{"loc": (), "msg": f"a QA result is a dict, not {type(result_data).__name__}"}],
            "write",
        )
    result_id = result_data.get("result_id")
    if not isinstance(result_id, str) or not result_id:
        raise DocumentInvalid(
            QA_RESULT,
            "<result>",
            None,
            [{"loc": ("result_id",), "msg": "a QA result needs a non-empty result_id string"}],
            "write",
        )
    record = {k: v for k, v in result_data.items() if k not in ("result_id", "created_at")}
    return result_id, _jsonable(record)


def qa_row(name: str, value: Any, created_at: datetime, full: bool) -> dict[str, Any]:
    """A stored QA result as the framework's storage returns it (``full``: with its
    ``result``, as ``get_qa_result`` does; the list leaves it out)."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else dict(value)
    row = {"result_id": name, "evaluation_config_id": data.get("evaluation_config_id")}
    if full:
        row["result"] = data.get("result")
    row.update(
        component_type=data.get("component_type"),
        overall_score=data.get("overall_score"),
        status=data.get("status"),
        created_at=iso(created_at),
    )
    return row
