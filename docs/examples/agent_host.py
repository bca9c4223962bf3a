"""A small agent host that persists its configs and conversations with docstore.

It keeps its configs in memory, as a framework does, and mirrors them to PostgreSQL
through :class:`docstore.agents.StorageManager` when ``AURITE_ENABLE_DB`` is on. Agents
answer through a deterministic fake LLM, so a run is reproducible. An agent with
``include_history`` loads its session's history before answering and saves the new
turns after; without it, nothing is loaded or saved.

Run it (persistence on)::

    AURITE_ENABLE_DB=1 AURITE_DB_URL=postgresql://postgres@127.0.0.1:5432/test \\
        python docs/examples/agent_host.py

Without ``AURITE_ENABLE_DB`` it runs the same turns with no database at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docstore.agents import (
    AgentConfig,
    CustomWorkflowConfig,
    GraphWorkflowConfig,
    LinearWorkflowConfig,
    LLMConfig,
    MCPServerConfig,
    StorageManager,
    SyncReport,
    load_configs,
)


class FakeLLM:
    """A deterministic stand-in for an LLM: it says how much it saw and echoes the user."""

    def complete(
        self, model: str, system_prompt: str | None, messages: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """The assistant's reply to ``messages``, as an Anthropic-style message dict."""
        last = messages[-1]["content"] if messages else ""
        return {
            "role": "assistant",
            "content": f"[{model}] {len(messages)} message(s) seen; you said: {last}",
        }


@dataclass
class RunResult:
    """What one agent run produced."""

    agent_name: str
    session_id: str | None
    reply: str
    messages: list[dict[str, Any]]
    """The conversation the LLM saw, plus its reply."""


@dataclass
class AgentHost:
    """Configs in memory, mirrored to the database when ``storage`` is given."""

    storage: StorageManager | None = None
    llm: FakeLLM = field(default_factory=FakeLLM)
    agents: dict[str, AgentConfig] = field(default_factory=dict)
    llms: dict[str, LLMConfig] = field(default_factory=dict)
    mcp_servers: dict[str, MCPServerConfig] = field(default_factory=dict)
    workflows: dict[str, LinearWorkflowConfig | GraphWorkflowConfig] = field(default_factory=dict)
    custom_workflows: dict[str, CustomWorkflowConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.storage is not None:
            self.storage.init_db()
            self._restore()

    @classmethod
    def from_env(cls, **storage_options: Any) -> AgentHost:
        """A host with persistence when ``AURITE_ENABLE_DB`` is on, else without."""
        return cls(StorageManager.from_env(**storage_options))

    def close(self) -> None:
        """Close the database connections, if any."""
        if self.storage is not None:
            self.storage.close()

    def _restore(self) -> None:
        # A restarted host gets back what was registered at run time, not only its files.
        assert self.storage is not None
        stored = self.storage.load_all_configs()
        self.agents.update(stored["agent"])
        self.llms.update(stored["llm"])
        self.mcp_servers.update(stored["mcp_server"])
        self.workflows.update(stored["linear_workflow"])
        self.workflows.update(stored["graph_workflow"])
        self.custom_workflows.update(stored["custom_workflow"])

    # --- configs -----------------------------------------------------------------------

    def load_config_files(self, path: str | Path) -> SyncReport | None:
        """Load config files and persist them in one transaction (None without storage).

        A broken entry stops the load: nothing is registered or stored.
        """
        loaded = load_configs(path, strict=True)
        self.agents.update(loaded.agents)
        self.llms.update(loaded.llms)
        self.mcp_servers.update(loaded.mcp_servers)
        self.workflows.update(loaded.linear_workflows)
        self.workflows.update(loaded.graph_workflows)
        self.custom_workflows.update(loaded.custom_workflows)
        if self.storage is None:
            return None
        return self.storage.sync_all_configs(
            agents=loaded.agents,
            workflows=[*loaded.linear_workflows.values(), *loaded.graph_workflows.values()],
            custom_workflows=loaded.custom_workflows,
            llm_configs=loaded.llms,
            mcp_servers=loaded.mcp_servers,
        )

    def register_agent(self, config: AgentConfig | Mapping[str, Any]) -> AgentConfig:
        """Register an agent at run time; persisted at once when storage is on."""
        agent = AgentConfig.model_validate(config)
        if self.storage is not None:
            self.storage.sync_agent_config(agent)
        self.agents[agent.name] = agent
        return agent

    def register_llm(self, config: LLMConfig | Mapping[str, Any]) -> LLMConfig:
        """Register an LLM config at run time; persisted at once when storage is on."""
        llm = LLMConfig.model_validate(config)
        if self.storage is not None:
            self.storage.sync_llm_config(llm)
        self.llms[llm.name] = llm
        return llm

    # --- running -----------------------------------------------------------------------

    def run_agent(self, agent_name: str, user_message: str, session_id: str | None = None) -> RunResult:
        """Run one turn of an agent; with include_history, in the session's history."""
        agent = self.agents[agent_name]
        llm = self.llms.get(agent.llm_config_id or "")
        model = (agent.llm.model if agent.llm and agent.llm.model else None) or (
            llm.model if llm else "fake-model"
        )
        system_prompt = agent.system_prompt or (llm.default_system_prompt if llm else None)
        remember = bool(agent.include_history) and self.storage is not None and bool(session_id)
        messages: list[dict[str, Any]] = []
        if remember:
            assert self.storage is not None
            # All of it (limit=0): save_full_history below gets the whole conversation,
            # so nothing older is replaced. Long sessions would use append_history instead.
            messages = self.storage.load_history(agent_name, session_id, limit=0)
        messages.append({"role": "user", "content": user_message})
        reply = self.llm.complete(model, system_prompt, messages)
        messages.append(reply)
        if remember:
            assert self.storage is not None
            self.storage.save_full_history(agent_name, session_id, messages)
        return RunResult(agent_name, session_id, reply["content"], messages)


DEMO_PROJECT: dict[str, Any] = {
    "llms": [{"name": "fake", "provider": "fake", "model": "fake-1"}],
    "agents": [
        {
            "name": "weather",
            "llm_config_id": "fake",
            "include_history": True,
            "system_prompt": "You answer questions about the weather.",
        }
    ],
}


def main() -> None:
    """Register the demo configs, run two turns in one session, and print the replies."""
    import json
    import tempfile

    host = AgentHost.from_env()
    try:
        print("persistence:", "on" if host.storage is not None else "off")
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp) / "project.json"
            project.write_text(json.dumps(DEMO_PROJECT), encoding="utf-8")
            report = host.load_config_files(project)
        if report is not None:
            print("config sync:", str(report).splitlines()[0])
        host.register_agent({"name": "echo", "llm_config_id": "fake"})
        for text in ("Will it rain in Paris?", "And tomorrow?"):
            print(host.run_agent("weather", text, session_id="demo").reply)
        print(host.run_agent("echo", "hello", session_id="demo").reply)
    finally:
        host.close()


if __name__ == "__main__":
    main()
