"""Conversation items: Anthropic-style and OpenAI-style messages, and the conversation head.

:data:`Message` is a tagged union of :class:`AnthropicMessage` and
:class:`OpenAIMessage`. A message that fits both formats (a user or assistant
message whose content is a string or text blocks only) is the same JSON in
either, and always validates as :class:`AnthropicMessage`, so what is read back
equals what was written. Unset optional fields are left out of dumps, so a
message stored as a dict reads back as the same dict (an OpenAI-style message
without a ``content`` key has ``content`` :data:`pydantic.MISSING`, not None, so
that it reads back without one).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

from docstore.kinds import LogKind, Registry

try:
    from pydantic import MISSING
except ImportError:  # pragma: no cover - pydantic 2.12 and 2.13 keep it here
    from pydantic.experimental.missing_sentinel import MISSING

__all__ = [
    "CONVERSATION_KIND",
    "MESSAGES_ADAPTER",
    "MESSAGE_ADAPTER",
    "STORED_MESSAGE",
    "AnthropicBlock",
    "AnthropicMessage",
    "Base64ImageSource",
    "ConversationMeta",
    "ImageBlock",
    "Message",
    "OpenAIAudioPart",
    "OpenAIFunction",
    "OpenAIImagePart",
    "OpenAIImageURL",
    "OpenAIInputAudio",
    "OpenAIMessage",
    "OpenAIPart",
    "OpenAIRefusalPart",
    "OpenAIToolCall",
    "TextBlock",
    "ToolResultBlock",
    "ToolResultPart",
    "ToolUseBlock",
    "URLImageSource",
    "Usage",
    "message_text",
    "message_tool_names",
]


def _none(value: object) -> bool:
    return value is None


def _opt(**kwargs: Any) -> Any:
    """An optional field that is left out of dumps while it is None."""
    return Field(default=None, exclude_if=_none, **kwargs)


class _Part(BaseModel):
    # Providers add fields (cache_control, citations, ...); keep them rather
    # than refuse a message the framework got from its own LLM.
    model_config = ConfigDict(extra="allow")


class Usage(_Part):
    """Token counts, in either provider's names, so analytics can sum them."""

    input_tokens: int | None = _opt(ge=0)
    output_tokens: int | None = _opt(ge=0)
    prompt_tokens: int | None = _opt(ge=0)
    completion_tokens: int | None = _opt(ge=0)
    total_tokens: int | None = _opt(ge=0)

    @property
    def input_count(self) -> int:
        """Input tokens, whichever name they were given under (0 if none)."""
        return self.input_tokens if self.input_tokens is not None else self.prompt_tokens or 0

    @property
    def output_count(self) -> int:
        """Output tokens, whichever name they were given under (0 if none)."""
        if self.output_tokens is not None:
            return self.output_tokens
        return self.completion_tokens or 0


# --- Anthropic-style ------------------------------------------------------------


class TextBlock(_Part):
    """A text block (also an OpenAI text part: the JSON is the same)."""

    type: Literal["text"]
    text: str


class Base64ImageSource(_Part):
    """Image bytes inline, base64-encoded."""

    type: Literal["base64"]
    media_type: str
    data: str


class URLImageSource(_Part):
    """An image by URL."""

    type: Literal["url"]
    url: str


class ImageBlock(_Part):
    """An image block."""

    type: Literal["image"]
    source: Annotated[Base64ImageSource | URLImageSource, Field(discriminator="type")]


class ToolUseBlock(_Part):
    """The assistant calling a tool."""

    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


ToolResultPart = Annotated[TextBlock | ImageBlock, Field(discriminator="type")]
"""What a tool result's content list may hold."""


class ToolResultBlock(_Part):
    """A tool's answer to a ``tool_use`` block, sent back as user content."""

    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[ToolResultPart] | None = _opt()
    is_error: bool | None = _opt()


AnthropicBlock = Annotated[
    TextBlock | ToolUseBlock | ToolResultBlock | ImageBlock, Field(discriminator="type")
]
"""One content block of an Anthropic-style message."""


class AnthropicMessage(_Part):
    """An Anthropic-style message: ``role`` and a string or content blocks."""

    role: Literal["user", "assistant"]
    content: str | list[AnthropicBlock]
    usage: Usage | None = _opt()

    @model_validator(mode="after")
    def _blocks_fit_role(self) -> AnthropicMessage:
        content = self.content
        if isinstance(content, list):
            wrong = "tool_result" if self.role == "assistant" else "tool_use"
            # A loop, not any() over a generator: this runs for every message read.
            for block in content:
                if block.type == wrong:
                    raise ValueError(f"{self.role} messages cannot hold {wrong} blocks")
        return self


