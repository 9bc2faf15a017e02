"""JSON text (semantics.md §4): the compact stored form every backend keeps, and reading it back."""

from __future__ import annotations

import json
import re
from json.scanner import make_scanner
from typing import Any

from ..errors import SerializationError

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# json writes U+0000 as the escape \u0000 (preceded by an even run of backslashes); PostgreSQL's
# jsonb refuses it, so every backend refuses it up front and behaves the same.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def encode(value: object, where: str = "") -> tuple[str, int]:
    """The stored text of `value` and its UTF-8 size, or SerializationError.

    `where` names the payload in a batch (`Payload at index i: `).
    """
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError) as err:
        raise SerializationError(f"Serialization error: {where}{err}") from err
    try:
        # ensure_ascii=False lets a lone surrogate through json; no database can store it.
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as err:
        bad = err.object[err.start : err.end]
        raise SerializationError(
            f"Serialization error: {where}{bad!r} cannot be encoded as UTF-8 ({err.reason})"
        ) from err
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise SerializationError(
            f"Serialization error: {where}the NUL character (U+0000) cannot be stored "
            "(PostgreSQL jsonb rejects it); remove or replace it"
        )
    return text, size


def encode_json(value: object) -> str:
    """The compact stored form of `value` (semantics.md §4.2); SerializationError when not JSON."""
    return encode(value)[0]


_DECODER = json.JSONDecoder()
# The scanner `decode` runs after skipping whitespace (C); any object with the decoder's
# settings is its context, typeshed names only the scanner's own type.
_SCAN = make_scanner(_DECODER)  # type: ignore[arg-type]


def decode_json(text: str) -> Any:
    """`json.loads(text)`, faster for the text stores give back (no surrounding whitespace):
    the scanner alone, without `decode`'s two whitespace matches (a third of a small
    payload's decode); anything else goes through `decode`, which also words the errors."""
    try:
        value, end = _SCAN(text, 0)
    except (StopIteration, ValueError):
        return _DECODER.decode(text)
    return value if end == len(text) else _DECODER.decode(text)
