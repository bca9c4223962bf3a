"""Copies of the messages a manager saved, kept to recognise them when they come back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

__all__ = ["saved_copies"]


class _NotPlain(Exception):
    pass


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            out[key] = _copy(item)
        return out
    if kind is list:
        return [_copy(item) for item in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    raise _NotPlain


def saved_copies(messages: Sequence[Any], raws: Sequence[bytes]) -> list[Any]:
    """Copies of ``messages`` (as saved, ``raws`` their JSON) to compare with later.

    Dicts and lists are copied, so an edit the host makes in place still shows; strings
    and numbers are shared, being immutable, so comparing a message with its copy skips
    its texts (``==`` stops at identity) and the copies add no second copy of each text
    (the manager still keeps each message's JSON, ``raws``, beside them). A message
    holding anything else is copied from its JSON.
    """
    copies = []
    for message, raw in zip(messages, raws, strict=True):
        try:
            copies.append(_copy(message))
        except _NotPlain:
            copies.append(orjson.loads(raw))
    return copies
