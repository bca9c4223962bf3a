"""The agents layer's telemetry (docs/observability.md): StorageManager's calls traced by
the core's CallTracer, under the layer's own metric and attribute names."""

from __future__ import annotations

from docstore.telemetry import CallTracer

traced_call = CallTracer(
    metric="docstore.agents.operation.duration",
    operation_attribute="docstore.agents.operation",
    description="Duration of the agent framework's storage calls (StorageManager)",
    # Identifiers only (agent, session, config names); never a message or a config's content.
    arguments={
        "agent_name": "gen_ai.agent.name",
        "session_id": "gen_ai.conversation.id",
        "workflow_name": "docstore.agents.workflow_name",
        "component_name": "docstore.name",
        "result_id": "docstore.name",
        "kind": "docstore.kind",
        "name": "docstore.name",
    },
    fields={"session_data": {"session_id": "gen_ai.conversation.id"}},
)
"""Decorates a StorageManager method: a span, parent of its store calls, and its duration."""
