"""Request bodies and query parameters: parsed strictly, refused with a clear 4xx."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError
from starlette.requests import Request

from ..core import safejson
from ..core.errors import ApiError
from ..core.protocol import SLUG_PATTERN, SLUG_RE
from ..store.media.records import Attachment
from ..store.models import MAX_ID

ModelT = TypeVar("ModelT", bound=BaseModel)


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded at all:
    # refuse both here rather than fail inside the database.
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("invalid_unicode", "must be valid Unicode") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_storable),
]
Description = Annotated[Text, Field(max_length=2000)]
Slug = Annotated[Text, Field(min_length=1, max_length=64,
                             pattern=SLUG_PATTERN)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StreamCreate(_Body):
    """``POST /api/streams``."""

    slug: Slug = Field(description="URL name: lowercase letters, digits and inner dashes")
    title: Title
    description: Description = ""
    status: Literal["draft", "live"] = "draft"


class StreamPatch(_Body):
    """``PATCH /api/streams/{slug}``: any of the fields; status changes are events."""

    title: Title | None = None
    description: Description | None = None
    status: Literal["draft", "live", "ended"] | None = None


MAX_POST_MEDIA = 20


AltText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=1000), AfterValidator(_storable)]
Caption = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000),
                    AfterValidator(_storable)]
Credit = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200),
                   AfterValidator(_storable)]


class MediaItem(_Body):
    """A photo shown with a post: an uploaded media id and the words that go with it."""

    id: int = Field(ge=1, le=MAX_ID, description="From POST /api/media")
    alt: AltText = Field(
        description="What the photo shows, for readers who cannot see it (required)")
    caption: Caption = ""
    credit: Credit = ""

    def attachment(self) -> Attachment:
        """The store's view of this item."""
        return Attachment(self.id, self.alt, self.caption, self.credit)


def attachments(items: list[MediaItem] | None) -> list[Attachment] | None:
    """The store's view of a post's photos (None: leave them as they are)."""
    return None if items is None else [item.attachment() for item in items]


class PostCreate(_Body):
    """``POST /api/streams/{slug}/posts``."""

    body: Text = Field(description="Markdown (CommonMark); may be empty when the post "
                                   "has photos")
    pinned: bool = Field(default=False, description="A key event, shown at the top")
    media: list[MediaItem] = Field(default_factory=list, max_length=MAX_POST_MEDIA,
                                   description="Photos shown with the post, in order")


class PostPatch(_Body):
    """``PATCH /api/posts/{id}``: a new text, photos, a pin change, or any of them."""

    body: Text | None = None
    pinned: bool | None = None
    media: list[MediaItem] | None = Field(default=None, max_length=MAX_POST_MEDIA)


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The raw JSON body, refusing other media types and bodies over ``max_bytes``."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type",
                       "send the body as JSON with Content-Type: application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def validated(fields: dict[str, Any], model: type[ModelT]) -> tuple[ModelT, bytes]:
    """A desk form's ``fields`` checked as ``model`` is for the API (422 for a wrong
    shape), with the bytes that stand for them in an idempotency fingerprint."""
    return _validate(fields, model), json.dumps(fields).encode()


def parse_body(raw: bytes, model: type[ModelT]) -> ModelT:
    """Parse a JSON object into ``model``: 400 for bad JSON, 422 for a wrong shape."""
    try:
        data: Any = safejson.loads(raw)
    except safejson.JsonTooDeep as exc:
        raise ApiError(400, "json_too_deep", f"the body is not accepted: {exc}",
                       {"max_depth": exc.max_depth}) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(422, "validation_error", "the body must be a JSON object")
    return _validate(data, model)


def _validate(data: dict[str, Any], model: type[ModelT]) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in err["loc"]) or None,
             "type": err["type"], "message": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        first = details[0]
        message = str(first["message"])
        if first["field"]:
            message = f"{first['field']}: {message}"
        raise ApiError(422, "validation_error", message, details) from None


def ascii_int(raw: str | None, *, max_digits: int = 18) -> int | None:
    """``raw`` as a non-negative integer written in ASCII digits only, else None.

    ``str.isdigit`` and ``int`` also accept other scripts' digits and superscripts
    ("²", "٣"), which a client can send to reach an ``int()`` that then fails: every
    number a client sends is read through here.
    """
    if raw is None or not 0 < len(raw) <= max_digits or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)


def int_param(request: Request, name: str, *, default: int | None, minimum: int = 0,
              maximum: int | None = None) -> int | None:
    """An integer query parameter; 400 when it is not one or is below ``minimum``."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit() or len(raw) > 18:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer",
                       {"parameter": name})
    value = int(raw)
    if value < minimum:
        raise ApiError(400, "invalid_parameter", f"{name} must be at least {minimum}",
                       {"parameter": name})
    return value if maximum is None else min(value, maximum)


def checked_slug(slug: str) -> str:
    """A stream slug from a URL; 404 when no stream can have it (which also keeps odd
    bytes out of queries)."""
    if not SLUG_RE.match(slug):
        raise ApiError(404, "stream_not_found", f"no stream {slug!r}")
    return slug


def checked_id(value: int, what: str) -> int:
    """An id of a ``what`` from a URL; 404 ``{what}_not_found`` past the 32-bit ids the
    database can hold."""
    if value > MAX_ID:
        raise ApiError(404, f"{what}_not_found", f"no {what} {value}")
    return value


def checked_post_id(post_id: int) -> int:
    """A post id from a URL; 404 past the 32-bit ids the database can hold."""
    return checked_id(post_id, "post")


def check_post_length(body: str, limit: int) -> None:
    """422 when a post's text is over ``limit`` characters."""
    if len(body) > limit:
        raise ApiError(422, "post_too_long",
                       f"a post is at most {limit} characters; this one has {len(body)}",
                       {"max_chars": limit, "chars": len(body)})


def cursor_param(raw: str | None) -> int | None:
    """A ``before`` cursor from ``next_cursor`` (absent: the newest page); 400 otherwise."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise ApiError(400, "invalid_cursor", "before must be a cursor from next_cursor",
                       {"parameter": "before"})
    return min(int(raw), MAX_ID)


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the body is over the {max_bytes}-byte limit",
                    {"max_bytes": max_bytes})
