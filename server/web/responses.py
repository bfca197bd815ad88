"""JSON responses encoded the way stored events are."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ..store.payloads import encode


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response encoded the way stored events are (compact, UTF-8)."""
    return Response(encode(data), status, headers, media_type="application/json")
