"""What a caller may do: the editor's role, narrowed by an API token's scope and streams.

A ``Grant`` is what one request carries: the editor's role, and for an API token its
scope and the streams it is bound to (a desk session carries the role alone: the cookie
is the editor in person). ``check`` answers for one ``Act``; every refusal is a 403 with a
stable code, so that clients can tell "this token is too narrow" (``insufficient_scope``,
``stream_not_allowed``) from "this person may not" (``forbidden_for_role``).

The rules, in one place:

- Roles: a ``contributor`` reads what editors read, writes posts and edits their own, and
  uploads photos; an ``editor`` also edits anyone's posts, pins, deletes, takes photos down
  and creates and changes streams; an ``admin`` also manages accounts and tokens.
- Scopes: a ``read`` token only reads; a ``write`` token does what its editor's role allows
  but admin work; an ``admin`` token does everything its editor's role allows. A token never
  exceeds its editor's role: the two are intersected on every request.
- Streams: a token bound to streams writes only to them. Creating a stream, and taking a
  photo down (which edits posts of every story), need a token bound to no stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import ApiError

ROLES = ("contributor", "editor", "admin")
SCOPES = ("read", "write", "admin")


class Act(StrEnum):
    """Something a caller asks to do."""

    READ = "read"                # drafts, revisions, a story's photos
    POST = "post"                # write a new post in a stream
    EDIT_OWN = "edit_own"        # change the text or photos of a post one wrote
    EDIT_OTHERS = "edit_others"  # ... of a post someone else wrote
    PIN = "pin"                  # make a post a key event, or stop
    DELETE = "delete"            # delete a post
    UPLOAD = "upload"            # upload a photo
    TAKE_DOWN = "take_down"      # take a photo down from every post
    CREATE_STREAM = "create_stream"
    CHANGE_STREAM = "change_stream"  # title, description, going live, ending
    PEOPLE = "people"            # add to or change the bylines' directory
    ADMIN = "admin"              # accounts and API tokens


# A contributor's POST submits a post for approval (web/routes/api.py: create_post); the
# acts on posts that wait (approve, send back, schedule) are the routes' to check.
_CONTRIBUTOR = frozenset({Act.READ, Act.POST, Act.EDIT_OWN, Act.UPLOAD})
_EDITOR = frozenset(Act) - {Act.ADMIN}
ROLE_ACTS: dict[str, frozenset[Act]] = {
    "contributor": _CONTRIBUTOR, "editor": _EDITOR, "admin": frozenset(Act)}
SCOPE_ACTS: dict[str, frozenset[Act]] = {
    "read": frozenset({Act.READ}), "write": _EDITOR, "admin": frozenset(Act)}
# Acts that reach beyond any one stream: a token bound to streams may not do them.
_EVERY_STREAM = frozenset({Act.CREATE_STREAM, Act.TAKE_DOWN, Act.PEOPLE, Act.ADMIN})


@dataclass(frozen=True, slots=True)
class Grant:
    """What a request may do: ``role``, narrowed by a token's ``scope`` (None: a desk
    session, no narrowing) and ``streams`` (None: every stream)."""

    role: str
    scope: str | None = None
    streams: frozenset[str] | None = None

    def allows(self, act: Act, *, stream: str | None = None) -> bool:
        """Whether ``check`` would let ``act`` (on ``stream``) through."""
        try:
            check(self, act, stream=stream)
        except ApiError:
            return False
        return True


def check(grant: Grant, act: Act, *, stream: str | None = None) -> None:
    """Raise a 403 ``ApiError`` unless ``grant`` allows ``act`` on ``stream``."""
    if act not in ROLE_ACTS.get(grant.role, frozenset()):
        raise ApiError(403, "forbidden_for_role",
                       f"{_article(grant.role)} {grant.role} may not {_DOING[act]}",
                       {"role": grant.role, "action": act.value})
    if grant.scope is not None and act not in SCOPE_ACTS.get(grant.scope, frozenset()):
        raise ApiError(403, "insufficient_scope",
                       f"this API token's scope is {grant.scope!r}, which does not allow "
                       f"it to {_DOING[act]}",
                       {"scope": grant.scope, "action": act.value},
                       headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})
    if grant.streams is None or act is Act.READ:
        return
    bound = ", ".join(sorted(grant.streams))
    if act in _EVERY_STREAM:
        raise ApiError(403, "stream_not_allowed",
                       f"this API token is bound to {bound}: only a token for every stream "
                       f"may {_DOING[act]}",
                       {"streams": sorted(grant.streams), "action": act.value})
    if stream not in grant.streams:
        raise ApiError(403, "stream_not_allowed",
                       f"this API token is bound to {bound}, not to {stream!r}",
                       {"streams": sorted(grant.streams), "action": act.value})


def check_writes(grant: Grant) -> None:
    """Raise a 403 unless ``grant`` may write at all (its token is not ``read``): the first
    check of a write whose exact ``Act`` is known only once its body is read."""
    if grant.scope == "read":
        raise ApiError(403, "insufficient_scope",
                       "this API token's scope is 'read', which does not allow writes",
                       {"scope": grant.scope, "action": "write"},
                       headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})


def role_allows_scope(role: str, scope: str) -> bool:
    """Whether a token of ``scope`` can be given to an editor of ``role``: an ``admin``
    token only to an admin, since a token never exceeds its editor's role."""
    return scope != "admin" or role == "admin"


_DOING = {
    Act.READ: "read drafts", Act.POST: "write posts", Act.EDIT_OWN: "edit posts",
    Act.EDIT_OTHERS: "edit other people's posts", Act.PIN: "pin or unpin posts",
    Act.DELETE: "delete posts", Act.UPLOAD: "upload photos",
    Act.TAKE_DOWN: "take photos down", Act.CREATE_STREAM: "create streams",
    Act.CHANGE_STREAM: "change streams", Act.PEOPLE: "change the people directory",
    Act.ADMIN: "manage accounts and API tokens",
}


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
