"""The dict mirror of the message models (``load_history``'s one validation): what it
accepts it turns into exactly what the models' path (validate, then dump) gives, and it
accepts every message the models accept."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from typing import Any

import agent_fixtures
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from test_messages import _EDGE_CASES, ANTHROPIC, OPENAI

from docstore import DocStore, DocumentInvalid
from docstore.agents import MESSAGES_ADAPTER, _history, _history_async, conversation_name, messages
from docstore.agents import _message_dicts as mirror
from docstore.agents.messages import STORED_MESSAGE

db = agent_fixtures.db
manager = agent_fixtures.manager

BIG = 2**64 + 1  # past orjson's range and any int64

SHAPES: list[Any] = [
    *ANTHROPIC,
    *OPENAI,
    # unknown keys at every level, big integers among them and in the counts
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "t", "citations": [{"n": BIG}]},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"n": BIG, "x": [1.5, None]}, "k": 1},
            {"type": "image", "source": {"type": "url", "url": "u", "extra": {}}, "alt": "a"},
        ],
        "usage": {"input_tokens": BIG, "cache_read_input_tokens": 3},
        "stop_reason": "tool_use",
        "id": "msg_1",
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": None, "is_error": None},
            {
                "type": "tool_result",
                "tool_use_id": "t2",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
                ],
            },
        ],
        "usage": None,
    },
    # defaults the models add: a tool call's type; a call-only message with no content key
    {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]},
    {
        "role": "assistant",
        "content": [{"type": "refusal", "refusal": "no"}, {"type": "text", "text": "sorry"}],
        "tool_calls": None,
        "tool_call_id": None,
        "name": None,
        "usage": {"prompt_tokens": None, "completion_tokens": 1},
    },
    {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": "u", "detail": None}},
            {"type": "image_url", "image_url": {"url": "u", "detail": "low", "x": 1}},
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        ],
        "name": "bob",
    },
    {"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": "ok"}], "name": None},
    {"role": "user", "content": "x", "usage": dict.fromkeys(messages.Usage.model_fields), "u": None},
    {"role": "system", "content": "be brief", "tool_calls": None},
    # what the models coerce: numbers as strings, floats with no fraction
    {"role": "user", "content": "x", "usage": {"input_tokens": "5", "output_tokens": 7.0}},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": "true"}]},
    # invalid: the wrong blocks for the role, calls outside an assistant, empty calls
    {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
    {"role": "user", "content": "x", "tool_calls": []},
    {"role": "assistant", "content": None, "tool_calls": []},
    {
        "role": "assistant",
        "content": None,
        "tool_call_id": "c",
        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}],
    },
    {"role": "tool", "content": "x", "tool_call_id": None},
    {"role": "system", "content": None},
    {"role": "user", "content": "x", "name": 5},
    {"role": "user", "content": "x", "usage": {"input_tokens": -1}},
    {
        "role": "assistant",
        "tool_calls": [{"id": "c", "type": None, "function": {"name": "f", "arguments": "{}"}}],
    },
    {
        "role": "user",
        "content": [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": 1}}],
    },
    *_EDGE_CASES,
]


def _models(value: Any, *, from_json: bool) -> tuple[Any, ...]:
    """Today's path: validate into a model, then dump the list as load_history did."""
    try:
        message = (
            STORED_MESSAGE.validate_json(json.dumps(value))
            if from_json
            else STORED_MESSAGE.validate_python(value)
        )
    except ValidationError:
        return ("invalid",)
    return ("ok", MESSAGES_ADAPTER.dump_python([message], mode="json")[0])


def _mirror(value: Any, *, from_json: bool) -> tuple[Any, ...]:
    adapter = mirror.MESSAGE_DICT
    try:
        return (
            "ok",
            adapter.validate_json(json.dumps(value)) if from_json else adapter.validate_python(value),
        )
    except ValidationError:
        return ("invalid",)


def _null_openai_keys(value: Any) -> bool:
    return isinstance(value, dict) and any(k in value and value[k] is None for k in messages._OPENAI_KEYS)


def check(value: Any) -> None:
    """The mirror's outcome is the models': valid or not alike, and the same dict."""
    for from_json in (True, False):
        expected = _models(value, from_json=from_json)
        got = _mirror(value, from_json=from_json)
        assert got == expected, (from_json, value)
        # Key order too, but for an Anthropic-style message's null OpenAI keys: the
        # models keep them among its unknown keys, the mirror declares them.
        if got[0] == "ok" and not _null_openai_keys(value):
            assert json.dumps(got[1]) == json.dumps(expected[1])


@pytest.mark.parametrize("value", SHAPES, ids=repr)
def test_the_mirror_gives_the_models_dump_for_every_shape(value: Any) -> None:
    check(value)


