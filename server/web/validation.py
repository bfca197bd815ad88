"""Request bodies and query parameters: parsed strictly, refused with a clear 4xx."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError
from starlette.requests import Request

from ..core import safejson
from ..core.errors import ApiError
from ..core.protocol import (
    MAX_TAGS,
    SLUG_PATTERN,
    SLUG_RE,
    TAG_PATTERN,
    TAG_RE,
    PostFilter,
)
from ..store.media.records import Attachment
from ..store.models import MAX_ID
from ..store.people import MAX_CONTRIBUTORS
from .idempotency import IDEMPOTENCY_KEY_RE

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


def _one_line(value: str) -> str:
    return " ".join(value.split())


Headline = Annotated[str, AfterValidator(_storable), AfterValidator(_one_line),
                     StringConstraints(max_length=120)]
Tag = Annotated[str, StringConstraints(max_length=32, pattern=TAG_PATTERN)]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]
PersonId = Annotated[int, Field(ge=1, le=MAX_ID)]
Contributors = Annotated[list[PersonId], Field(max_length=MAX_CONTRIBUTORS)]

HEADLINE_HELP = "Up to 120 characters on one line; \"\" for none (the first line stands in)"
TAGS_HELP = (f"Up to {MAX_TAGS} short slugs (lowercase letters, digits, inner dashes; "
             "at most 32 characters each)")
CONTRIBUTORS_HELP = "The bylines: ids of people in /api/people, in order"
PUBLISH_AT_HELP = ("When the post goes out: ISO 8601 with a time zone "
                   "(2026-12-04T20:00:00Z, 2026-12-04T21:00:00+01:00), in the future")


def _aware_time(value: Any) -> datetime:
    # Strict models take no strings for datetimes: read ISO 8601 here, and insist on a
    # time zone, since a time without one means a different moment to every reader.
    if not isinstance(value, str) or len(value) > 40:
        raise PydanticCustomError("datetime_type", "must be an ISO 8601 date and time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("datetime_parsing",
                                  "must be an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        raise PydanticCustomError("timezone_required", "must have a time zone: end it with "
                                  "Z for UTC or an offset such as +01:00")
    return parsed.astimezone(UTC)


AwareTime = Annotated[datetime, BeforeValidator(_aware_time)]


def future_time(value: datetime, now: datetime) -> datetime:
    """422 ``publish_at_past`` unless ``value`` is after ``now``."""
    if value <= now:
        raise ApiError(422, "publish_at_past",
                       "publish_at must be in the future; to publish now, leave it out "
                       "(or approve the post)", {"field": "publish_at"})
    return value


class PostCreate(_Body):
    """``POST /api/streams/{slug}/posts``."""

    body: Text = Field(description="Markdown (CommonMark); may be empty when the post "
                                   "has photos")
    pinned: bool = Field(default=False, description="A key event, shown at the top")
    media: list[MediaItem] = Field(default_factory=list, max_length=MAX_POST_MEDIA,
                                   description="Photos shown with the post, in order")
    headline: Headline = Field(default="", description=HEADLINE_HELP)
    tags: Tags = Field(default_factory=list, description=TAGS_HELP)
    contributors: Contributors = Field(default_factory=list, description=CONTRIBUTORS_HELP)
    publish_at: AwareTime | None = Field(default=None, description=PUBLISH_AT_HELP)


class PostPatch(_Body):
    """``PATCH /api/posts/{id}``: any of the fields; those left out stay as they are."""

    body: Text | None = None
    pinned: bool | None = None
    media: list[MediaItem] | None = Field(default=None, max_length=MAX_POST_MEDIA)
    headline: Headline | None = Field(default=None, description=HEADLINE_HELP)
    tags: Tags | None = Field(default=None, description=TAGS_HELP)
    contributors: Contributors | None = Field(default=None, description=CONTRIBUTORS_HELP)
    publish_at: AwareTime | None = Field(
        default=None, description="A scheduled post's new time (" + PUBLISH_AT_HELP + ")")

    def changes_nothing(self) -> bool:
        """Whether no field was sent."""
        return not self.model_fields_set


class SendBack(_Body):
    """``POST /api/posts/{id}/send-back``: what the contributor should change."""

    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=2000), AfterValidator(_storable)]


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
                 AfterValidator(_storable)]
PersonDescription = Annotated[str, AfterValidator(_storable), AfterValidator(_one_line),
                              StringConstraints(max_length=200)]


class PersonCreate(_Body):
    """``POST /api/people``."""

    name: Name
    description: PersonDescription = Field(
        default="", description="What readers see under the name: \"Reporter in Caracas\"")
    photo: int | None = Field(default=None, ge=1, le=MAX_ID,
                              description="A media id from POST /api/media, or null")


class PersonPatch(_Body):
    """``PATCH /api/people/{id}``: any of the fields (``photo: null`` removes the photo)."""

    name: Name | None = None
    description: PersonDescription | None = None
    photo: int | None = Field(default=None, ge=1, le=MAX_ID)


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


def post_filter(request: Request) -> PostFilter:
    """``?tag=X`` and ``?pinned=true`` of a list of posts; 400 for a value that no post can
    match."""
    tag = request.query_params.get("tag") or None
    if tag is not None and not TAG_RE.match(tag):
        raise ApiError(400, "invalid_parameter",
                       "tag must be a tag: lowercase letters, digits and inner dashes",
                       {"parameter": "tag"})
    pinned = request.query_params.get("pinned", "false")
    if pinned not in ("true", "false", "1", "0", ""):
        raise ApiError(400, "invalid_parameter", "pinned must be true or false",
                       {"parameter": "pinned"})
    return PostFilter(tag=tag, pinned=pinned in ("true", "1"))


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


# --- drafts ------------------------------------------------------------------------------

DraftAlt = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000),
                     AfterValidator(_storable)]
UploadName = Annotated[str, StringConstraints(max_length=200), AfterValidator(_storable)]


class DraftPhoto(_Body):
    """A photo of a draft: as a post's (``MediaItem``), but its alt text may still be
    missing."""

    id: int = Field(ge=1, le=MAX_ID, description="From POST /api/media")
    alt: DraftAlt = ""
    caption: Caption = ""
    credit: Credit = ""

    def attachment(self) -> Attachment:
        """The store's view of this item."""
        return Attachment(self.id, self.alt, self.caption, self.credit)


