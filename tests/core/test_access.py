"""core/access.py: what each role and token scope allows, as plain calls. The table below
is the whole rule book; a change to it is a change to who may do what."""

from __future__ import annotations

import pytest

from bulletin.core.access import ROLES, SCOPES, Act, Grant, check, check_writes, role_allows_scope
from bulletin.core.errors import ApiError

A = Act
CONTRIBUTOR = {A.READ, A.POST, A.EDIT_OWN, A.UPLOAD}
EDITOR = set(Act) - {A.ADMIN}
EVERYTHING = set(Act)
# (role, scope or None for a desk session) -> what it may do, on any stream.
EXPECTED = {
    ("contributor", None): CONTRIBUTOR, ("contributor", "read"): {A.READ},
    ("contributor", "write"): CONTRIBUTOR,
    ("editor", None): EDITOR, ("editor", "read"): {A.READ}, ("editor", "write"): EDITOR,
    ("admin", None): EVERYTHING, ("admin", "read"): {A.READ}, ("admin", "write"): EDITOR,
    ("admin", "admin"): EVERYTHING,
}


def _code(grant: Grant, act: Act, stream: str | None = "vote") -> str | None:
    try:
        check(grant, act, stream=stream)
    except ApiError as exc:
        assert exc.status == 403
        return exc.code
    return None


@pytest.mark.parametrize(("role", "scope"), list(EXPECTED))
def test_each_role_and_scope_allows_exactly_its_acts(role: str, scope: str | None) -> None:
    """A grant allows the intersection of its role's and its scope's acts; a refusal by the
    role is forbidden_for_role, one by the scope insufficient_scope."""
    grant = Grant(role=role, scope=scope)
    allowed = {act for act in Act if _code(grant, act) is None}
    assert allowed == EXPECTED[(role, scope)]
    for act in set(Act) - allowed:
        by_role = act not in EXPECTED[(role, None)]
        assert _code(grant, act) == ("forbidden_for_role" if by_role else "insufficient_scope")


def test_a_stream_bound_grant_acts_only_on_its_streams() -> None:
    """Bound to "vote", a write token writes to vote alone, reads anywhere, and may do
    nothing that reaches beyond its streams (stream_not_allowed)."""
    grant = Grant(role="admin", scope="admin", streams=frozenset({"vote"}))
    for act in (A.POST, A.EDIT_OWN, A.EDIT_OTHERS, A.PIN, A.DELETE, A.CHANGE_STREAM):
        assert _code(grant, act, "vote") is None
        assert _code(grant, act, "match") == "stream_not_allowed"
        assert _code(grant, act, None) == "stream_not_allowed"
    for act in (A.CREATE_STREAM, A.TAKE_DOWN, A.ADMIN):
        assert _code(grant, act, "vote") == "stream_not_allowed"
    assert _code(grant, A.READ, "match") is None
    assert grant.allows(A.POST, stream="vote") and not grant.allows(A.POST, stream="match")


def test_the_role_is_checked_before_the_streams() -> None:
    """A contributor's token bound to vote, pinning there, is refused for the role."""
    grant = Grant(role="contributor", scope="write", streams=frozenset({"vote"}))
    assert _code(grant, A.PIN, "vote") == "forbidden_for_role"
    assert _code(grant, A.POST, "match") == "stream_not_allowed"


def test_refusals_say_what_and_why() -> None:
    """Each refusal's details name the act and the role, scope or streams."""
    with pytest.raises(ApiError) as role:
        check(Grant(role="contributor"), A.DELETE)
    assert role.value.details == {"role": "contributor", "action": "delete"}
    assert role.value.message == "a contributor may not delete posts"
    with pytest.raises(ApiError) as scope:
        check(Grant(role="editor", scope="read"), A.POST, stream="vote")
    assert scope.value.details == {"scope": "read", "action": "post"}
    assert scope.value.headers == {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}
    with pytest.raises(ApiError) as streams:
        check(Grant(role="editor", scope="write", streams=frozenset({"b", "a"})), A.POST,
              stream="c")
    assert streams.value.details == {"streams": ["a", "b"], "action": "post"}
    assert streams.value.message == "this API token is bound to a, b, not to 'c'"


def test_check_writes_refuses_only_read_tokens() -> None:
    """The first check of a write lets every grant through but a read token's."""
    for role in ROLES:
        check_writes(Grant(role=role))
        for scope in SCOPES:
            if scope == "read":
                with pytest.raises(ApiError, match="'read'"):
                    check_writes(Grant(role=role, scope=scope))
            else:
                check_writes(Grant(role=role, scope=scope))


def test_only_an_admin_may_hold_an_admin_token() -> None:
    """read and write tokens go to any role; admin tokens to admins alone."""
    assert {(r, s) for r in ROLES for s in SCOPES if role_allows_scope(r, s)} == {
        (r, s) for r in ROLES for s in ("read", "write")} | {("admin", "admin")}


def test_an_unknown_role_or_scope_allows_nothing() -> None:
    """A value outside the vocabulary (a row edited by hand) grants nothing."""
    assert _code(Grant(role="owner"), A.READ) == "forbidden_for_role"
    assert _code(Grant(role="admin", scope="root"), A.READ) == "insufficient_scope"
