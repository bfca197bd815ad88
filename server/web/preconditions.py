"""A post's ETag and the If-Match precondition that keeps two editors from overwriting
each other.

A post's ETag is its revision, ``"r3"``: the number that every change of its text or photos
raises by one. It is a strong validator because ``If-Match`` only ever compares strongly
(RFC 9110, 13.1.1): a weak ETag could never match. It covers what an editor writes, the
text and the photos; pinning and a card that arrives after publishing change neither, so
they do not make an edit made from the same revision stale.

``If-Match`` on a PATCH or DELETE names the revision the client started from. The check
is made in the write transaction, with the stream locked (``eventlog.StaleRevision``), so
no other write can slip in between; a stale one is a 412 ``precondition_failed`` whose
details carry the post as it is now. ``*`` or no header changes the post whatever its
revision.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from ..core.errors import ApiError

# One entity-tag of a list (RFC 9110, 8.8.3): optionally weak, then a quoted string.
_ENTITY_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')
_REVISION_TAG = re.compile(r"r([0-9]{1,18})")


def etag(revision: int) -> str:
    """The ETag of a post at this revision."""
    return f'"r{revision}"'


def etag_header(post: dict[str, Any]) -> dict[str, str]:
    """The ETag header of a post's JSON."""
    return {"ETag": etag(int(post["revision"]))}


def expected_revisions(request: Request) -> frozenset[int] | None:
    """The revisions ``If-Match`` accepts: None when it is absent or ``*`` (any revision).

    A weak tag, or a tag that is not one of ours, matches no revision (a 412 follows); a
    header that is not a list of entity-tags is a 400 ``invalid_header``.
    """
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    invalid = ApiError(400, "invalid_header",
                       'If-Match must be * or a list of ETags such as "r3"',
                       {"header": "If-Match"})
    if not raw.strip():
        raise invalid
    revisions: set[int] = set()
    position = 0
    while position < len(raw):
        match = _ENTITY_TAG.match(raw, position)
        if match is None:
            raise invalid
        weak, value = match.groups()
        tag = _REVISION_TAG.fullmatch(value)
        if weak is None and tag is not None:
            revisions.add(int(tag.group(1)))
        position = match.end()
    return frozenset(revisions)


def precondition_failed(current: dict[str, Any]) -> ApiError:
    """The 412 for a change made from a revision that is no longer the post's."""
    return ApiError(
        412, "precondition_failed",
        f"the post has changed since you read it (it is now at revision "
        f"{current['revision']}): nothing was changed",
        {"post": current}, headers=etag_header(current))
