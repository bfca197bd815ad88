"""The people directory: whom a post is by (its bylines), apart from the desk's accounts.

A person has a name, a description readers see under it ("Reporter in Caracas") and an
optional photo (an uploaded photo, stored as posts store theirs). Posts name people by id
(``Post.contributors``); their JSON carries each person's current details.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..core.errors import ApiError, not_found
from .media.records import Attachment, attachments_json, file_url
from .models import Person, utcnow
from .payloads import person_json

MAX_CONTRIBUTORS = 10
# The directory is a newsroom's staff and stringers: one page holds it.
MAX_PEOPLE = 1000


async def list_people(session: AsyncSession) -> Sequence[Person]:
    """Everyone in the directory, by name."""
    return (await session.exec(
        select(Person).order_by(col(Person.name), col(Person.id)).limit(MAX_PEOPLE)
    )).all()


async def get_person(session: AsyncSession, *, person_id: int) -> Person:
    """One person; 404 ``person_not_found``."""
    person = await session.get(Person, person_id)
    if person is None:
        raise not_found("person", person_id)
    return person


async def create_person(
    session: AsyncSession, *, name: str, description: str, photo: int | None,
    media_url: Callable[[str], str] = file_url,
) -> Person:
    """Add someone to the directory."""
    now = utcnow()
    person = Person(name=name, description=description, created_at=now, updated_at=now,
                    photo=await _photo(session, photo, name, media_url))
    session.add(person)
    await session.flush()
    return person


async def update_person(
    session: AsyncSession, *, person_id: int, fields: dict[str, Any],
    media_url: Callable[[str], str] = file_url,
) -> Person:
    """Change any of ``name``, ``description``, ``photo`` (a media id, or None for none)."""
    person = await get_person(session, person_id=person_id)
    if "name" in fields:
        person.name = fields["name"]
    if "description" in fields:
        person.description = fields["description"]
    if "photo" in fields:
        person.photo = await _photo(session, fields["photo"], person.name, media_url)
    person.updated_at = utcnow()
    session.add(person)
    await session.flush()
    return person


async def people_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, Person]:
    """The people with these ids (unknown ids are left out)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (await session.exec(select(Person).where(col(Person.id).in_(wanted)))).all()
    return {p.id: p for p in rows if p.id is not None}


async def checked_contributors(session: AsyncSession, ids: list[int]) -> list[int]:
    """A post's contributors in order, each once; 422 ``person_not_found`` for an id that
    is not in the directory."""
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_CONTRIBUTORS:
        raise ApiError(422, "too_many_contributors",
                       f"a post has at most {MAX_CONTRIBUTORS} contributors",
                       {"max": MAX_CONTRIBUTORS})
    found = await people_by_id(session, unique)
    missing = [i for i in unique if i not in found]
    if missing:
        raise ApiError(422, "person_not_found",
                       f"no person {missing[0]} in the directory (see /api/people)",
                       {"person": missing[0]})
    return unique


def bylines(ids: Iterable[int], people: dict[int, Person]) -> list[dict[str, Any]]:
    """The contributors' public JSON, in the post's order."""
    return [person_json(people[i]) for i in ids if i in people]


async def drop_photos(session: AsyncSession, *, media_ids: set[int]) -> int:
    """Take photos that were taken down out of the directory; how many people lost one."""
    changed = 0
    for person in (await session.exec(select(Person).where(col(Person.photo).is_not(None)))):
        if person.photo is not None and person.photo.get("id") in media_ids:
            person.photo = None
            person.updated_at = utcnow()
            session.add(person)
            changed += 1
    return changed


async def _photo(session: AsyncSession, media_id: int | None, name: str,
                 media_url: Callable[[str], str]) -> dict[str, Any] | None:
    if media_id is None:
        return None
    shown = await attachments_json(session, [Attachment(media_id, name)], media_url)
    return shown[0]
