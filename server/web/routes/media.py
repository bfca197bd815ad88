"""Photos: ``POST /api/media`` (upload, editors only), ``GET /api/media/{id}``,
``DELETE /api/media/{id}`` (take-down), ``GET /api/streams/{slug}/media`` (a story's
photos), and the files themselves under ``/media/{name}``.

An upload is refused while it streams in once it passes ``max_upload_bytes`` (413); the
type comes from the bytes, never the name or the Content-Type; the image is checked,
oriented, stripped of every metadata and resized by ``core/images.py`` in a worker process
at idle priority (``web/imaging.py``), at most ``media_workers`` at a time, so that
processing never holds up a live delivery.
Files are stored under names derived from the upload's content before the row is
written; a refused or failed upload leaves neither file nor row behind. An upload sent
again with the same ``Idempotency-Key`` (the desk's retry) answers with the first one's
photo, without processing it again.

A take-down (a victim's face, a legal order) removes the photo from every post showing
it (edits with their events, so open pages drop it), marks every upload of the same bytes
as taken down, and then deletes their files: their URLs answer 410 Gone, and the same file
cannot be uploaded again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message

from ...core import images
from ...core.access import Act
from ...core.errors import ApiError
from ...store.eventlog import get_stream
from ...store.media import MediaUnavailable
from ...store.media.base import CACHE_CONTROL, NAME_RE
from ...store.media.files import CONTENT_TYPES, put_variants
from ...store.media.records import (
    create,
    digest_in_use,
    get,
    media_json,
    taken_down_digest,
    taken_down_file,
)
from ..callers import caller, writer
from ..idempotency import Created, earlier, run_once
from ..photos import story_photos, take_down_photo
from ..responses import json_response
from ..services import Services, services
from ..validation import checked_id, checked_slug

# Room for the multipart framing and the small text fields around the file.
FORM_OVERHEAD = 64 * 1024
LIMITS = {"alt": 1000, "caption": 2000, "credit": 200, "stream": 100}


async def upload(request: Request) -> Response:
    """POST /api/media: a photo in the multipart field ``file`` (and ``alt``, ``caption``,
    ``credit``) → 201 with its variants."""
    editor = await writer(request, Act.UPLOAD)
    svc = services(request)
    limit = svc.settings.max_upload_bytes
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type",
                       "send the photo as multipart/form-data, in the field 'file'")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise _too_large(limit)
    data, fields = await _read_form(request, limit)
    digest = hashlib.sha256(data).hexdigest()
    key = request.headers.get("idempotency-key")
    # The form's framing differs on every send: a retry is the same bytes and fields.
    fingerprint = json.dumps({"sha256": digest, **fields}, sort_keys=True).encode()
    replay = await earlier(request, editor, fingerprint, key=key)
    if replay is not None:
        return replay.response()
    slug = fields.pop("stream")
    async with svc.db.read() as session:
        stream_id = None
        if slug:
            stream = await get_stream(session, slug=checked_slug(slug), include_drafts=True)
            stream_id = stream.id
        down = await taken_down_digest(session, digest=digest)
    if down is not None:
        raise ApiError(409, "media_taken_down",
                       f"this photo was taken down (media {down.id}) and cannot be uploaded "
                       "again", {"media": down.id})
    try:
        processed = await svc.imaging.process(data, max_pixels=svc.settings.max_image_pixels)
    except images.ImageRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    written: list[str] = []
    try:
        stored = await put_variants(svc.media, digest, processed.variants, written)
        assert editor.id is not None
        uploader = editor.id

        async def add(session: AsyncSession) -> Created:
            media = await create(
                session, uploaded_by_id=uploader, digest=digest,
                source_type=processed.source_type, width=processed.width,
                height=processed.height, variants=stored, stream_id=stream_id, **fields)
            return 201, media_json(media, svc.media.url), "", []

        outcome = await run_once(request, editor, fingerprint, add, key=key)
    except BaseException:
        await _forget(svc, digest, written)
        raise
    return outcome.response()



async def _forget(svc: Services, digest: str, names: list[str]) -> None:
    """Remove files written for an upload that failed, unless another photo uses them."""
    try:
        async with svc.db.read() as session:
            if await digest_in_use(session, digest=digest):
                return
    except Exception:
        return  # without the database we cannot tell: keeping a file is the safe side
    for name in names:
        try:
            await svc.media.delete(name)
        except MediaUnavailable:
            pass


async def _read_form(request: Request, limit: int) -> tuple[bytes, dict[str, str]]:
    """The file's bytes and the text fields; 413 as soon as the body passes the limit."""
    received = 0
    receive = request.receive

    async def bounded() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit + FORM_OVERHEAD:
                raise _too_large(limit)
        return message

    bounded_request = Request(request.scope, bounded)
    try:
        form = await bounded_request.form(max_files=1, max_fields=len(LIMITS),
                                          max_part_size=max(LIMITS.values()) * 4)
    except ApiError:
        raise
    except Exception as exc:  # malformed multipart: python-multipart's own errors
        raise ApiError(400, "invalid_form", f"the upload is not valid multipart: {exc}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "validation_error", "file: send the photo in the field 'file'",
                           [{"field": "file", "type": "missing", "message": "required"}])
        data = await upload.read()
        if len(data) > limit:
            raise _too_large(limit)
        if not data:
            raise ApiError(422, "validation_error", "file: the file is empty",
                           [{"field": "file", "type": "empty", "message": "the file is empty"}])
        fields: dict[str, str] = {}
        for name, most in LIMITS.items():
            value = form.get(name, "")
            if not isinstance(value, str):
                raise ApiError(422, "validation_error", f"{name}: must be text")
            value = value.strip()
            if len(value) > most or "\x00" in value:
                raise ApiError(422, "validation_error",
                               f"{name}: at most {most} characters, no NUL",
                               [{"field": name, "type": "too_long", "message": "too long"}])
            fields[name] = value
        return data, fields
    finally:
        await form.close()


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "upload_too_large", f"the upload is over the {limit}-byte limit",
                    {"max_bytes": limit})


