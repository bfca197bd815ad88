"""The demo story that ``bulletin serve --demo`` creates: a live stream and an editor."""

from __future__ import annotations

from sqlmodel import col, select

from . import accounts, auth
from .db import Database
from .eventlog import create_post, create_stream, update_stream
from .models import ApiToken, Editor, Stream, utcnow

DEMO_SLUG = "city-council-election"
DEMO_EDITOR = "demo"
DEMO_TOKEN_NAME = "demo"

POSTS = [
    ("Polls have closed across all 14 districts. Counting starts in the next few minutes; "
     "we will bring you every result as it is declared.", False),
    ("**Turnout**: the city clerk puts turnout at *47.2%*, up from 41.8% four years ago — "
     "the highest for a council election since 2003.", True),
    ("First result: **District 3** re-elects Maria Okafor (Greens) with 58% of the vote.\n\n"
     "| Candidate | Party | Votes |\n|---|---|---|\n| Maria Okafor | Greens | 6,112 |\n"
     "| Daniel Hughes | Civic | 4,430 |", False),
    ("Correction: an earlier post gave District 3's turnout as 52%. The clerk's figure "
     "is 50.4%.", False),
    ("Our reporter at the count centre says a recount has been requested in District 9, "
     "where the margin is 31 votes. Follow the full results table on "
     "[the results page](https://example.com/results).", False),
]


async def seed(db: Database, *, password: str) -> dict[str, str]:
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

    async with db.write() as session:
        exists = (await session.exec(select(Stream.id).where(Stream.slug == DEMO_SLUG))).first()
        if exists is None:
            await create_stream(
                session, slug=DEMO_SLUG, title="City council election: live results",
                description="Results from all 14 districts as they are declared, with "
                            "reaction from the count centre.", status="draft")
            for body, pinned in POSTS:
                await create_post(session, slug=DEMO_SLUG, author=editor, body=body,
                                  pinned=pinned)
            await update_stream(session, slug=DEMO_SLUG, status="live")
    return {"slug": DEMO_SLUG, "username": DEMO_EDITOR, "password": password, "token": plain}
