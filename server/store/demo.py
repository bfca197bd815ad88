"""The demo story that ``bulletin serve --demo`` creates: a live stream and an editor.

It reads like a real election night, since it is the first thing a newcomer sees: posts
spread over the last two and a half hours, a photo from the count centre (a file shipped
in ``demo_files/``, processed and stored like any upload), a post from the city clerk's
account as a card (built from an oEmbed answer shipped beside it, so nothing is fetched),
key events with headlines, tags, bylines from the people directory (a reporter at the
count centre and the data desk), and a correction made as an edit of the post it
corrects.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..core import cards, content, images
from ..core.providers import Providers
from . import accounts, auth
from .db import Database
from .eventlog import create_post, create_stream, edit_post, update_stream
from .media import MediaStore
from .media.files import put_variants
from .media.records import Attachment, create
from .models import ApiToken, Editor, Stream, utcnow
from .people import create_person

DEMO_SLUG = "city-council-election"
DEMO_EDITOR = "demo"
DEMO_TOKEN_NAME = "demo"
FILES = Path(__file__).with_name("demo_files")
PHOTO = FILES / "count-centre-coffee.jpg"
CLERK_POST = FILES / "clerk-post.oembed.json"
CLERK_URL = "https://x.com/CityClerkOffice/status/1995871234567890123"

# (minutes before now, text, key event); "{photo}" and "{clerk}" posts get the photo and
# the card.
POSTS = [
    (150, "Polls have closed across all 14 districts. Counting starts in the next few "
          "minutes; we will bring you every result as it is declared.", False),
    (138, "{photo}The first ballot boxes have reached the count centre at City Hall. Staff "
          "expect the first declaration before midnight, and the press table is settling "
          "in for a long night.", False),
    (121, "**Turnout**: the city clerk puts turnout at *47.2%*, up from 41.8% four years "
          "ago — the highest for a council election since 2003.", True),
    (96, "First result: **District 3** re-elects Maria Okafor (Greens) with 58% of the "
         "vote, on a turnout of 52%.\n\n"
         "| Candidate | Party | Votes |\n|---|---|---|\n| Maria Okafor | Greens | 6,112 |\n"
         "| Daniel Hughes | Civic | 4,430 |", False),
    (71, "Our reporter at the count centre says a recount has been requested in "
         "**District 9**, where the margin is 31 votes. The clerk's office confirms it:\n"
         + CLERK_URL, False),
    (44, "**District 12** changes hands: Priya Raman (Civic) takes it from the Greens by "
         "412 votes. Follow every district on "
         "[the results page](https://example.com/results).", False),
    (9, "**The Greens keep control of the council**, with 8 of the 14 seats declared so "
        "far going their way. The recount in District 9 will be held tomorrow morning.",
     True),
]
# The people the posts are by, and each post's headline, tags and bylines (by index in
# POSTS; a post without an entry is signed by the demo account).
PEOPLE = [("Sam Okoye", "Reporter at the count centre"), ("Lena Park", "Data editor")]
SAM, LENA = 0, 1
DETAILS: dict[int, tuple[str, list[str], list[int]]] = {
    0: ("", ["results"], [LENA]),
    1: ("", ["count-centre"], [SAM]),
    2: ("Turnout is the highest since 2003", ["turnout"], [LENA]),
    3: ("", ["results", "district-3"], [LENA]),
    4: ("Recount requested in District 9", ["district-9", "count-centre"], [SAM]),
    5: ("", ["results", "district-12"], [LENA]),
    6: ("", ["results"], [LENA, SAM]),
}
# The District 3 post, corrected 78 minutes ago: the clerk's turnout figure was 50.4%.
CORRECTED = 3
CORRECTION = (78, "First result: **District 3** re-elects Maria Okafor (Greens) with 58% "
              "of the vote, on a turnout of 50.4%.\n\n"
              "| Candidate | Party | Votes |\n|---|---|---|\n"
              "| Maria Okafor | Greens | 6,112 |\n| Daniel Hughes | Civic | 4,430 |\n\n"
              "*Correction: this post first gave the turnout as 52%.*")
PHOTO_WORDS = {"alt": "An espresso in a red cup and saucer on a wooden table, a spoon "
                      "beside it",
               "caption": "Fuel for the press table at the count centre",
               "credit": "Rachel Michetti (CC0)"}


async def seed(db: Database, *, password: str, media: MediaStore,
               max_pixels: int = 50_000_000) -> dict[str, str]:
    """Create (or refresh) the demo editor, a fresh API token and the demo stream."""
    async with db.write() as session:
        editor = (await session.exec(select(Editor).where(Editor.username == DEMO_EDITOR))).first()
        if editor is None:
            editor = await accounts.create_editor(
                session, username=DEMO_EDITOR, display_name="Demo Editor", password=password,
                role="admin")
        else:
            editor.password_hash = auth.hash_password(password)
            editor.disabled = False
        # Only the newest demo token works: each start prints a new one.
        old = await session.exec(select(ApiToken).where(
            ApiToken.editor_id == editor.id, ApiToken.name == DEMO_TOKEN_NAME,
            col(ApiToken.revoked_at).is_(None)))
        for token in old.all():
            token.revoked_at = utcnow()
        _token, plain = await accounts.create_token(session, editor=editor, name=DEMO_TOKEN_NAME)

    async with db.read() as session:
        exists = (await session.exec(select(Stream.id).where(Stream.slug == DEMO_SLUG))).first()
    if exists is None:
        await _story(db, editor, media, max_pixels)
    return {"slug": DEMO_SLUG, "username": DEMO_EDITOR, "password": password, "token": plain}


async def _story(db: Database, editor: Editor, media: MediaStore, max_pixels: int) -> None:
    now = utcnow()

    def ago(minutes: int) -> datetime:
        return now - timedelta(minutes=minutes)

    data = PHOTO.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    processed = images.process(data, max_pixels=max_pixels)
    stored = await put_variants(media, digest, processed.variants, [])
    book = _clerk_card(ago(POSTS[4][0]))
    async with db.write() as session:
        await create_stream(
            session, slug=DEMO_SLUG, title="City council election: live results",
            description="Results from all 14 districts as they are declared, with "
                        "reaction from the count centre.", status="draft", at=ago(160))
        await update_stream(session, slug=DEMO_SLUG, status="live", at=ago(152))
        assert editor.id is not None
        photo = await create(
            session, uploaded_by_id=editor.id, digest=digest,
            source_type=processed.source_type, width=processed.width,
            height=processed.height, variants=stored, stream_id=None, **PHOTO_WORDS)
        assert photo.id is not None
        people: list[int] = []
        for name, role in PEOPLE:
            person = await create_person(session, name=name, description=role, photo=None)
            assert person.id is not None
            people.append(person.id)
        posted = []
        for number, (minutes, text, pinned) in enumerate(POSTS):
            headline, tags, by = DETAILS.get(number, ("", [], []))
            attached = []
            if text.startswith("{photo}"):
                text = text.removeprefix("{photo}")
                attached = [Attachment(photo.id, **PHOTO_WORDS)]
            view, _events = await create_post(
                session, slug=DEMO_SLUG, author=editor, body=text, pinned=pinned,
                media=attached, media_url=media.url, cards=book, at=ago(minutes),
                headline=headline, tags=tags,
                contributors=[people[i] for i in by])
            posted.append(view.post.id)
            if len(posted) == CORRECTED + 1:
                await _correct(session, editor, posted[CORRECTED], ago(CORRECTION[0]))


async def _correct(session: AsyncSession, editor: Editor, post_id: int | None,
                   at: datetime) -> None:
    assert post_id is not None
    await edit_post(session, post_id=post_id, editor=editor, body=CORRECTION[1], at=at)


def _clerk_card(at: datetime) -> content.CardBook:
    """The clerk's post as its provider would have answered, dated the day it is posted."""
    providers = Providers()
    link = providers.find(CLERK_URL)
    assert link is not None
    answer = json.loads(CLERK_POST.read_text().replace("__DATE__", f"{at:%B %-d, %Y}"))
    card, _thumbnail = cards.from_oembed(link, answer, providers,
                                         source_origin="https://publish.twitter.com")
    return content.CardBook(providers=providers, cards={link.url: card})
