"""The trace of one agent turn of the aurite framework on docstore, as an operator sees it.

Not part of the suite (no test_ prefix): its output is in docs/observability.md.

    .venv/bin/python tests/scale/otel_agent_turn.py   # DOCSTORE_URL, else 127.0.0.1:5432/postgres

The framework runs on docstore through ``docstore.agents.aurite.install()``, its LLM is the
stand-in server of tests/agents/llm_standin.py, and the SDK records in memory. The
first turn registers the agent and starts the session; the second is traced under a
span of the host's own ("agent turn"), and printed as a tree with each span's duration
and its docstore attributes. A scratch schema is used, then dropped.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agents"))

import psycopg
from llm_standin import StandInLLM
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

DSN = os.environ.get("DOCSTORE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
SHOWN = ("gen_ai.conversation.id", "docstore.name", "docstore.version", "error.type")


def tree(spans: list[ReadableSpan]) -> list[str]:
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)
    lines: list[str] = []

    def show(span: ReadableSpan, depth: int) -> None:
        attributes = span.attributes or {}
        took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        said = " ".join(f"{key}={attributes[key]!s}" for key in SHOWN if key in attributes)
        lines.append(f"{'  ' * depth}{span.name} [{span.kind.name}] {took:.1f} ms {said}".rstrip())
        for child in sorted(children.get(span.context.span_id, []), key=lambda s: s.start_time or 0):
            show(child, depth + 1)

    for root in sorted(children.get(None, []), key=lambda s: s.start_time or 0):
        show(root, 0)
    return lines


async def turns(exporter: InMemorySpanExporter, api_base: str) -> Any:
    from aurite import Aurite
    from aurite.lib.models.config.components import AgentConfig, LLMConfig

    session = f"agent-{uuid.uuid4().hex[:8]}"
    async with Aurite(disable_logging=True) as aurite:
        llm = LLMConfig(
            name="local",
            provider="openai",
            model="any",
            api_base=api_base,
            api_key_env_var="LLM_API_KEY",
        )
        await aurite.register_llm(llm)
        agent = AgentConfig(
            name="concierge",
            llm_config_id="local",
            include_history=True,
            system_prompt="Be brief.",
        )
        await aurite.register_agent(agent)
        await aurite.run_agent("concierge", "Hello!", session_id=session)
        exporter.clear()
        with trace.get_tracer("host").start_as_current_span("agent turn"):
            return await aurite.run_agent("concierge", "What did I just say?", session_id=session)


def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    schema = f"otel_turn_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, StandInLLM() as llm:
        root = Path(tmp)
        (root / ".aurite").write_text('[aurite]\ntype = "project"\n')
        os.chdir(root)
        os.environ.update(
            AURITE_ENABLE_DB="true",
            AURITE_DB_URL=DSN,
            AURITE_DB_SCHEMA=schema,
            AURITE_DB_PATH=str(root / "own.db"),
            CACHE_DIR=str(root / "cache"),
            HOME=str(root),
            LLM_API_KEY="sk-local",
        )
        from docstore.agents.aurite import install

        install()
        try:
            result = asyncio.run(turns(exporter, llm.api_base))
        finally:
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    print(f"# the reply: {result.primary_text}")
    print("\n".join(tree(list(exporter.get_finished_spans()))))


if __name__ == "__main__":
    main()
