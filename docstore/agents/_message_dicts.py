"""Stored messages validated straight into the dicts ``load_history`` returns.

A mirror of :data:`~.messages.Message` in ``TypedDict`` s: validating a stored message's
JSON with :data:`MESSAGE_DICT` gives the dict that validating it into a model and then
``model_dump(mode="json")`` gives, in one pass and with no model built. The models'
rules that are not per field are in the mirror's types, not in Python validators:

- each message shape is split by ``role`` (a user message cannot hold ``tool_use``
  blocks, only an assistant's may hold ``tool_calls``, only a tool's ``tool_call_id``,
  and ``content`` is null or absent only on an assistant message with tool calls), so
  the union is discriminated by ``role`` (or by its first tool call's ``type``, which
  only an OpenAI-style assistant message may have) and no Python runs per message;
- which format a user or assistant message is read as follows ``_message_format``: the
  Anthropic-style shape is tried first and refuses what would make the union pick
  OpenAI-style (an OpenAI part, or ``name``, ``tool_calls``, ``tool_call_id`` set);
- a null optional field is left out of the dict, as the models' dumps leave it out
  (``exclude_if``), and a tool call's ``type`` defaults to ``"function"``.

The mirror may refuse what the models accept (the reader then takes the models' path),
but what it accepts it must turn into the models' dump: tests/agents/test_message_dicts.py
checks both against the models, by example and by hypothesis.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import AfterValidator, ConfigDict, Field, GetCoreSchemaHandler, TypeAdapter, with_config
from pydantic.types import GetPydanticSchema
from pydantic_core import PydanticOmit, core_schema
from typing_extensions import TypedDict

__all__ = ["MESSAGE_DICT"]

_EXTRA = ConfigDict(extra="allow")


def _omit(value: None) -> None:
    raise PydanticOmit


_Null = Annotated[None, AfterValidator(_omit)]
"""A null optional field: valid, and left out of the dict (a Python call only then)."""

_Count = Annotated[int, Field(ge=0)]


@with_config(_EXTRA)
class _Usage(TypedDict):
    input_tokens: NotRequired[_Count | _Null]
    output_tokens: NotRequired[_Count | _Null]
    prompt_tokens: NotRequired[_Count | _Null]
    completion_tokens: NotRequired[_Count | _Null]
    total_tokens: NotRequired[_Count | _Null]


# --- Anthropic-style ------------------------------------------------------------------


@with_config(_EXTRA)
class _Text(TypedDict):
    type: Literal["text"]
    text: str


@with_config(_EXTRA)
class _Base64Source(TypedDict):
    type: Literal["base64"]
    media_type: str
    data: str


@with_config(_EXTRA)
class _URLSource(TypedDict):
    type: Literal["url"]
    url: str


@with_config(_EXTRA)
class _Image(TypedDict):
    type: Literal["image"]
    source: Annotated[_Base64Source | _URLSource, Field(discriminator="type")]


@with_config(_EXTRA)
class _ToolUse(TypedDict):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


@with_config(_EXTRA)
class _ToolResult(TypedDict):
    type: Literal["tool_result"]
    tool_use_id: str
    content: NotRequired[str | list[Annotated[_Text | _Image, Field(discriminator="type")]] | _Null]
    is_error: NotRequired[bool | _Null]


# Null as an extra field on an Anthropic-style message is kept; set, the union picks
# OpenAI-style, so here it must fail.
@with_config(_EXTRA)
class _AnthropicUser(TypedDict):
    role: Literal["user"]
    content: str | list[Annotated[_Text | _ToolResult | _Image, Field(discriminator="type")]]
    usage: NotRequired[_Usage | _Null]
    tool_calls: NotRequired[None]
    tool_call_id: NotRequired[None]
    name: NotRequired[None]


@with_config(_EXTRA)
class _AnthropicAssistant(TypedDict):
    role: Literal["assistant"]
    content: str | list[Annotated[_Text | _ToolUse | _Image, Field(discriminator="type")]]
    usage: NotRequired[_Usage | _Null]
    tool_calls: NotRequired[None]
    tool_call_id: NotRequired[None]
    name: NotRequired[None]


# --- OpenAI-style -----------------------------------------------------------------------


@with_config(_EXTRA)
class _ImageURL(TypedDict):
    url: str
    detail: NotRequired[str | _Null]


@with_config(_EXTRA)
class _ImagePart(TypedDict):
    type: Literal["image_url"]
    image_url: _ImageURL


@with_config(_EXTRA)
class _InputAudio(TypedDict):
    data: str
    format: str


@with_config(_EXTRA)
class _AudioPart(TypedDict):
    type: Literal["input_audio"]
    input_audio: _InputAudio


@with_config(_EXTRA)
class _RefusalPart(TypedDict):
    type: Literal["refusal"]
    refusal: str


_Parts = list[Annotated[_Text | _ImagePart | _AudioPart | _RefusalPart, Field(discriminator="type")]]


@with_config(_EXTRA)
class _Function(TypedDict):
    name: str
    arguments: str


@with_config(_EXTRA)
class _ToolCall(TypedDict):
    id: str
    type: NotRequired[Annotated[Literal["function"], Field(default="function")]]
    function: _Function


@with_config(_EXTRA)
class _OpenAISystem(TypedDict):
    role: Literal["system"]
    content: str | _Parts
    tool_calls: NotRequired[_Null]
    tool_call_id: NotRequired[_Null]
    name: NotRequired[str | _Null]
    usage: NotRequired[_Usage | _Null]


@with_config(_EXTRA)
class _OpenAIUser(TypedDict):
    role: Literal["user"]
    content: str | _Parts
    tool_calls: NotRequired[_Null]
    tool_call_id: NotRequired[_Null]
    name: NotRequired[str | _Null]
    usage: NotRequired[_Usage | _Null]


@with_config(_EXTRA)
class _OpenAITool(TypedDict):
    role: Literal["tool"]
    content: str | _Parts
    tool_calls: NotRequired[_Null]
    tool_call_id: str
    name: NotRequired[str | _Null]
    usage: NotRequired[_Usage | _Null]


@with_config(_EXTRA)
class _OpenAIAssistant(TypedDict):
    role: Literal["assistant"]
    content: str | _Parts
    tool_calls: NotRequired[list[_ToolCall] | _Null]
    tool_call_id: NotRequired[_Null]
    name: NotRequired[str | _Null]
    usage: NotRequired[_Usage | _Null]


@with_config(_EXTRA)
class _OpenAICalls(TypedDict):
    """An assistant message with tool calls and no content (null, or no key at all)."""

    role: Literal["assistant"]
    content: NotRequired[None]
    tool_calls: Annotated[list[_ToolCall], Field(min_length=1)]
    tool_call_id: NotRequired[_Null]
    name: NotRequired[str | _Null]
    usage: NotRequired[_Usage | _Null]


# --- the union ------------------------------------------------------------------------


def _by_role(source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
    # pydantic's own discriminator refuses two shapes under one tag: built by hand, with
    # each tag's shapes tried in order.
    def first(*shapes: Any) -> core_schema.CoreSchema:
        return core_schema.union_schema([handler.generate_schema(s) for s in shapes], mode="left_to_right")

    calls = first(_OpenAIAssistant, _OpenAICalls)
    # The first of these paths the message has gives its tag.
    paths: list[list[str | int]] = [["tool_calls", 0, "type"], ["role"]]
    return core_schema.tagged_union_schema(
        {
            # A message whose first tool call has a type has tool calls: the union reads
            # it as OpenAI-style, so the Anthropic-style shape need not be tried and fail.
            "function": calls,
            "user": first(_AnthropicUser, _OpenAIUser),
            "assistant": first(_AnthropicAssistant, calls),
            "system": handler.generate_schema(_OpenAISystem),
            "tool": handler.generate_schema(_OpenAITool),
        },
        discriminator=paths,
    )


MESSAGE_DICT: TypeAdapter[dict[str, Any]] = TypeAdapter(
    Annotated[dict[str, Any], GetPydanticSchema(_by_role)]
)
"""Validates a stored message into the dict its model would dump (see the module's doc)."""
