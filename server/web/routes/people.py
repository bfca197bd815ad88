"""The people directory under /api/people: whom posts are by (their bylines).

Editors list, add and change people; readers see them only in the posts that name them.
A person is never deleted (old posts keep their bylines); a change reaches each post's
JSON when the post is read next, and live readers with the post's next event.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...core.access import Act
from ...core.errors import ApiError
from ...store import people
from ...store.models import Person
from ...store.payloads import iso, person_json
from ..callers import caller, writer
from ..responses import json_response
from ..services import services
from ..validation import PersonCreate, PersonPatch, checked_id, parse_body, read_body


def person_detail(person: Person) -> dict[str, Any]:
    """A person as the directory shows them to editors."""
    return person_json(person) | {"created_at": iso(person.created_at),
                                  "updated_at": iso(person.updated_at)}


async def list_people(request: Request) -> Response:
    """GET /api/people: everyone in the directory, by name (editors only)."""
    await caller(request, required=True)
    async with services(request).db.read() as session:
        found = await people.list_people(session)
    return json_response({"people": [person_detail(p) for p in found]})


async def get_person(request: Request) -> Response:
    """GET /api/people/{id}."""
    await caller(request, required=True)
    async with services(request).db.read() as session:
        person = await people.get_person(session, person_id=_person_id(request))
    return json_response(person_detail(person))


async def create_person(request: Request) -> Response:
    """POST /api/people → 201."""
    await writer(request, Act.PEOPLE)
    svc = services(request)
    data = parse_body(await read_body(request, max_bytes=svc.settings.max_body_bytes),
                      PersonCreate)
    async with svc.db.write() as session:
        person = await people.create_person(session, name=data.name,
                                            description=data.description, photo=data.photo,
                                            media_url=svc.media.url)
        body = person_detail(person)
    return json_response(body, status=201,
                         headers={"Location": f"/api/people/{body['id']}"})


async def update_person(request: Request) -> Response:
    """PATCH /api/people/{id}."""
    await writer(request, Act.PEOPLE)
    svc = services(request)
    data = parse_body(await read_body(request, max_bytes=svc.settings.max_body_bytes),
                      PersonPatch)
    fields = {name: getattr(data, name) for name in data.model_fields_set}
    if fields.get("name", "") is None or fields.get("description", "") is None:
        raise ApiError(422, "validation_error", "name and description cannot be null")
    async with svc.db.write() as session:
        person = await people.update_person(session, person_id=_person_id(request),
                                            fields=fields, media_url=svc.media.url)
        body = person_detail(person)
    return json_response(body)


def _person_id(request: Request) -> int:
    return checked_id(request.path_params["id"], "person")


def routes() -> list[BaseRoute]:
    """The directory's routes."""
    return [
        Route("/api/people", list_people, methods=["GET"]),
        Route("/api/people", create_person, methods=["POST"]),
        Route("/api/people/{id:int}", get_person, methods=["GET"]),
        Route("/api/people/{id:int}", update_person, methods=["PATCH"]),
    ]