async def get_media(request: Request) -> Response:
    """GET /api/media/{id}: a photo's description and variants (editors only)."""
    await caller(request, required=True)
    media_id = checked_id(request.path_params["id"], "media")
    svc = services(request)
    async with svc.db.read() as session:
        media = await get(session, media_id=media_id)
    return json_response(media_json(media, svc.media.url))


async def take_down_media(request: Request) -> Response:
    """DELETE /api/media/{id}: take a photo down everywhere (editors only; see
    ``web/photos.py``). 503 when storage would not delete every file: the photo is
    already out of every post, and sending the DELETE again removes the files."""
    editor = await writer(request, Act.TAKE_DOWN)
    media_id = checked_id(request.path_params["id"], "media")
    done = await take_down_photo(services(request), media_id=media_id, editor=editor)
    if done.files_left:
        raise ApiError(503, "media_storage_unavailable",
                       f"the photo is out of every post, but {done.files_left} of its files "
                       "could not be removed from storage: send the DELETE again",
                       {"media": media_id, "files_left": done.files_left})
    return json_response(done.media | {"posts_edited": done.posts_edited,
                                       "files_removed": done.files_removed})


async def stream_media(request: Request) -> Response:
    """GET /api/streams/{slug}/media: the story's photos, newest first (editors only):
    those uploaded for it and those its posts show, with the posts showing each."""
    await caller(request, required=True)
    slug = checked_slug(request.path_params["slug"])
    media = await story_photos(services(request), slug=slug)
    return json_response({"stream": slug, "media": media})


async def media_file(request: Request) -> Response:
    """GET /media/{name}: a stored file, cacheable for a year (its name is its content);
    410 Gone once the photo was taken down."""
    name: str = request.path_params["name"]
    if not NAME_RE.match(name):
        raise ApiError(404, "not_found", "no such file")
    svc = services(request)
    content_type = CONTENT_TYPES[name.rsplit(".", 1)[1]]
    headers = {"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff",
               "Access-Control-Allow-Origin": "*"}
    # A file on this machine is sent from disk, never read whole into memory.
    path = svc.media.local_path(name)
    if path is not None:
        try:
            found = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            found = None
        if found is not None:
            return FileResponse(path, media_type=content_type, headers=headers,
                                stat_result=found)
        data = None
    else:
        data = await svc.media.get(name)
    if data is None:
        async with svc.db.read() as session:
            gone = await taken_down_file(session, name=name)
        if gone:
            raise ApiError(410, "media_taken_down", "this photo was taken down")
        raise ApiError(404, "not_found", "no such file")
    return Response(data, media_type=content_type, headers=headers)


def routes() -> list[BaseRoute]:
    """The media routes."""
    return [
        Route("/api/media", upload, methods=["POST"]),
        Route("/api/media/{id:int}", get_media, methods=["GET"]),
        Route("/api/media/{id:int}", take_down_media, methods=["DELETE"]),
        Route("/api/streams/{slug}/media", stream_media, methods=["GET"]),
        Route("/media/{name}", media_file, methods=["GET", "HEAD"], include_in_schema=False),
    ]