class DraftSave(_Body):
    """``PUT /api/streams/{slug}/draft``: the whole draft, as it is now."""

    body: Text = Field(default="", description="The Markdown typed so far")
    pinned: bool = False
    headline: Headline = Field(default="", description=HEADLINE_HELP)
    tags: Tags = Field(default_factory=list, description=TAGS_HELP)
    contributors: Contributors = Field(default_factory=list, description=CONTRIBUTORS_HELP)
    media: list[DraftPhoto] = Field(default_factory=list, max_length=MAX_POST_MEDIA,
                                    description="The photos already uploaded, in order")
    uploading: list[UploadName] = Field(
        default_factory=list, max_length=MAX_POST_MEDIA,
        description="The file names of photos still uploading on this device: they exist "
                    "only there, and other devices say so")
    key: str = Field(pattern=IDEMPOTENCY_KEY_RE.pattern,
                     description="The Idempotency-Key the draft will be posted with: "
                                 "publishing a post with it deletes the draft")
    base: int | None = Field(default=None, ge=1, le=MAX_ID,
                             description="The version this save was made from (null: "
                                         "from no draft on the server). Left out: the "
                                         "save overwrites whatever is stored")

    @model_validator(mode="after")
    def _photo_count(self) -> DraftSave:
        if len(self.media) + len(self.uploading) > MAX_POST_MEDIA:
            raise PydanticCustomError(
                "too_many_photos", "a draft has at most {max} photos, uploading ones "
                "included", {"max": MAX_POST_MEDIA})
        return self
