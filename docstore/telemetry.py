"""OpenTelemetry for code built on docstore (docs/observability.md): calls of a layer
above the store, traced and timed the way the store's own calls are, under names the
layer chooses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from . import _otel

__all__ = ["CallTracer"]

F = TypeVar("F", bound=Callable[..., Any])


class CallTracer:
    """A decorator for the methods (sync or async) of a layer built on docstore: each
    call is an INTERNAL span named by the method's qualified name (``Library.save``),
    the parent of the store calls it makes, and its duration is recorded in the
    histogram ``metric`` (seconds).

    Spans carry ``code.function.name`` and ``operation_attribute`` (the method's name);
    the histogram's points carry ``operation_attribute``, and ``error.type`` for a call
    that raised. ``arguments`` maps a parameter to the span attribute that shows it when
    a call passes a str; ``fields`` maps a Mapping parameter to its entries shown so
    (``{"session": {"id": "session.id"}}``). Show identifiers only, never content. Free
    when no OpenTelemetry SDK is configured.
    """

    __slots__ = ("arguments", "description", "fields", "metric", "operation_attribute")

    def __init__(
        self,
        *,
        metric: str,
        operation_attribute: str,
        description: str = "",
        arguments: Mapping[str, str] | None = None,
        fields: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.metric = metric
        self.operation_attribute = operation_attribute
        self.description = description
        self.arguments: Mapping[str, str] = dict(arguments or {})
        self.fields: Mapping[str, Mapping[str, str]] = {k: dict(v) for k, v in (fields or {}).items()}

    def __call__(self, method: F) -> F:
        """``method``, traced."""
        return _otel.traced(
            method,
            metric=self.metric,
            description=self.description,
            operation=self.operation_attribute,
            arguments=self.arguments,
            fields=self.fields,
        )

    def __repr__(self) -> str:
        return f"CallTracer(metric={self.metric!r}, operation_attribute={self.operation_attribute!r})"
