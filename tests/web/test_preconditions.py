"""A post's ETag and If-Match through the API, on SQLite and PostgreSQL: a change made
from a stale revision is a 412 that changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from bulletin.store.db import Database
from tests.helpers import events, new_post, new_stream, snapshot


async def _story(client: httpx.AsyncClient) -> dict[str, Any]:
    await new_stream(client, "night")
    return await new_post(client, "night", "Turnout 52%")


async def test_every_answer_with_a_post_carries_its_etag(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """POST, GET and PATCH answer with the ETag of the revision they return; a replayed
    POST carries the same one."""
    await new_stream(editor_client, "night")
    created = await editor_client.post("/api/streams/night/posts", json={"body": "a"},
                                       headers={"Idempotency-Key": "k1"})
    assert created.status_code == 201 and created.headers["etag"] == '"r1"'
    replayed = await editor_client.post("/api/streams/night/posts", json={"body": "a"},
                                        headers={"Idempotency-Key": "k1"})
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.headers["etag"] == '"r1"'
    url = f"/api/posts/{created.json()['id']}"
    assert (await client.get(url)).headers["etag"] == '"r1"'
    edited = await editor_client.patch(url, json={"body": "b"}, headers={"If-Match": '"r1"'})
    assert edited.status_code == 200 and edited.json()["revision"] == 2
    assert edited.headers["etag"] == '"r2"'
    assert (await client.get(url)).headers["etag"] == '"r2"'


async def test_a_stale_if_match_on_patch_is_412_and_changes_nothing(
    editor_client: httpx.AsyncClient, db: Database
) -> None:
    """A PATCH from revision 1 of a post now at revision 2 is a 412 precondition_failed with
    the current post in its details; no row, event or revision is written."""
    post = await _story(editor_client)
    url = f"/api/posts/{post['id']}"
    theirs = await editor_client.patch(url, json={"body": "Turnout 50.4%"},
                                       headers={"If-Match": '"r1"'})
    assert theirs.status_code == 200
    before = await snapshot(db)
    mine = await editor_client.patch(url, json={"body": "Turnout 51%", "pinned": True},
                                     headers={"If-Match": '"r1"'})
    assert mine.status_code == 412
    error = mine.json()["error"]
    assert error["code"] == "precondition_failed"
    assert error["details"]["post"]["body"] == "Turnout 50.4%"
    assert error["details"]["post"]["revision"] == 2
    assert error["details"]["post"]["pinned"] is False
    assert mine.headers["etag"] == '"r2"'
    assert await snapshot(db) == before
    assert [e["op"] for e in await events(editor_client, "night")] == [
        "post.created", "post.edited"]


async def test_a_stale_if_match_on_delete_is_412_and_keeps_the_post(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient, db: Database
) -> None:
    """A DELETE from an old revision deletes nothing; from the current one it deletes."""
    post = await _story(editor_client)
    url = f"/api/posts/{post['id']}"
    await editor_client.patch(url, json={"body": "Turnout 50.4%"})
    before = await snapshot(db)
    stale = await editor_client.delete(url, headers={"If-Match": '"r1"'})
    assert stale.status_code == 412
    assert stale.json()["error"]["details"]["post"]["body"] == "Turnout 50.4%"
    assert await snapshot(db) == before
    assert (await client.get(url)).status_code == 200
    fresh = await editor_client.delete(url, headers={"If-Match": '"r2"'})
    assert fresh.status_code == 200 and fresh.json()["deleted"] is True


@pytest.mark.parametrize("header", [None, "*", '"r2"', '"r9", "r2"', '"r1","r2",'])
async def test_a_matching_or_absent_if_match_changes_the_post(
    editor_client: httpx.AsyncClient, header: str | None
) -> None:
    """No If-Match, ``*``, or a list that names the current revision: the edit is made."""
    post = await _story(editor_client)
    url = f"/api/posts/{post['id']}"
    await editor_client.patch(url, json={"body": "second"})
    headers = {} if header is None else {"If-Match": header}
    response = await editor_client.patch(url, json={"body": "third"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["body"] == "third" and response.headers["etag"] == '"r3"'


@pytest.mark.parametrize("header", ['W/"r1"', '"other"', '"1"', 'W/"r1" , "r0"'])
async def test_weak_or_foreign_tags_never_match(
    editor_client: httpx.AsyncClient, header: str
) -> None:
    """If-Match compares strongly: a weak tag, or one this server never gave, is a 412
    even when it spells the current revision."""
    post = await _story(editor_client)
    response = await editor_client.patch(f"/api/posts/{post['id']}", json={"body": "x"},
                                         headers={"If-Match": header})
    assert response.status_code == 412, response.text
    assert response.json()["error"]["code"] == "precondition_failed"


@pytest.mark.parametrize("header", ["r1", "", '"r1" r2', '"r1', "**"])
async def test_a_malformed_if_match_is_a_400(
    editor_client: httpx.AsyncClient, db: Database, header: str
) -> None:
    """An If-Match that is not * or a list of quoted ETags is a 400 invalid_header."""
    post = await _story(editor_client)
    before = await snapshot(db)
    for method in ("PATCH", "DELETE"):
        response = await editor_client.request(
            method, f"/api/posts/{post['id']}", headers={"If-Match": header},
            json={"body": "x"} if method == "PATCH" else None)
        assert response.status_code == 400, (method, response.text)
        assert response.json()["error"]["code"] == "invalid_header"
    assert await snapshot(db) == before


async def test_pinning_keeps_the_etag(editor_client: httpx.AsyncClient) -> None:
    """The ETag covers the text and photos: a pin does not make an edit from the same
    revision stale."""
    post = await _story(editor_client)
    url = f"/api/posts/{post['id']}"
    pinned = await editor_client.patch(url, json={"pinned": True}, headers={"If-Match": '"r1"'})
    assert pinned.status_code == 200 and pinned.headers["etag"] == '"r1"'
    edited = await editor_client.patch(url, json={"body": "new"}, headers={"If-Match": '"r1"'})
    assert edited.status_code == 200 and edited.json()["pinned"] is True


async def test_two_edits_from_one_revision_at_once_make_one_change(
    editor_client: httpx.AsyncClient,
) -> None:
    """Sent together from the same revision, one edit wins and the other is a 412: the
    revision is checked with the post locked, not read before the write."""
    post = await _story(editor_client)
    url = f"/api/posts/{post['id']}"
    answers = await asyncio.gather(*[
        editor_client.patch(url, json={"body": f"version {i}"}, headers={"If-Match": '"r1"'})
        for i in range(4)])
    assert sorted(a.status_code for a in answers) == [200, 412, 412, 412]
    winner = next(a for a in answers if a.status_code == 200).json()
    for loser in (a for a in answers if a.status_code == 412):
        assert loser.json()["error"]["details"]["post"]["body"] == winner["body"]
    assert [e["op"] for e in await events(editor_client, "night")] == [
        "post.created", "post.edited"]
