"""The agent layer's kinds, registered in one place: every user of the layer (the
StorageManager, the CLI, the demo, the bench) gets them from :func:`agent_registry`."""

from __future__ import annotations

from docstore.kinds import Kind, Registry

from ._sessions import QA_RESULT, QAResult
from .configs import CONFIG_KINDS
from .messages import CONVERSATION_KIND

__all__ = ["QA_RESULT_KIND", "agent_registry", "register_kinds"]

QA_RESULT_KIND: Kind[QAResult] = Registry().register(QA_RESULT, QAResult)
"""The ``qa_result`` kind: the evaluation results the framework saves (:class:`QAResult`)."""


def agent_registry() -> Registry:
    """A new registry holding the agent framework's kinds: the config kinds
    (:data:`~docstore.agents.CONFIG_KINDS`), ``conversation`` and ``qa_result``, with their
    models and upgraders. Its kinds are the layer's handles themselves (``AGENT``,
    ``CONVERSATION_KIND``, ...), so those work on any store built with it; register an
    app's own kinds on it as on any registry.
    """
    kinds = Registry()
    for kind in (*CONFIG_KINDS.values(), CONVERSATION_KIND, QA_RESULT_KIND):
        kinds.add(kind)
    return kinds


def register_kinds(registry: Registry) -> None:
    """Add the layer's kinds (:func:`agent_registry`) where they are missing.

    A kind the caller registered already is left as it is.
    """
    for kind in agent_registry():
        if kind.name not in registry:
            registry.add(kind)