def test_the_shapes_cover_valid_messages_of_every_kind() -> None:
    valid = [v for v in SHAPES if _models(v, from_json=True)[0] == "ok"]
    kinds = {(type(STORED_MESSAGE.validate_python(v)).__name__, v["role"]) for v in valid}
    assert kinds == {
        ("AnthropicMessage", "user"),
        ("AnthropicMessage", "assistant"),
        ("OpenAIMessage", "user"),
        ("OpenAIMessage", "assistant"),
        ("OpenAIMessage", "system"),
        ("OpenAIMessage", "tool"),
    }
    assert len(valid) < len(SHAPES) - 20  # and invalid ones, refused alike


# --- by hypothesis --------------------------------------------------------------------

_KEYS = st.sampled_from(["role", "type", "content", "text", "id", "name", "x", "cache_control"])
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _shapes(mode: str) -> st.SearchStrategy[Any]:
    """Messages built from the models' fields, their optional fields absent, null or set,
    with unknown keys: ``valid`` ones of every format and role; ``mixed``, any field on
    any role (mostly invalid combinations); ``sloppy``, any JSON for any field's value."""
    sloppy = mode == "sloppy"

    def leaf(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return strategy | _JSON if sloppy else strategy

    def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
        declared = {*required, *(optional or {})}

        def with_extras(fields: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
            return {**extras, **fields}

        return st.builds(
            with_extras,
            st.fixed_dictionaries(
                {k: leaf(v) for k, v in required.items()},
                optional={k: st.none() | leaf(v) for k, v in (optional or {}).items()},
            ),
            st.dictionaries(st.text(max_size=4).filter(lambda k: k not in declared), _JSON, max_size=2),
        )

    text = st.text(max_size=8)
    count = (
        st.integers(min_value=0) | st.integers(min_value=2**63, max_value=2**70) | st.just("5") | st.just(3.0)
    )
    if mode != "valid":
        count = count | st.just(-1)
    usage = obj(
        {},
        dict.fromkeys(
            ("input_tokens", "output_tokens", "prompt_tokens", "completion_tokens", "total_tokens"), count
        ),
    )
    text_block = obj({"type": st.just("text"), "text": text})
    source = obj({"type": st.just("base64"), "media_type": text, "data": text}) | obj(
        {"type": st.just("url"), "url": text}
    )
    image = obj({"type": st.just("image"), "source": source})
    tool_use = obj(
        {
            "type": st.just("tool_use"),
            "id": text,
            "name": text,
            "input": st.dictionaries(text, _JSON, max_size=2),
        }
    )
    tool_result = obj(
        {"type": st.just("tool_result"), "tool_use_id": text},
        {"content": text | st.lists(text_block | image, max_size=2), "is_error": st.booleans()},
    )
    image_url = obj({"type": st.just("image_url"), "image_url": obj({"url": text}, {"detail": text})})
    audio = obj({"type": st.just("input_audio"), "input_audio": obj({"data": text, "format": text})})
    refusal = obj({"type": st.just("refusal"), "refusal": text})
    parts = st.lists(text_block | image_url | audio | refusal, max_size=3)
    call = obj(
        {"id": text, "function": obj({"name": text, "arguments": text})}, {"type": st.just("function")}
    )
    calls = st.lists(call, min_size=1, max_size=2)
    if mode == "valid":
        # Null is absent for an optional field: obj() draws it for every one.
        nothing = st.nothing()

        def without(fields: dict[str, Any], key: str) -> dict[str, Any]:
            return {k: v for k, v in fields.items() if k != key}

        openai = {"tool_calls": nothing, "tool_call_id": nothing, "name": text, "usage": usage}
        return st.one_of(
            obj(
                {
                    "role": st.just("user"),
                    "content": text | st.lists(text_block | image | tool_result, max_size=3),
                },
                {"usage": usage},
            ),
            obj(
                {
                    "role": st.just("assistant"),
                    "content": text | st.lists(text_block | image | tool_use, max_size=3),
                },
                {"usage": usage},
            ),
            obj({"role": st.sampled_from(["system", "user"]), "content": text | parts}, openai),
            obj(
                {"role": st.just("tool"), "content": text | parts, "tool_call_id": text},
                without(openai, "tool_call_id"),
            ),
            obj({"role": st.just("assistant"), "content": text | parts}, {**openai, "tool_calls": calls}),
            obj(
                {"role": st.just("assistant"), "tool_calls": calls},
                {**without(openai, "tool_calls"), "content": nothing},
            ),
        )
    block = text_block | image | tool_use | tool_result | image_url | audio | refusal
    role = st.sampled_from(["user", "assistant", "system", "tool"]) | (text if sloppy else st.nothing())
    return obj(
        {"role": role},
        {
            "content": text | st.lists(block, max_size=3),
            "tool_calls": st.lists(call, max_size=2),
            "tool_call_id": text,
            "name": text,
            "usage": usage,
        },
    )


# 600 generated messages: ~20 s of CPU, so out of the fast inner loop; CI runs it.
@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
@pytest.mark.parametrize("mode", ["valid", "mixed", "sloppy"])
def test_the_mirror_agrees_with_the_models_on_generated_messages(mode: str, data: st.DataObject) -> None:
    check(data.draw(_shapes(mode)))


# --- the mirror follows the models ----------------------------------------------------

_MIRRORS: dict[type[BaseModel], tuple[Any, ...]] = {
    messages.Usage: (mirror._Usage,),
    messages.TextBlock: (mirror._Text,),
    messages.Base64ImageSource: (mirror._Base64Source,),
    messages.URLImageSource: (mirror._URLSource,),
    messages.ImageBlock: (mirror._Image,),
    messages.ToolUseBlock: (mirror._ToolUse,),
    messages.ToolResultBlock: (mirror._ToolResult,),
    messages.AnthropicMessage: (mirror._AnthropicUser, mirror._AnthropicAssistant),
    messages.OpenAIImageURL: (mirror._ImageURL,),
    messages.OpenAIImagePart: (mirror._ImagePart,),
    messages.OpenAIInputAudio: (mirror._InputAudio,),
    messages.OpenAIAudioPart: (mirror._AudioPart,),
    messages.OpenAIRefusalPart: (mirror._RefusalPart,),
    messages.OpenAIFunction: (mirror._Function,),
    messages.OpenAIToolCall: (mirror._ToolCall,),
    messages.OpenAIMessage: (
        mirror._OpenAISystem,
        mirror._OpenAIUser,
        mirror._OpenAITool,
        mirror._OpenAIAssistant,
        mirror._OpenAICalls,
    ),
}


def test_every_message_model_has_a_mirror_with_its_fields_and_no_aliases() -> None:
    # A field added to a model (or an alias, which its dump would not use as the key the
    # mirror keeps) fails here before it could make the two disagree.
    models = {
        obj
        for obj in vars(messages).values()
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == messages.__name__
    }
    assert models - {messages._Part, messages.ConversationMeta} == set(_MIRRORS)
    for model, shapes in _MIRRORS.items():
        assert model.model_config.get("extra") == "allow", model
        for field in model.model_fields.values():
            assert (field.alias, field.validation_alias, field.serialization_alias) == (None, None, None)
        for shape in shapes:
            keys = set(typing.get_type_hints(shape))
            assert keys - set(model.model_fields) <= set(messages._OPENAI_KEYS), shape
            assert set(model.model_fields) <= keys, shape
            assert shape.__pydantic_config__.get("extra") == "allow", shape


# --- through the store ----------------------------------------------------------------


def _valid() -> list[Any]:
    return [v for v in SHAPES if _models(v, from_json=True)[0] == "ok"]


def test_load_history_and_get_session_give_the_models_dump(manager: Any, db: DocStore) -> None:
    conversation = _valid()
    manager.save_full_history("agent", "s1", conversation)
    name = conversation_name("agent", "s1")
    expected = MESSAGES_ADAPTER.dump_python(db.read("conversation", name), mode="json")
    assert manager.load_history("agent", "s1", limit=0) == expected
    assert manager.load_history("agent", "s1", limit=3) == expected[-3:]
    assert db.read("conversation", name, into=mirror.MESSAGE_DICT) == expected
    manager.save_session({"session_id": "s2", "execution_result": {"conversation_history": conversation}})
    record = manager.get_session("s2")
    assert record["execution_result"]["conversation_history"] == expected


def test_a_stored_message_the_models_refuse_is_reported_as_before(manager: Any, db: DocStore) -> None:
    manager.save_full_history(
        "agent", "s1", [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    )
    with db.pool.connection() as conn:
        conn.execute(
            f'UPDATE "{db.schema}".versions SET data = \'{{"role": "user", "content": "x", "name": 5}}\''
            " WHERE kind = 'conversation' AND version = 2"
        )
    loads: list[Callable[[], object]] = [
        lambda: manager.load_history("agent", "s1"),
        lambda: manager.get_session_history("s1"),
    ]
    for load in loads:
        with pytest.raises(DocumentInvalid) as info:
            load()
        assert (info.value.kind, info.value.version) == ("conversation", 2)
        assert "name" in str(info.value)  # the models' error, not the mirror's


def test_a_message_the_mirror_refuses_is_read_through_the_models(
    manager: Any, db: DocStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mirror must accept what the models accept; were it to refuse a message, the
    # read would take the models' path: slower, not wrong. A mirror refusing all shows it.
    conversation = _valid()
    manager.save_full_history("agent", "s1", conversation)
    expected = manager.load_history("agent", "s1", limit=0)
    for module in (_history, _history_async):
        monkeypatch.setattr(module, "MESSAGE_DICT", TypeAdapter(int))
    assert manager.load_history("agent", "s1", limit=0) == expected
    assert manager.get_session_history("s1") == expected
