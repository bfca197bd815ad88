"""The API's error type and its JSON shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the client caused or must know about, with a stable machine-readable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body sent to the client."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def not_found(what: str, key: object) -> ApiError:
    """A 404 naming what was looked for."""
    return ApiError(404, f"{what}_not_found", f"no {what} {key!r}")


def conflict(code: str, message: str, details: Any = None) -> ApiError:
    """A 409: the request is valid but the resource's state forbids it."""
    return ApiError(409, code, message, details)
