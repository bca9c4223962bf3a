"""The copies a StorageManager keeps of the messages it saved."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from docstore.agents._copies import saved_copies


def test_copies_equal_the_messages_with_their_containers_copied_and_their_texts_shared() -> None:
    message: dict[str, Any] = {
        "role": "user",
        "content": [{"type": "text", "text": "x" * 1000}],
        "usage": {"input_tokens": 3, "ratio": 0.5, "cached": True, "note": None},
    }
    (copy,) = saved_copies([message], [orjson.dumps(message)])
    assert copy == message
    assert copy is not message and copy["content"] is not message["content"]
    assert copy["content"][0] is not message["content"][0]
    assert copy["content"][0]["text"] is message["content"][0]["text"]
    message["content"][0]["text"] = "edited"
    assert copy != message


def test_a_message_holding_anything_but_json_data_is_copied_from_its_json() -> None:
    # A tuple, or an object JSON can spell but that may change in place, is not shared:
    # the copy is what was saved, as JSON.
    when = datetime(2026, 1, 1, tzinfo=UTC)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "hi", "tags": ("a", "b")},
        {"role": "user", "content": "hi", "at": when},
    ]
    raws = [orjson.dumps(m) for m in messages]
    assert saved_copies(messages, raws) == [orjson.loads(r) for r in raws]