# --- OpenAI-style ---------------------------------------------------------------


class OpenAIImageURL(_Part):
    """Where an ``image_url`` part points."""

    url: str
    detail: str | None = _opt()


class OpenAIImagePart(_Part):
    """An image content part."""

    type: Literal["image_url"]
    image_url: OpenAIImageURL


class OpenAIInputAudio(_Part):
    """Audio bytes of an ``input_audio`` part."""

    data: str
    format: str


class OpenAIAudioPart(_Part):
    """An audio content part."""

    type: Literal["input_audio"]
    input_audio: OpenAIInputAudio


class OpenAIRefusalPart(_Part):
    """The assistant's refusal, as a content part."""

    type: Literal["refusal"]
    refusal: str


OpenAIPart = Annotated[
    TextBlock | OpenAIImagePart | OpenAIAudioPart | OpenAIRefusalPart,
    Field(discriminator="type"),
]
"""One content part of an OpenAI-style message."""


class OpenAIFunction(_Part):
    """The function a tool call invokes; ``arguments`` is a JSON string, as OpenAI sends it."""

    name: str
    arguments: str


class OpenAIToolCall(_Part):
    """One entry of an assistant message's ``tool_calls``."""

    id: str
    type: Literal["function"] = "function"
    function: OpenAIFunction


class OpenAIMessage(_Part):
    """An OpenAI-style chat message."""

    role: Literal["system", "user", "assistant", "tool"]
    # MISSING when the message has no content key (a bare tool call), so that it dumps
    # without one, where None would add "content": null: what was saved reads back as it
    # was, with or without the key. Pydantic leaves MISSING out of dumps in its Rust core.
    content: str | list[OpenAIPart] | MISSING | None = MISSING
    tool_calls: list[OpenAIToolCall] | None = _opt()
    tool_call_id: str | None = _opt()
    name: str | None = _opt()
    usage: Usage | None = _opt()

    @model_validator(mode="after")
    def _fields_fit_role(self) -> OpenAIMessage:
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError(f"tool_calls are only allowed on assistant messages, not {self.role}")
        if self.role == "tool" and self.tool_call_id is None:
            raise ValueError("a tool message needs tool_call_id")
        if self.tool_call_id is not None and self.role != "tool":
            raise ValueError(f"tool_call_id is only allowed on tool messages, not {self.role}")
        if (self.content is None or self.content is MISSING) and not (
            self.role == "assistant" and self.tool_calls
        ):
            raise ValueError("content may only be null on an assistant message with tool_calls")
        return self


# --- the union --------------------------------------------------------------------

_OPENAI_ROLES = frozenset({"system", "tool"})
_OPENAI_KEYS = ("tool_calls", "tool_call_id", "name")
_OPENAI_PART_TYPES = frozenset({"image_url", "input_audio", "refusal"})


def _message_format(value: Any) -> str | None:
    """Pick the union member; anything fitting both formats is Anthropic-style."""
    if isinstance(value, AnthropicMessage):
        return "anthropic"
    if isinstance(value, OpenAIMessage):
        return "openai"
    if not isinstance(value, dict):
        return None
    role = value.get("role")
    # isinstance first: a list or dict there is an invalid role, not a TypeError.
    if isinstance(role, str) and role in _OPENAI_ROLES:
        return "openai"
    if any(value.get(key) is not None for key in _OPENAI_KEYS):
        return "openai"
    content = value.get("content")
    if content is None:
        return "openai"
    # isinstance(str) first: a list or dict as a part's type is invalid, not a TypeError.
    if isinstance(content, list) and any(
        isinstance(part, dict) and isinstance(kind := part.get("type"), str) and kind in _OPENAI_PART_TYPES
        for part in content
    ):
        return "openai"
    return "anthropic"


_ANTHROPIC: TypeAdapter[AnthropicMessage] = TypeAdapter(AnthropicMessage)
_OPENAI: TypeAdapter[OpenAIMessage] = TypeAdapter(OpenAIMessage)


