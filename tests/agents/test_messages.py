"""Conversation messages in both formats, and the conversation head."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from docstore.agents import (
    CONVERSATION_KIND,
    MESSAGE_ADAPTER,
    MESSAGES_ADAPTER,
    AnthropicMessage,
    ConversationMeta,
    OpenAIMessage,
    message_text,
    message_tool_names,
)
from docstore.agents.messages import STORED_MESSAGE

ANTHROPIC: list[dict[str, Any]] = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {"city": "Paris"}},
        ],
        "usage": {"input_tokens": 12, "output_tokens": 30},
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "tu_1", "content": "18C, sunny"},
            {
                "type": "tool_result",
                "tool_use_id": "tu_2",
                "content": [{"type": "text", "text": "boom"}],
                "is_error": True,
            },
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
            },
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "text", "text": "What is this?", "cache_control": {"type": "ephemeral"}},
        ],
    },
]

OPENAI: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            },
            {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{}"}},
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    {
        "role": "user",
        "name": "alice",
        "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        ],
    },
]


@pytest.mark.parametrize("raw", ANTHROPIC)
def test_anthropic_message_validates_as_anthropic_and_round_trips(raw: dict[str, Any]) -> None:
    message = MESSAGE_ADAPTER.validate_python(raw)
    assert isinstance(message, AnthropicMessage)
    assert MESSAGE_ADAPTER.validate_json(MESSAGE_ADAPTER.dump_json(message)) == message
    assert MESSAGE_ADAPTER.dump_python(message, mode="json") == raw


@pytest.mark.parametrize("raw", OPENAI)
def test_openai_message_validates_as_openai_and_round_trips(raw: dict[str, Any]) -> None:
    message = MESSAGE_ADAPTER.validate_python(raw)
    assert isinstance(message, OpenAIMessage)
    assert MESSAGE_ADAPTER.validate_json(MESSAGE_ADAPTER.dump_json(message)) == message
    assert MESSAGE_ADAPTER.dump_python(message, mode="json") == raw


def test_a_conversation_mixing_both_formats_round_trips_as_a_list() -> None:
    messages = MESSAGES_ADAPTER.validate_python(ANTHROPIC + OPENAI)
    assert MESSAGES_ADAPTER.validate_json(MESSAGES_ADAPTER.dump_json(messages)) == messages


def test_plain_text_message_fits_both_and_reads_as_anthropic() -> None:
    raw = {"role": "assistant", "content": [{"type": "text", "text": "hi"}]}
    message = MESSAGE_ADAPTER.validate_json(MESSAGE_ADAPTER.dump_json(OpenAIMessage.model_validate(raw)))
    assert isinstance(message, AnthropicMessage)
    assert MESSAGE_ADAPTER.dump_python(message) == raw


def test_unknown_block_type_is_rejected_naming_the_known_ones() -> None:
    with pytest.raises(ValidationError) as exc:
        MESSAGE_ADAPTER.validate_python({"role": "user", "content": [{"type": "video"}]})
    text = str(exc.value)
    assert "'video'" in text
    assert "'text', 'tool_use', 'tool_result', 'image'" in text


def test_unknown_openai_part_type_is_rejected() -> None:
    with pytest.raises(ValidationError, match="'hologram'"):
        MESSAGE_ADAPTER.validate_python({"role": "system", "content": [{"type": "hologram", "x": 1}]})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (5, "a message must be an object with a role"),
        ({"role": "robot", "content": "x"}, "role"),
        ({"role": "tool", "content": "x"}, "a tool message needs tool_call_id"),
        ({"role": "user", "content": None}, "content may only be null"),
        (
            {"role": "user", "content": "x", "tool_calls": [{"id": "c", "function": {}}]},
            "tool_calls",
        ),
        (
            {
                "role": "user",
                "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}],
            },
            "user messages cannot hold tool_use blocks",
        ),
        (
            {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
            "assistant messages cannot hold tool_result blocks",
        ),
    ],
)
def test_invalid_messages_are_rejected_clearly(raw: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MESSAGE_ADAPTER.validate_python(raw)


def test_message_text_joins_text_blocks_only() -> None:
    texts = [message_text(MESSAGE_ADAPTER.validate_python(raw)) for raw in ANTHROPIC + OPENAI]
    assert texts == [
        "What is the weather in Paris?",
        "Let me check.",
        "",
        "What is this?",
        "You are terse.",
        "",
        "18C",
        "look",
    ]


def test_message_tool_names_lists_called_tools_in_both_formats() -> None:
    names = [message_tool_names(MESSAGE_ADAPTER.validate_python(raw)) for raw in ANTHROPIC + OPENAI]
    assert names == [[], ["weather"], [], [], [], ["weather", "time"], [], []]


def test_usage_counts_read_either_providers_names() -> None:
    anthropic = MESSAGE_ADAPTER.validate_python(ANTHROPIC[1])
    openai = MESSAGE_ADAPTER.validate_python(OPENAI[1])
    assert anthropic.usage is not None and openai.usage is not None
    assert (anthropic.usage.input_count, anthropic.usage.output_count) == (12, 30)
    assert (openai.usage.input_count, openai.usage.output_count) == (20, 7)


def test_extra_provider_fields_are_kept() -> None:
    raw = {"role": "assistant", "content": "ok", "id": "msg_1", "stop_reason": "end_turn"}
    assert MESSAGE_ADAPTER.dump_python(MESSAGE_ADAPTER.validate_python(raw)) == raw


def test_conversation_meta_requires_the_session_and_no_agent() -> None:
    # A workflow's session has no agent of its own.
    with pytest.raises(ValidationError) as exc:
        ConversationMeta.model_validate({})
    assert {e["loc"][0] for e in exc.value.errors()} == {"session_id"}
    with pytest.raises(ValidationError):
        ConversationMeta.model_validate({"session_id": "s", "agent_name": ""})


def test_conversation_meta_omits_unset_optionals_and_keeps_extras() -> None:
    meta = ConversationMeta(agent_name="a", session_id="s")
    assert meta.model_dump() == {"agent_name": "a", "session_id": "s"}
    full = ConversationMeta.model_validate(
        {
            "agent_name": "a",
            "session_id": "s",
            "workflow_name": "w",
            "parent_session_id": "p",
            "message_count": 3,
        }
    )
    assert full.workflow_name == "w" and full.parent_session_id == "p"
    assert ConversationMeta.model_validate_json(full.model_dump_json()) == full
    assert full.model_dump()["message_count"] == 3


def test_conversation_kind_is_a_log_of_messages() -> None:
    assert CONVERSATION_KIND.name == "conversation" and CONVERSATION_KIND.mode == "log"
    assert CONVERSATION_KIND.meta is not None and CONVERSATION_KIND.meta._type is ConversationMeta
    assert CONVERSATION_KIND.schema_version == 1
    assert CONVERSATION_KIND.adapter is STORED_MESSAGE  # the union's results, validated faster


def test_an_openai_tool_call_reads_back_with_or_without_its_content_key() -> None:
    call = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    bare = {"role": "assistant", "tool_calls": call}  # as aurite's streaming agent writes it
    null = {"role": "assistant", "content": None, "tool_calls": call}  # as OpenAI's SDK does
    for raw in (bare, null):
        message = MESSAGE_ADAPTER.validate_python(raw)
        assert MESSAGE_ADAPTER.dump_python(message, mode="json") == raw
        assert orjson.loads(MESSAGE_ADAPTER.dump_json(message)) == raw
        assert message_text(message) == ""
    with pytest.raises(ValidationError, match="content may only be null"):
        MESSAGE_ADAPTER.validate_python({"role": "tool", "tool_call_id": "c1"})


_EDGE_CASES: list[Any] = [
    *ANTHROPIC,
    *OPENAI,
    5,
    "x",
    None,
    [],
    {},
    {"role": "user"},
    {"role": "user", "content": None},
    {"role": "tool", "content": "x"},
    {"role": ["user"], "content": "x"},
    {"role": {"a": 1}, "content": None},
    # OpenAI's keys on an otherwise Anthropic-style message: OpenAI-style when set...
    {"role": "user", "content": "x", "name": "bob"},
    {"role": "assistant", "content": "x", "tool_call_id": "c"},
    {"role": "user", "content": "x", "tool_calls": [{"id": "c", "function": {}}]},
    # ...and an Anthropic-style message keeping them as extra fields when null.
    {"role": "user", "content": "x", "name": None, "tool_calls": None},
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]},
    {"role": "user", "content": [{"type": "refusal", "refusal": "no"}]},
    {"role": "user", "content": [{"type": "video"}]},
    {"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}]},
    {"role": "user", "content": "hi", "usage": {"input_tokens": -1}},
    {"role": "user", "content": [{"type": "text", "text": "a", "cache_control": {"x": 1}}], "extra": None},
    {"role": "user", "content": [None]},
    {"role": "user", "content": [{"type": ["text"]}]},
    {"role": "user", "content": [{"type": {"a": 1}, "text": "x"}]},
]


def _outcome(validate: Any, value: Any, *, json_errors: bool = True) -> tuple[Any, ...]:
    try:
        message = validate(value)
    except ValidationError as exc:
        if not json_errors:  # where they may differ: which fields failed, not how
            return ("invalid", [e["loc"] for e in exc.errors()])
        return ("invalid", exc.errors(include_url=False, include_context=False), str(exc))
    return (type(message), MESSAGE_ADAPTER.dump_python(message, mode="json"))


@pytest.mark.parametrize("value", _EDGE_CASES, ids=repr)
def test_the_conversation_kind_validates_as_the_message_union_does(value: Any) -> None:
    # STORED_MESSAGE validates a dict against its member directly, without the union's
    # Python discriminator: the result must be the union's, from Python and JSON, and so
    # must a Python value's errors. An invalid JSON item fails on the same fields.
    assert _outcome(STORED_MESSAGE.validate_python, value) == _outcome(MESSAGE_ADAPTER.validate_python, value)
    raw = orjson.dumps(value)
    assert _outcome(STORED_MESSAGE.validate_json, raw, json_errors=False) == _outcome(
        MESSAGE_ADAPTER.validate_json, raw, json_errors=False
    )


def test_message_adapter_keeps_the_callers_validation_settings() -> None:
    loose = {"role": "user", "content": "hi", "usage": {"input_tokens": "5"}}
    assert MESSAGE_ADAPTER.validate_python(loose).usage is not None
    with pytest.raises(ValidationError, match="input_tokens"):
        MESSAGE_ADAPTER.validate_python(loose, strict=True)


def test_an_anthropic_message_object_validates_as_itself() -> None:
    for adapter in (MESSAGE_ADAPTER, STORED_MESSAGE):
        message = adapter.validate_python(ANTHROPIC[1])
        assert adapter.validate_python(message) is message
        openai = adapter.validate_python(OPENAI[1])
        assert adapter.validate_python(openai) is openai


@pytest.mark.parametrize("role", [["user"], {"a": 1}])
def test_a_role_of_the_wrong_type_is_invalid_not_a_type_error(role: Any) -> None:
    for adapter in (MESSAGE_ADAPTER, STORED_MESSAGE):
        with pytest.raises(ValidationError, match="role"):
            adapter.validate_python({"role": role, "content": "x"})
        with pytest.raises(ValidationError, match="role"):
            adapter.validate_json(orjson.dumps({"role": role, "content": "x"}))
