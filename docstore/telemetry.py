"""OpenTelemetry for code built on docstore (docs/observability.md): calls of a layer
above the store, traced and timed the way the store's own calls are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from . import _otel

__all__ = ["traced_call"]

F = TypeVar("F", bound=Callable[..., Any])


def traced_call(method: F) -> F:
    """Decorate a storage method (sync or async) of a framework built on docstore: each
    call is an INTERNAL span, parent of the store calls it makes, timed in the
    ``docstore.agents.operation.duration`` histogram. Its identifying arguments
    (``agent_name``, ``session_id``, ``name``, ...) become span attributes; no content
    does. Free when no OpenTelemetry SDK is configured."""
    return _otel.framework(method)
