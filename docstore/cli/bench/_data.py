"""Realistic documents for the benchmark: agent configs of about 2 KB, messages of about
1 KB with tool calls, in the shapes the agent framework writes them."""

from __future__ import annotations

import copy
from typing import Any

_PROMPT = (
    "You are a meticulous weather assistant for a logistics company. Answer questions about "
    "current conditions and forecasts for the depots listed in the context, always state the "
    "time the data refers to, convert units to metric unless asked otherwise, and call the "
    "forecast tool rather than guessing. When a route crosses several regions, summarise the "
    "worst expected conditions first, then the details per region. Escalate to a human when "
    "a severe weather warning is active for any depot on the route. "
)


def agent_config(i: int, rev: int = 0) -> dict[str, Any]:
    """An agent config of about 2 KB as plain data (what a config file or API gives)."""
    return {
        "name": f"weather-agent-{i}",
        "description": f"Weather and route-risk assistant #{i}, revision {rev}",
        "mcp_servers": ["weather_server", "maps_server", "depot_registry", "alerts_feed"],
        "auto": False,
        "llm_config_id": "anthropic_claude_sonnet",
        "llm": {
            "model": "claude-sonnet-4",
            "temperature": 0.2,
            "max_tokens": 2048,
            "system_prompt": "Keep answers under 200 words.",
        },
        "system_prompt": _PROMPT * 2,
        "config_validation_schema": {
            "type": "object",
            "properties": {
                "route": {"type": "array", "items": {"type": "string"}},
                "depart_at": {"type": "string", "format": "date-time"},
                "units": {"type": "string", "enum": ["metric", "imperial"]},
                "risk": {
                    "type": "object",
                    "properties": {
                        "wind_kmh": {"type": "number"},
                        "rain_mm": {"type": "number"},
                        "visibility_m": {"type": "integer"},
                    },
                },
            },
            "required": ["route", "depart_at"],
        },
        "max_iterations": 25,
        "include_history": True,
        "include_logging": False,
        "exclude_components": ["legacy_geocoder", "beta_radar"],
        "evaluation": {"rubric": "accuracy, units, escalation", "threshold": 0.8},
    }


_TOOL_INPUT = {
    "route": ["Rotterdam depot", "Antwerp hub", "Lille cross-dock", "Paris Nord"],
    "depart_at": "2025-03-14T06:30:00+01:00",
    "units": "metric",
    "include": ["wind", "precipitation", "visibility", "warnings"],
}

_TEXT = (
    "Checking the forecast along the route before the early departure. The drivers "
    "asked specifically about crosswinds on the bridges and fog near the border, so "
    "I will request wind gusts, precipitation and visibility for each stop. "
)

_RESULT = (
    "Rotterdam: 9 C, gusts 54 km/h from WSW, light rain 1.2 mm/h, visibility 6 km. "
    "Antwerp: 10 C, gusts 47 km/h, rain 0.4 mm/h, visibility 8 km. Lille: 11 C, "
    "gusts 38 km/h, dry, fog patches until 09:00 with visibility down to 300 m. "
    "Paris Nord: 12 C, gusts 30 km/h, dry, visibility 10 km. Active warnings: "
    "yellow wind warning for Zeeland until 12:00. "
)


def message(i: int) -> dict[str, Any]:
    """The i-th message of a tool-using conversation, about 1 KB, cycling through an
    Anthropic tool_use turn, its tool_result, and an OpenAI-style tool-call turn."""
    step = i % 4
    if step == 0:
        return {"role": "user", "content": f"[{i}] " + _TEXT * 4 + _TEXT[:40]}
    if step == 1:
        return {
            "role": "assistant",
            "content": [
                {"type": "text", "text": _TEXT * 2 + _TEXT[:120]},
                {
                    "type": "tool_use",
                    "id": f"toolu_{i:08d}",
                    "name": "get_route_forecast",
                    "input": copy.deepcopy(_TOOL_INPUT),
                },
            ],
            "usage": {"input_tokens": 1830 + i, "output_tokens": 212},
        }
    if step == 2:
        return {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": f"toolu_{i - 1:08d}",
                    "content": [{"type": "text", "text": _RESULT * 2 + _RESULT[:190]}],
                }
            ],
        }
    return {
        "role": "assistant",
        "content": _TEXT + _TEXT[:110],
        "tool_calls": [
            {
                "id": f"call_{i:08d}",
                "type": "function",
                "function": {
                    "name": "notify_dispatch",
                    "arguments": (
                        '{"depot": "Rotterdam depot", "severity": "yellow", '
                        '"message": "Gusts up to 54 km/h on the Zeeland bridges until '
                        '12:00; consider the A16 inland route.", "ack_required": true}'
                    ),
                },
            },
            {
                "id": f"call_{i:08d}b",
                "type": "function",
                "function": {
                    "name": "log_decision",
                    "arguments": (
                        '{"route": ["Rotterdam", "Antwerp", "Lille", "Paris"], '
                        '"decision": "depart on time, avoid the coastal bridges", '
                        '"reason": "wind warning"}'
                    ),
                },
            },
        ],
        "usage": {"prompt_tokens": 2100 + i, "completion_tokens": 140},
    }


def conversation(n: int, start: int = 0) -> list[dict[str, Any]]:
    """``n`` messages, the first being message ``start``."""
    return [message(i) for i in range(start, start + n)]
