"""The OpenAPI 3.1 document describing every HTTP endpoint."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..core.access import ROLES, SCOPES
from ..core.protocol import EVENT_OPS, POST_STATUSES
from .validation import (
    DraftSave,
    PersonCreate,
    PersonPatch,
    PostCreate,
    PostPatch,
    SendBack,
    StreamCreate,
    StreamPatch,
)

JSON = "application/json"
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required}


SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": _object({
        "code": {"type": "string", "description": "Stable, machine-readable"},
        "message": {"type": "string", "description": "For people"},
        "details": {"description": "Structured context, or null"},
    })}),
    "Author": {"type": ["object", "null"], "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}}, "required": ["id", "name"]},
    "Embed": _object({
        "type": {"const": "card", "description": "Absent on posts from before cards, which "
                 "carry only provider, id and url"},
        "provider": {"type": "string", "examples": [
            "youtube", "vimeo", "tiktok", "x", "instagram", "facebook", "threads", "bluesky",
            "mastodon"]},
        "id": {"type": "string"},
        "url": {"type": "string", "format": "uri", "description": "The original post"},
        "provider_name": {"type": "string", "examples": ["YouTube"]},
        "state": {"enum": ["pending", "ready", "link"], "description": "pending: being "
                  "fetched (a post.embedded event brings it); ready: a full card; link: a "
                  "plain link card"},
        "title": {"type": ["string", "null"]},
        "text": {"type": ["string", "null"], "description": "The post's words, plain text"},
        "author_name": {"type": ["string", "null"]},
        "author_url": {"type": ["string", "null"], "format": "uri"},
        "published_at": {"type": ["string", "null"], "description": "ISO 8601 date or time"},
        "date": {"type": ["string", "null"], "description": "The date as the provider shows it"},
        "thumbnail": {"oneOf": [{"type": "null"}, _object({
            "width": {"type": "integer"}, "height": {"type": "integer"},
            "variants": {"type": "array", "items": _ref("MediaVariant")}})],
            "description": "A copy on this server's media storage, never the provider's"},
        "embed_url": {"type": ["string", "null"], "format": "uri",
                      "description": "The provider's player, to load only on the reader's "
                                     "request"},
        "problem": {"oneOf": [{"type": "null"}, _object({
            "code": {"type": "string"}, "message": {"type": "string"}})],
            "description": "Why the card is a plain link"},
    }, required=["provider", "id", "url"]),
    "MediaVariant": _object({
        "width": {"type": "integer"}, "height": {"type": "integer"},
        "content_type": {"type": "string", "enum": ["image/webp", "image/jpeg", "image/gif"]},
        "url": {"type": "string"}}),
    "PostPhoto": _object({
        "id": {"type": "integer"},
        "alt": {"type": "string", "description": "What the photo shows"},
        "caption": {"type": "string"}, "credit": {"type": "string"},
        "width": {"type": "integer"}, "height": {"type": "integer"},
        "url": {"type": "string", "description": "The largest WebP variant"},
        "variants": {"type": "array", "items": _ref("MediaVariant")}}),
    "PersonPhoto": {"oneOf": [{"type": "null"}, _object({
        "url": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"},
        "variants": {"type": "array", "items": _ref("MediaVariant")}})]},
    "Person": _object({
        "id": {"type": "integer"}, "name": {"type": "string"},
        "description": {"type": "string", "description": "Shown under the name"},
        "photo": _ref("PersonPhoto")}),
    "PersonDetail": {"allOf": [_ref("Person"), _object(
        {"created_at": _TIME, "updated_at": _TIME})]},
    "PeopleList": _object({"people": {"type": "array", "items": _ref("PersonDetail")}}),
    "Post": _object({
        "id": {"type": "integer"},
        "stream": {"type": "string", "description": "The stream's slug"},
        "author": _ref("Author"),
        "headline": {"type": ["string", "null"],
                     "description": "The post's headline; null for none (pages then use "
                                    "its first line)"},
        "contributors": {"type": "array", "items": _ref("Person"),
                         "description": "The bylines, in order (people of /api/people)"},
        "tags": {"type": "array", "items": {"type": "string"},
                 "description": "Short slugs; ?tag= on the list of posts filters by one"},
        "body": {"type": ["string", "null"], "description": "Markdown; null once deleted"},
        "html": {"type": ["string", "null"], "description": "Sanitised HTML; null once deleted"},
        "embeds": {"type": "array", "items": _ref("Embed")},
        "media": {"type": "array", "items": _ref("PostPhoto"),
                  "description": "Photos shown with the post, in order"},
        "pinned": {"type": "boolean", "description": "A key event"},
        "revision": {"type": "integer", "minimum": 1},
        "created_at": _TIME, "edited_at": _NULLABLE_TIME, "deleted_at": _NULLABLE_TIME,
        "deleted": {"type": "boolean"},
    }),
    "PostStatus": _object({
        "status": {"type": "string", "enum": list(POST_STATUSES), "description": (
            "published: readers see it. submitted: a contributor's, awaiting an editor's "
            "approval; returned: sent back to its contributor with a note; scheduled: goes "
            "out at publish_at. Only published posts reach readers, events and pages")},
        "publish_at": {**_NULLABLE_TIME,
                       "description": "When a scheduled post goes out; null otherwise"},
        "note": {"type": ["string", "null"],
                 "description": "What the editor who sent it back asked for; null for none"},
    }),
    "WaitingPost": {"allOf": [_ref("Post"), _ref("PostStatus")],
                    "description": "A post that is not published: only editors see it"},
    "PostWithSeq": {"allOf": [_ref("Post"), _ref("PostStatus"), _object(
        {"seq": {"type": ["integer", "null"],
                 "description": "Seq of the last event this write made; null if none (a "
                                "post that waits has no events)"}})]},
    "Stream": _object({
        "slug": {"type": "string"}, "title": {"type": "string"},
        "description": {"type": "string"},
        "status": {"type": "string", "enum": ["draft", "live", "ended"]},
        "seq": {"type": "integer", "minimum": 0, "description": "Seq of the newest event"},
        "created_at": _TIME, "updated_at": _TIME,
        "started_at": _NULLABLE_TIME, "ended_at": _NULLABLE_TIME,
        "links": _object({"self": {"type": "string"}, "posts": {"type": "string"},
                          "events": {"type": "string"}}),
        "readers": {"type": "integer", "minimum": 0, "description": (
            "Editors only (absent for anonymous callers and in events): open WebSocket and "
            "SSE readers of the stream, summed over every server process within a few "
            "seconds; editors' own connections are not counted")},
    }, required=["slug", "title", "description", "status", "seq", "created_at", "updated_at",
                 "started_at", "ended_at", "links"]),
    "StreamWithPinned": {"allOf": [_ref("Stream"), _object(
        {"pinned": {"type": "array", "items": _ref("Post"),
                    "description": "Key events, newest first"}})]},
    "StreamList": _object({
        "streams": {"type": "array", "items": _ref("Stream")},
        "next_cursor": {"type": ["string", "null"],
                        "description": "Pass as `before` for the next page; null at the end"},
        "links": _object({"next": {"type": ["string", "null"]}}),
    }),
    "Index": _object({
        "name": {"type": "string"}, "version": {"type": "string"},
        "links": {"type": "object", "additionalProperties": {"type": "string"}}}),
    "PostPage": _object({
        "stream": {"type": "string"}, "seq": {"type": "integer"},
        "posts": {"type": "array", "items": {"anyOf": [_ref("Post"), _ref("WaitingPost")]},
                  "description": "With ?status= other than published, WaitingPosts"},
        "next_cursor": {"type": ["string", "null"],
                        "description": "Pass as `before` for the next page; null at the end"},
        "links": _object({"next": {"type": ["string", "null"]}}),
    }),
    "Event": {
        "type": "object",
        "required": ["type", "stream", "seq", "op", "at"],
        "properties": {
            "type": {"const": "event"}, "stream": {"type": "string"},
            "seq": {"type": "integer", "minimum": 1}, "op": {"enum": list(EVENT_OPS)},
            "at": _TIME,
            "post": {**_ref("Post"), "description": "For post.* ops: the post after the change"},
            "stream_info": {**_ref("Stream"),
                            "description": "For stream.* ops: the stream after the change"},
        },
    },
    "EventPage": _object({
        "stream": {"type": "string"},
        "seq": {"type": "integer", "description": "The stream's newest seq"},
        "since": {"type": "integer"},
        "has_more": {"type": "boolean", "description": "Ask again with since = last seq"},
        "events": {"type": "array", "items": _ref("Event")},
    }),
    "Revisions": _object({
        "post": _ref("Post"),
        "revisions": {"type": "array", "items": _object({
            "revision": {"type": "integer"}, "headline": {"type": ["string", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "contributors": {"type": "array", "items": {"type": "integer"},
                             "description": "Person ids"},
            "body": {"type": "string"},
            "html": {"type": "string"}, "media": {"type": "array", "items": _ref("PostPhoto")},
            "author_id": {"type": ["integer", "null"]},
            "replaced_at": _TIME, "replaced_by_id": {"type": ["integer", "null"]}})},
    }),
    "Me": _object({"id": {"type": "integer"}, "username": {"type": "string"},
                   "display_name": {"type": "string"},
                   "role": {"type": "string", "enum": list(ROLES)},
                   "token": {"oneOf": [_ref("TokenAccess"), {"type": "null"}],
                             "description": "The API token the request came with; null "
                                            "with the desk's session cookie"}}),
    "TokenAccess": _object({
        "id": {"type": "integer"}, "name": {"type": "string"}, "prefix": {"type": "string"},
        "scope": {"type": "string", "enum": list(SCOPES),
                  "description": "read: reads only; write: what the editor's role allows "
                                 "but admin endpoints; admin: those too"},
        "streams": {"type": ["array", "null"], "items": {"type": "string"},
                    "description": "The only streams it may write to; null: every stream"},
        "expires_at": {**_NULLABLE_TIME, "description": "After this it is a 401 "
                                                        "token_expired; null: never"},
    }),
    "Health": _object({"status": {"type": "string"}}, ["status"]),
    "Token": _object({
        "id": {"type": "integer"},
        "editor_id": {"type": "integer"},
        "editor": {"type": "string", "description": "The editor's username"},
        "name": {"type": "string", "description": "What the token is for"},
        "prefix": {"type": "string",
                   "description": "The token's first characters, to tell tokens apart"},
        "scope": {"type": "string", "enum": list(SCOPES)},
        "streams": {"type": ["array", "null"], "items": {"type": "string"},
                    "description": "The only streams it may write to; null: every stream"},
        "expires_at": {**_NULLABLE_TIME, "description": "null: never"},
        "expired": {"type": "boolean"},
        "created_at": _TIME, "last_used_at": _NULLABLE_TIME, "revoked_at": _NULLABLE_TIME,
        "revoked": {"type": "boolean"},
    }),
    "TokenList": _object({"tokens": {"type": "array", "items": _ref("Token"),
                                     "description": "Newest first, revoked ones included"}}),
    "Media": _object({
        "id": {"type": "integer"},
        "url": {"type": "string", "description": "The largest WebP variant"},
        "content_type": {"type": "string", "description": "The type of `url`"},
        "width": {"type": "integer", "description": "Of the largest variant, as displayed "
                                                    "(the photo's orientation applied)"},
        "height": {"type": "integer"},
        "source_type": {"type": "string", "description": "What was uploaded: image/jpeg, "
                                                         "image/png, image/webp, image/heic, "
                                                         "image/heif or image/gif"},
        "alt": {"type": "string"}, "caption": {"type": "string"},
        "credit": {"type": "string"}, "created_at": _TIME,
        "variants": {"type": "array", "description": "Every width in WebP and JPEG, for "
                                                     "srcset; smallest first (none once "
                                                     "taken down)",
                     "items": _ref("MediaVariant")},
        "taken_down_at": {**_NULLABLE_TIME, "description": "When the photo was taken down: "
                                                           "its files are gone, `url` is null"},
        "taken_down_by_id": {"type": ["integer", "null"]},
    }),
    "TakeDown": {"allOf": [_ref("Media"), _object({
        "posts_edited": {"type": "array", "items": {"type": "integer"},
                         "description": "The posts edited without the photo"},
        "files_removed": {"type": "integer",
                          "description": "How many files left storage"},
    })]},
    "StreamMedia": _object({
        "stream": {"type": "string"},
        "media": {"type": "array", "description": "Newest first", "items": {"allOf": [
            _ref("Media"), _object({"posts": {
                "type": "array", "items": {"type": "integer"},
                "description": "The live posts showing the photo"}})]}},
    }),
    "MediaUpload": _object({
        "file": {"type": "string", "contentMediaType": "application/octet-stream",
                 "description": "The photo: JPEG, PNG, WebP, HEIC/HEIF or GIF (the type is "
                                "read from the bytes)"},
        "alt": {"type": "string", "maxLength": 1000,
                "description": "What the photo shows, for readers who cannot see it"},
        "caption": {"type": "string", "maxLength": 2000},
        "credit": {"type": "string", "maxLength": 200},
        "stream": {"type": "string", "description": "The slug of the story it is for: it is "
                                                    "then listed with the story's photos"},
    }, ["file"]),
    "Draft": _object({
        "stream": {"type": "string"},
        "body": {"type": "string"}, "pinned": {"type": "boolean"},
        "headline": {"type": "string", "description": "\"\" for none"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "contributors": {"type": "array", "items": {"type": "integer"},
                         "description": "Person ids"},
        "media": {"type": "array", "items": _ref("PostPhoto"),
                  "description": "The photos already uploaded, with their files' URLs (one "
                                 "taken down since is left out); alt may still be \"\""},
        "uploading": {"type": "array", "items": {"type": "string"},
                      "description": "Names of photos that were still uploading on the "
                                     "device that saved the draft: only that device has "
                                     "them"},
        "key": {"type": "string", "description": "The Idempotency-Key to post it with"},
        "version": {"type": "integer", "minimum": 1,
                    "description": "Counts the saves: send it back as `base`"},
        "updated_at": _TIME,
    }),
}
for _model in (StreamCreate, StreamPatch, PostCreate, PostPatch, SendBack, PersonCreate,
               PersonPatch, DraftSave):
    _schema = _model.model_json_schema(ref_template="#/components/schemas/{model}")
    # Models used inside the bodies (MediaItem) become components of their own.
    SCHEMAS.update(_schema.pop("$defs", {}))
    SCHEMAS[_model.__name__] = _schema

_ERRORS = {
    "400": "Malformed request (bad JSON, bad parameter, an If-Match that is no list of ETags)",
    "401": "Missing, malformed, unknown or revoked API token (invalid_token), or an "
           "expired one (token_expired)",
    "403": "The editor account is disabled (editor_disabled); on writes also: the token's "
           "scope does not allow it (insufficient_scope), the token is bound to other streams "
           "(stream_not_allowed), the editor's role does not allow it (forbidden_for_role), or a "
           "contributor's post is not theirs or not waiting (not_your_post, already_published)",
    "404": "No such stream or post (drafts are 404 to anonymous callers)",
    "409": "The state forbids it (slug taken, stream ended, invalid status change, post "
           "already published, not scheduled)",
    "412": "A precondition failed: If-Match names a revision the post is no longer at "
           "(precondition_failed: `details.post` is the post as it is now, the ETag header "
           "its revision), or a draft changed since its `base` (draft_changed); nothing "
           "was changed",
    "413": "Body over the size limit",
    "415": "Body is not application/json",
    "422": "Valid JSON of the wrong shape; details lists each field",
    "429": "Rate limited; see Retry-After",
    "503": "Database unavailable; nothing was changed",
}


def _responses(ok: str, schema: str, *errors: str) -> dict[str, Any]:
    out: dict[str, Any] = {ok.split()[0]: {
        "description": ok.split(" ", 1)[1],
        "content": {JSON: {"schema": _ref(schema)}}}}
    for status in errors:
        out[status] = {"description": _ERRORS[status],
                       "content": {JSON: {"schema": _ref("Error")}}}
    return out


def _no_content(description: str, *errors: str) -> dict[str, Any]:
    out = _responses("204 -", "Error", *errors)
    out["204"] = {"description": description}
    return out


def _admin(responses: dict[str, Any]) -> dict[str, Any]:
    responses["403"]["description"] = ("The caller is not an admin (forbidden), its token "
                                       "lacks the admin scope (insufficient_scope) or is "
                                       "bound to streams (stream_not_allowed), or it is "
                                       "disabled")
    responses["404"]["description"] = "No such token or editor"
    return responses


def _media(responses: dict[str, Any]) -> dict[str, Any]:
    responses["413"]["description"] = ("Over BULLETIN_MAX_UPLOAD_BYTES (upload_too_large), or "
                                       "more pixels than BULLETIN_MAX_IMAGE_PIXELS "
                                       "(too_many_pixels)")
    responses["415"]["description"] = ("Not multipart/form-data, or the file is not a photo "
                                       "of an accepted type (SVG is refused)")
    responses["422"]["description"] = ("No file, a field too long, a truncated or corrupt "
                                       "image (corrupt_image), or one whose processing "
                                       "stopped its worker twice (image_processing_failed)")
    return responses


def _html(responses: dict[str, Any]) -> dict[str, Any]:
    responses["200"]["content"]["text/html"] = {"schema": {"type": "string"}}
    return responses


def _sse(responses: dict[str, Any]) -> dict[str, Any]:
    responses["200"]["content"]["text/event-stream"] = {
        "schema": {"type": "string", "description": "Server-Sent Events records"}}
    return responses


def _etag(responses: dict[str, Any]) -> dict[str, Any]:
    for status, response in responses.items():
        if status[0] == "2" or status == "412":
            response["headers"] = _ETAG_HEADER
    return responses


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": _ref(schema)}}}


_SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
_IDEMPOTENCY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "Retrying with the same key returns the first response and creates "
                   "nothing new (kept 24 hours). Reusing it for another request is a 422.",
}
_IF_MATCH = {
    "name": "If-Match", "in": "header", "required": False,
    "schema": {"type": "string", "examples": ['"r3"', "*"]},
    "description": "Change the post only if it is still at this revision: the ETag it was "
                   "read with. A stale one is a 412 that changes nothing. `*` or no header: "
                   "whatever its revision. Compared strongly (a weak W/ tag never matches).",
}
_ETAG_HEADER = {"ETag": {
    "description": 'The post\'s revision, e.g. "r3": it changes with every edit of the text '
                   "or photos (not with a pin); send it back as If-Match",
    "schema": {"type": "string"}}}
_AUTH: list[dict[str, list[str]]] = [{"bearer": []}]
_OPTIONAL_AUTH: list[dict[str, list[str]]] = [{}, {"bearer": []}]
_WRITE_ERRORS = ("400", "401", "403", "413", "415", "422", "429", "503")


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    paths: dict[str, Any] = {
        "/": {"get": {"summary": "What this server is, and links to start from",
                      "operationId": "index", "security": [{}],
                      "description": "JSON for API clients (`Accept: application/json`, "
                                     "`*/*` or none). A browser, whose Accept ranks "
                                     "text/html first, gets the HTML list of stories that "
                                     "`/live` shows.",
                      "responses": _html(_responses("200 Index", "Index"))}},
        "/healthz": {"get": {"summary": "The process is up", "operationId": "healthz",
                             "security": [{}],
                             "responses": _responses("200 Up", "Health")}},
        "/readyz": {"get": {"summary": "The database is reachable", "operationId": "readyz",
                            "security": [{}],
                            "responses": _responses("200 Ready", "Health", "503")}},
        "/api/openapi.json": {"get": {
            "summary": "This document", "operationId": "openapi", "security": [{}],
            "responses": {"200": {"description": "OpenAPI 3.1",
                                  "content": {JSON: {"schema": {"type": "object"}}}}}}},
        "/api/me": {"get": {"summary": "The editor this token belongs to", "operationId": "me",
                            "security": _AUTH,
                            "responses": _responses("200 The editor", "Me", "401", "403")}},
        "/api/streams": {
            "get": {"summary": "List streams (drafts only for editors), newest first",
                    "operationId": "listStreams", "security": _OPTIONAL_AUTH,
                    "parameters": [
                        {"name": "status", "in": "query",
                         "schema": {"type": "string", "enum": ["draft", "live", "ended"]}},
                        {"name": "before", "in": "query", "schema": {"type": "string"},
                         "description": "A next_cursor from the previous page"},
                        {"name": "limit", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100}}],
                    "responses": _responses("200 Streams", "StreamList", "400", "401")},
            "post": {"summary": "Create a stream", "operationId": "createStream",
                     "security": _AUTH, "parameters": [_IDEMPOTENCY],
                     "requestBody": _body("StreamCreate"),
                     "responses": _responses("201 Created", "StreamWithPinned",
                                             *_WRITE_ERRORS, "409")},
        },
        "/api/streams/{slug}": {
            "parameters": [_SLUG],
            "get": {"summary": "A stream with its current seq and key events",
                    "operationId": "getStream", "security": _OPTIONAL_AUTH,
                    "responses": _responses("200 The stream", "StreamWithPinned", "401", "404")},
            "patch": {"summary": "Change title, description or status (status changes are "
                                 "events: live is stream.updated, ended is stream.ended)",
                      "operationId": "updateStream", "security": _AUTH,
                      "requestBody": _body("StreamPatch"),
                      "responses": _responses("200 Updated", "StreamWithPinned",
                                              *_WRITE_ERRORS, "404", "409")},
        },
        "/api/streams/{slug}/posts": {
            "parameters": [_SLUG],
            "get": {"summary": "Posts, newest first, a page at a time",
                    "operationId": "listPosts", "security": _OPTIONAL_AUTH,
                    "parameters": [
                        {"name": "before", "in": "query", "schema": {"type": "string"},
                         "description": "A next_cursor from the previous page"},
                        {"name": "limit", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                        {"name": "tag", "in": "query", "schema": {"type": "string"},
                         "description": "Only posts with this tag"},
                        {"name": "pinned", "in": "query",
                         "schema": {"type": "boolean", "default": False},
                         "description": "true: only key events"},
                        {"name": "status", "in": "query",
                         "schema": {"type": "string", "enum": list(POST_STATUSES),
                                    "default": "published"},
                         "description": "Editors only for any other than published (401 "
                                        "otherwise): the posts that wait; a contributor "
                                        "gets their own"}],
                    "responses": _responses("200 A page", "PostPage", "400", "401", "404")},
            "post": {"summary": "Publish a post (201; 409 if the stream has ended). A "
                                "contributor's is submitted for approval, one with "
                                "publish_at scheduled: neither has an event until it is "
                                "published",
                     "operationId": "createPost", "security": _AUTH,
                     "parameters": [_IDEMPOTENCY], "requestBody": _body("PostCreate"),
                     "responses": _etag(_responses("201 Created", "PostWithSeq",
                                                   *_WRITE_ERRORS, "404", "409"))},
        },
        "/api/streams/{slug}/draft": {
            "parameters": [_SLUG],
            "get": {"summary": "The caller's own unsent draft of a post in this stream "
                               "(another editor's is never shown: 404)",
                    "operationId": "getDraft", "security": _AUTH,
                    "responses": _responses("200 The draft", "Draft", "401", "403", "404")},
            "put": {"summary": "Save the caller's draft as its next version",
                    "operationId": "saveDraft", "security": _AUTH,
                    "description": "Send `base`: the `version` the draft was made from, or "
                                   "null when it was made with no draft on the server. A "
                                   "save from an older version (another device saved "
                                   "since, or deleted it) is a 412 `draft_changed` with the "
                                   "stored draft (or null) in `details.draft`, and changes "
                                   "nothing. Without `base`, the save overwrites whatever is "
                                   "stored. A draft whose `key` already made a post is a "
                                   "409 `draft_posted`. See docs/api.md.",
                    "requestBody": _body("DraftSave"),
                    "responses": _responses("200 Saved", "Draft", *_WRITE_ERRORS, "404",
                                            "409", "412")},
            "delete": {"summary": "Throw the caller's draft away (204 whether or not there "
                                  "was one)", "operationId": "deleteDraft", "security": _AUTH,
                       "responses": _no_content("No draft any more", "401", "403", "404",
                                                "429", "503")},
        },
        "/api/streams/{slug}/events": {
            "parameters": [_SLUG],
            "get": {"summary": "The event log after a seq, for catching up",
                    "operationId": "listEvents", "security": _OPTIONAL_AUTH,
                    "parameters": [
                        {"name": "since", "in": "query",
                         "schema": {"type": "integer", "minimum": 0, "default": 0},
                         "description": "Return events with seq greater than this"},
                        {"name": "limit", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                        {"name": "Last-Event-ID", "in": "header", "required": False,
                         "schema": {"type": "string", "pattern": "^[0-9]+$"},
                         "description": "Server-Sent Events only: resume after this seq "
                                        "(sent by EventSource when it reconnects)"}],
                    "description": "With `Accept: text/event-stream` the answer is a "
                                   "Server-Sent Events stream instead: `id:` = seq, "
                                   "`event:` = op, `data:` = the event JSON; it resumes "
                                   "after `Last-Event-ID` or `since` (neither: only new "
                                   "events). See docs/protocol.md.",
                    "responses": _sse(_responses("200 Events in seq order", "EventPage",
                                                 "400", "401", "404", "409"))},
        },
        "/ws": {
            "get": {"summary": "WebSocket protocol v1 (upgrade): subscribe to many streams",
                    "operationId": "websocket", "security": _OPTIONAL_AUTH,
                    "description": "Open with a WebSocket client, then send "
                                   "`{\"type\":\"subscribe\",\"stream\":\"<slug>\","
                                   "\"since\":N}`. Frames, close codes and the resume "
                                   "rules are in docs/protocol.md. A browser's Origin must "
                                   "be the server's own or in BULLETIN_ALLOWED_ORIGINS.",
                    "responses": {
                        "101": {"description": "Switching to the WebSocket protocol"},
                        "400": {"description": "Not a WebSocket upgrade request"}}},
        },
        "/api/posts/{id}": {
            "parameters": [_ID],
            "get": {"summary": "One post (one that waits: editors only, a contributor their "
                               "own; 404 to others)", "operationId": "getPost",
                    "security": _OPTIONAL_AUTH,
                    "responses": _etag(_responses("200 The post", "Post", "401", "404"))},
            "patch": {"summary": "Edit a post's text, headline, tags, bylines or photos (a new "
                                 "revision; the old one is kept) and/or pin it",
                      "operationId": "updatePost", "security": _AUTH,
                      "parameters": [_IF_MATCH], "requestBody": _body("PostPatch"),
                      "responses": _etag(_responses("200 Updated", "PostWithSeq",
                                                    *_WRITE_ERRORS, "404", "412"))},
            "delete": {"summary": "Delete a post (readers see a post.deleted event); a "
                                  "post that waits (withdrawn, cancelled) goes with none",
                       "operationId": "deletePost", "security": _AUTH,
                       "parameters": [_IF_MATCH],
                       "responses": _responses("200 Deleted", "PostWithSeq", "400",
                                               "401", "403", "404", "412", "429", "503")},
        },
        "/api/posts/{id}/approve": {
            "parameters": [_ID],
            "post": {"summary": "Publish a post that waits, now (editors and admins): a "
                                "contributor's (approval) or a scheduled one (publish now). "
                                "One post.created with the next seq; its created_at is now",
                     "operationId": "approvePost", "security": _AUTH,
                     "responses": _responses("200 Published", "PostWithSeq",
                                             "401", "403", "404", "409", "429", "503")},
        },
        "/api/posts/{id}/send-back": {
            "parameters": [_ID],
            "post": {"summary": "Return a submitted post to its contributor with a note "
                                "(editors and admins; no event). Their next edit submits it "
                                "again", "operationId": "sendBackPost", "security": _AUTH,
                     "requestBody": _body("SendBack"),
                     "responses": _responses("200 Returned", "PostWithSeq",
                                             *_WRITE_ERRORS, "404", "409")},
        },
        "/api/people": {
            "get": {"summary": "The people directory, by name (editors)",
                    "operationId": "listPeople", "security": _AUTH,
                    "responses": _responses("200 People", "PeopleList", "401", "403")},
            "post": {"summary": "Add a person to the directory (the bylines of posts)",
                     "operationId": "createPerson", "security": _AUTH,
                     "requestBody": _body("PersonCreate"),
                     "responses": _responses("201 Added", "PersonDetail", *_WRITE_ERRORS)},
        },
        "/api/people/{id}": {
            "parameters": [_ID],
            "get": {"summary": "One person (editors)", "operationId": "getPerson",
                    "security": _AUTH,
                    "responses": _responses("200 The person", "PersonDetail", "401", "403",
                                            "404")},
            "patch": {"summary": "Change a person's name, description or photo; posts show "
                                 "it from their next read or event",
                      "operationId": "updatePerson", "security": _AUTH,
                      "requestBody": _body("PersonPatch"),
                      "responses": _responses("200 Changed", "PersonDetail", *_WRITE_ERRORS,
                                              "404")},
        },
        "/api/tokens": {
            "get": {"summary": "Every API token, or one editor's, newest first (admins)",
                    "operationId": "listTokens", "security": _AUTH,
                    "description": "The tokens themselves are shown once, when they are "
                                   "made, and only their hashes are stored; neither is here.",
                    "parameters": [
                        {"name": "editor", "in": "query", "schema": {"type": "string"},
                         "description": "Only this editor's tokens (a username)"}],
                    "responses": _admin(_responses("200 Tokens", "TokenList",
                                                   "401", "403", "404"))},
        },
        "/api/tokens/{id}": {
            "parameters": [_ID],
            "delete": {"summary": "Revoke a token (admins); it stops working at once, on "
                                  "open connections too. Revoking again keeps the first time",
                       "operationId": "revokeToken", "security": _AUTH,
                       "responses": _admin(_responses("200 The revoked token", "Token",
                                                      "401", "403", "404", "503"))},
        },
        "/api/media": {
            "post": {"summary": "Upload a photo (editors): it is turned upright, stripped of "
                                "every metadata (GPS position, camera serial, owner) and made "
                                "into several widths in WebP and JPEG",
                     "operationId": "uploadMedia", "security": _AUTH,
                     "parameters": [_IDEMPOTENCY],
                     "requestBody": {"required": True, "content": {"multipart/form-data": {
                         "schema": _ref("MediaUpload")}}},
                     "responses": _media(_responses(
                         "201 The photo and its variants", "Media",
                         "400", "401", "403", "404", "409", "413", "415", "422", "429",
                         "503"))},
        },
        "/api/streams/{slug}/media": {
            "parameters": [_SLUG],
            "get": {"summary": "The story's photos: uploaded for it or shown in its posts "
                               "(editors)", "operationId": "listStreamMedia",
                    "security": _AUTH,
                    "responses": _responses("200 The photos", "StreamMedia", "401", "404")},
        },
        "/api/media/{id}": {
            "parameters": [_ID],
            "get": {"summary": "A photo and its variants (editors)", "operationId": "getMedia",
                    "security": _AUTH,
                    "responses": _responses("200 The photo", "Media", "401", "404")},
            "delete": {"summary": "Take a photo down (editors): every post showing it is "
                                  "edited without it, every upload of the same file is taken "
                                  "down, its files leave storage and its URLs answer 410",
                       "operationId": "takeDownMedia", "security": _AUTH,
                       "responses": _responses("200 Taken down", "TakeDown", "401", "403",
                                               "404", "429", "503")},
        },
        "/api/posts/{id}/revisions": {
            "parameters": [_ID],
            "get": {"summary": "A post's earlier texts, oldest first (editors)",
                    "operationId": "listRevisions", "security": _AUTH,
                    "responses": _responses("200 Revisions", "Revisions", "401", "404")},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bulletin API",
            "version": __version__,
            "description": "Live streams, posts and the event log. Errors are "
                           "`{\"error\": {\"code\", \"message\", \"details\"}}`.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "An API token from `bulletin token create EDITOR`"}},
        },
    }


async def openapi_json(request: Request) -> Response:
    """GET /api/openapi.json."""
    return JSONResponse(document())


def routes() -> list[BaseRoute]:
    """The document's route."""
    return [Route("/api/openapi.json", openapi_json, methods=["GET"])]