def _member_first(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate a dict straight against the member the union would pick, without the
    union's discriminator (a Python call per message, and for JSON input a second pass
    over the JSON after the value is built for it).

    The choice is ``_message_format``'s: an OpenAI role, one of OpenAI's keys set or no
    content means OpenAI-style; anything else is Anthropic-style unless its content holds
    an OpenAI part, which fails as Anthropic and so goes through the union. Every
    invalid message goes through the union too, so a valid message's result is the
    union's, and so are the errors of a Python value. It is cheaper than the union for
    the harness's Anthropic-style messages (docs/performance.md).

    Only the conversation kind validates through it (:data:`STORED_MESSAGE`): the store
    calls it with pydantic's defaults, where a caller of :data:`MESSAGE_ADAPTER` may pass
    ``strict=`` or ``context=``, which a fresh ``validate_python`` here would drop. From
    JSON (a read of stored items) an invalid item's errors are those of the union run on
    the parsed value (``model_attributes_type`` where JSON mode says ``dict_type``).
    """
    if type(value) is dict:
        role = value.get("role")
        if (
            (type(role) is str and role in _OPENAI_ROLES)
            or value.get("content") is None
            # _OPENAI_KEYS, spelled out: no generator for every message read.
            or value.get("tool_calls") is not None
            or value.get("tool_call_id") is not None
            or value.get("name") is not None
        ):
            member: TypeAdapter[Any] = _OPENAI
        else:
            member = _ANTHROPIC
        try:
            return member.validator.validate_python(value)
        except ValidationError:
            pass
    return handler(value)


Message = Annotated[
    Annotated[AnthropicMessage, Tag("anthropic")] | Annotated[OpenAIMessage, Tag("openai")],
    Discriminator(
        _message_format,
        custom_error_type="invalid_message",
        custom_error_message="a message must be an object with a role",
    ),
]
"""A conversation item: an Anthropic-style or an OpenAI-style message."""

_STORED_MESSAGE = Annotated[Message, WrapValidator(_member_first)]

# A title, or errors are headed by pydantic's long internal name for the union.
MESSAGE_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message, config=ConfigDict(title="Message"))
"""Validates and dumps one :data:`Message`."""

MESSAGES_ADAPTER: TypeAdapter[list[Message]] = TypeAdapter(list[Message], config=ConfigDict(title="Messages"))
"""Validates and dumps a list of messages."""

STORED_MESSAGE: TypeAdapter[Message] = TypeAdapter(_STORED_MESSAGE, config=ConfigDict(title="Message"))
"""The conversation kind's adapter: :data:`MESSAGE_ADAPTER`'s results, validated member
first (faster; it takes no ``strict=`` or ``context=``)."""


def message_text(message: Message) -> str:
    """The message's text: its string content, or its text blocks joined by newlines."""
    content = message.content
    if content is None or content is MISSING:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content if isinstance(part, TextBlock))


def message_tool_names(message: Message) -> list[str]:
    """Names of the tools the message calls, in order."""
    if isinstance(message, OpenAIMessage):
        return [call.function.name for call in message.tool_calls or ()]
    if isinstance(message.content, str):
        return []
    return [block.name for block in message.content if isinstance(block, ToolUseBlock)]


class ConversationMeta(BaseModel):
    """The head of a session: whose it is, and what the framework's session API saved
    beside its conversation. Extra fields are kept."""

    model_config = ConfigDict(extra="allow")

    session_id: str = Field(min_length=1)
    agent_name: str | None = _opt(min_length=1)
    workflow_name: str | None = _opt()
    parent_session_id: str | None = _opt()
    # The framework's session fields (StorageManager.save_session).
    name: str | None = _opt()
    """The agent or workflow the session ran."""
    result_type: str | None = _opt()
    """``agent`` or ``workflow``."""
    base_session_id: str | None = _opt()
    """Shared by a workflow's session and its agents' sessions."""
    agents_involved: dict[str, str] | None = _opt()
    """A workflow's agent sessions: session id -> agent name."""
    message_count: int | None = _opt(ge=0)
    """As the framework counted it, for a session whose messages are not its log."""
    result: dict[str, Any] | None = _opt()
    """The execution result, without the conversation (that is the log)."""
    history_in_result: bool | None = _opt()
    """True when the execution result's ``conversation_history`` is the log."""
    # Kept by StorageManager.save_full_history: a hash chain of the live messages and
    # the version it describes, so a save checks the stored prefix without reading it.
    history_digest: str | None = _opt()
    history_digest_version: int | None = _opt(ge=0)


# The adapter rather than the bare union, so its titled errors are what a store reports.
CONVERSATION_KIND: LogKind[Message, ConversationMeta] = Registry().register(
    "conversation", STORED_MESSAGE, mode="log", meta=ConversationMeta
)
"""The ``conversation`` kind's handle: :data:`Message` items under a :class:`ConversationMeta`
head (``store.read(CONVERSATION_KIND, name)`` is a list of Message)."""
