"""The JSON shapes of streams, posts and events, shared by the API and live delivery."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .models import ApiToken, Editor, Person, Post, Stream


def iso(value: datetime | None) -> str | None:
    """An aware UTC datetime as ISO 8601 with milliseconds and a Z."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def token_access(token: ApiToken) -> dict[str, Any]:
    """What an API token may do, as ``GET /api/me`` and the token API show it: its scope,
    its streams (null: every stream) and its expiry (null: never)."""
    return {"id": token.id, "name": token.name, "prefix": token.prefix, "scope": token.scope,
            "streams": token.streams, "expires_at": iso(token.expires_at)}


def author_json(editor: Editor | None) -> dict[str, Any] | None:
    """What readers see of a post's author: an id and the display name, never the login."""
    if editor is None:
        return None
    return {"id": editor.id, "name": editor.display_name}


def person_json(person: Person) -> dict[str, Any]:
    """A person of the directory as bylines show them: name, description, photo."""
    photo = person.photo
    return {
        "id": person.id,
        "name": person.name,
        "description": person.description,
        "photo": None if photo is None else {
            "url": photo.get("url"), "width": photo.get("width"),
            "height": photo.get("height"), "variants": photo.get("variants", [])},
    }


def post_json(post: Post, *, stream_slug: str, author: Editor | None,
              contributors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A post's full public state. A deleted post keeps its id and times but not its text.
    ``contributors`` are its bylines' JSON (``person_json``), in order."""
    deleted = post.deleted_at is not None
    return {
        "id": post.id,
        "stream": stream_slug,
        "author": author_json(author),
        "headline": None if deleted or not post.headline else post.headline,
        "contributors": [] if deleted else list(contributors or []),
        "tags": [] if deleted else list(post.tags),
        "body": None if deleted else post.body,
        "html": None if deleted else post.html,
        "embeds": [] if deleted else list(post.embeds),
        "media": [] if deleted else list(post.media),
        "pinned": post.pinned,
        "revision": post.revision,
        "created_at": iso(post.created_at),
        "edited_at": iso(post.edited_at),
        "deleted_at": iso(post.deleted_at),
        "deleted": deleted,
    }


def stream_json(stream: Stream) -> dict[str, Any]:
    """A stream's public state, including the seq of its newest event."""
    return {
        "slug": stream.slug,
        "title": stream.title,
        "description": stream.description,
        "status": stream.status,
        "seq": stream.seq,
        "created_at": iso(stream.created_at),
        "updated_at": iso(stream.updated_at),
        "started_at": iso(stream.started_at),
        "ended_at": iso(stream.ended_at),
    }


def event_json(
    *, stream_slug: str, seq: int, op: str, at: datetime, subject: dict[str, Any]
) -> dict[str, Any]:
    """An event as sent on every transport: post ops carry ``post``, stream ops ``stream_info``."""
    key = "post" if op.startswith("post.") else "stream_info"
    return {
        "type": "event",
        "stream": stream_slug,
        "seq": seq,
        "op": op,
        "at": iso(at),
        key: subject,
    }


def encode(value: Any) -> str:
    """Compact JSON, the one encoding used for stored and sent payloads."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
