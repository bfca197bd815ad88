"""The desk's people directory at /editor/people: the names posts are signed with.

Every editor may add people and change them; nobody is deleted, so that old posts keep
their bylines. A person's photo is uploaded by ``client_js/desk_people.js`` through
``POST /api/media`` (it needs JavaScript, as the compose form's photos do); the form
carries its media id. Writes go through ``store/people.py``, as the API's do.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ...core.access import Act
from ...core.errors import ApiError
from ...store import people
from ...store.models import Person
from ..callers import limit_writes, permit
from ..deskforms import Desk, desk_endpoint, friendly, page, redirect, render
from ..services import services
from ..validation import PersonCreate, PersonPatch, ascii_int, validated


def _fields(form: dict[str, str]) -> dict[str, Any]:
    photo = form.get("photo", "").strip()
    number = ascii_int(photo, max_digits=9)
    return {"name": form.get("name", ""), "description": form.get("description", ""),
            "photo": None if not photo or form.get("remove_photo") == "1"
            else (number if number is not None else photo)}


async def _list(request: Request, desk: Desk, *, values: dict[str, str], error: str | None,
                status: int = 200) -> Response:
    async with services(request).db.read() as session:
        found = await people.list_people(session)
    return render(request, desk.signed_in, "editor/people.html", {
        "section": "people", "people": found, "values": values, "error": error,
    }, status=status)


@desk_endpoint()
async def people_page(request: Request, desk: Desk) -> Response:
    """GET /editor/people: everyone posts can be signed with, and the form to add one."""
    return await _list(request, desk, values={}, error=None)


@desk_endpoint()
async def add_person(request: Request, desk: Desk) -> Response:
    """POST /editor/people: add someone, then back to the list."""
    try:
        permit(request, desk.editor, Act.PEOPLE)
        limit_writes(request, desk.editor)
        data, _raw = validated(_fields(desk.form), PersonCreate)
        svc = services(request)
        async with svc.db.write() as session:
            person = await people.create_person(session, name=data.name,
                                                description=data.description,
                                                photo=data.photo, media_url=svc.media.url)
            name = person.name
    except ApiError as exc:
        return await _list(request, desk, values=desk.form, error=friendly(exc),
                           status=exc.status)
    return redirect(request, "/editor/people", f"{name} can now sign posts.")


async def _person(request: Request) -> Person:
    async with services(request).db.read() as session:
        return await people.get_person(session, person_id=request.path_params["id"])


@desk_endpoint()
async def person_page(request: Request, desk: Desk) -> Response:
    """GET /editor/people/{id}: change someone's name, description or photo."""
    person = await _person(request)
    return render(request, desk.signed_in, "editor/person.html", {
        "section": "people", "person": person, "values": {
            "name": person.name, "description": person.description,
            "photo": "" if person.photo is None else str(person.photo.get("id", ""))},
        "error": None})


@desk_endpoint()
async def save_person(request: Request, desk: Desk) -> Response:
    """POST /editor/people/{id}: save the changes; posts show them from their next read."""
    person = await _person(request)
    try:
        permit(request, desk.editor, Act.PEOPLE)
        limit_writes(request, desk.editor)
        data, _raw = validated(_fields(desk.form), PersonPatch)
        svc = services(request)
        fields: dict[str, Any] = {"name": data.name, "description": data.description}
        if person.photo is None or data.photo != person.photo.get("id"):
            fields["photo"] = data.photo
        async with svc.db.write() as session:
            await people.update_person(session, person_id=request.path_params["id"],
                                       fields=fields, media_url=svc.media.url)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return render(request, desk.signed_in, "editor/person.html", {
            "section": "people", "person": person, "values": desk.form,
            "error": friendly(exc)}, status=exc.status)
    return redirect(request, "/editor/people", f"{data.name or person.name} saved.")


def routes() -> list[BaseRoute]:
    """The directory's desk pages (before the desk's catch-all)."""
    return [
        page("/editor/people", people_page, "GET"),
        page("/editor/people", add_person, "POST"),
        page("/editor/people/{id:int}", person_page, "GET"),
        page("/editor/people/{id:int}", save_person, "POST"),
    ]
