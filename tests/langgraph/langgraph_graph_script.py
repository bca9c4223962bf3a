"""A LangGraph StateGraph that stops at an interrupt, for tests/langgraph: run ``start`` in
one process and ``resume`` in another, each with a checkpointer of its own on the store.

    python langgraph_graph_script.py DSN SCHEMA THREAD start|resume sync|async

prints the graph's result (and, after ``resume``, the history's length) as JSON.
"""

from __future__ import annotations

import asyncio
import json
import operator
import sys
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from docstore import AsyncDocStore, DocStore
from docstore.langgraph import AsyncDocStoreSaver, DocStoreSaver


class State(TypedDict):
    topic: str
    steps: Annotated[list[str], operator.add]


def draft(state: State) -> dict[str, Any]:
    return {"steps": [f"draft about {state['topic']}"]}


def review(state: State) -> dict[str, Any]:
    verdict = interrupt({"question": "publish?", "draft": state["steps"][-1]})
    return {"steps": [f"review: {verdict}"]}


def publish(state: State) -> dict[str, Any]:
    return {"steps": [f"published ({len(state['steps'])} steps before)"]}


def build() -> StateGraph[State]:
    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_node("review", review)
    graph.add_node("publish", publish)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "review")
    graph.add_edge("review", "publish")
    graph.add_edge("publish", END)
    return graph


def run_sync(dsn: str, schema: str, thread: str, step: str) -> dict[str, Any]:
    with DocStore.connect(dsn, schema=schema) as store:
        app = build().compile(checkpointer=DocStoreSaver(store))
        config: Any = {"configurable": {"thread_id": thread}}
        if step == "start":
            out = app.invoke({"topic": "rain", "steps": []}, config)
            return {"steps": out["steps"], "next": list(app.get_state(config).next)}
        out = app.invoke(Command(resume="approved"), config)
        return {"steps": out["steps"], "history": len(list(app.get_state_history(config)))}


async def run_async(dsn: str, schema: str, thread: str, step: str) -> dict[str, Any]:
    async with await AsyncDocStore.connect(dsn, schema=schema) as store:
        app = build().compile(checkpointer=AsyncDocStoreSaver(store))
        config: Any = {"configurable": {"thread_id": thread}}
        if step == "start":
            out = await app.ainvoke({"topic": "rain", "steps": []}, config)
            return {"steps": out["steps"], "next": list((await app.aget_state(config)).next)}
        out = await app.ainvoke(Command(resume="approved"), config)
        return {"steps": out["steps"], "history": len([s async for s in app.aget_state_history(config)])}


if __name__ == "__main__":
    dsn, schema, thread, step, mode = sys.argv[1:6]
    if mode == "sync":
        result = run_sync(dsn, schema, thread, step)
    else:
        result = asyncio.run(run_async(dsn, schema, thread, step))
    print(json.dumps(result))
