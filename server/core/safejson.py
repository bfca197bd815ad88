"""JSON from clients, parsed with a nesting limit. No I/O.

``json.loads`` recurses once per level of nesting: 20,000 ``[`` in a request body or a
2 KB WebSocket frame raise RecursionError deep inside the parser. Nothing Bulletin reads
nests more than a few levels, so text nested deeper than ``MAX_DEPTH`` is refused with
``JsonTooDeep`` before it is parsed, by one scan that skips over strings.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Deeper than any body, form or frame Bulletin takes, and far from the recursion limit.
MAX_DEPTH = 32

# A JSON string (with its escapes), and the brackets outside strings.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class JsonTooDeep(ValueError):
    """The text nests arrays and objects deeper than allowed."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nested deeper than {max_depth} levels")
        self.max_depth = max_depth


def depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (0 for a scalar)."""
    deepest = level = 0
    if "[" not in text and "{" not in text:
        return 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            level += 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises JsonTooDeep for text nested deeper than ``max_depth``
    (and ValueError, as json.loads does, for text that is not JSON)."""
    text = data if isinstance(data, str) else data.decode(json.detect_encoding(data))
    if depth(text) > max_depth:
        raise JsonTooDeep(max_depth)
    return json.loads(text)
