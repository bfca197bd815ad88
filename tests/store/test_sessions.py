"""Session tokens, CSRF tokens and signed values (no database, no app)."""

from __future__ import annotations

from bulletin.settings import Settings
from bulletin.store import sessions
from bulletin.web.deskforms import safe_next
from tests.conftest import TEST_SECRET

SETTINGS = Settings(secret_key=TEST_SECRET)
OTHER = Settings(secret_key="another-secret-key-that-is-long-enough-000")


def test_session_tokens_are_random_and_stored_as_hashes() -> None:
    """Each token is new; its stored form is a SHA-256 that does not contain it."""
    a, b = sessions.new_secret(), sessions.new_secret()
    assert a != b and len(a) >= 43
    assert len(sessions.token_hash(a)) == 64 and a not in sessions.token_hash(a)


def test_a_sessions_csrf_token_depends_on_the_session_and_the_secret() -> None:
    """The CSRF token is stable for a session and differs across sessions and secrets."""
    token = sessions.csrf_for(SETTINGS, "hash-a")
    assert token == sessions.csrf_for(SETTINGS, "hash-a")
    assert token != sessions.csrf_for(SETTINGS, "hash-b")
    assert token != sessions.csrf_for(OTHER, "hash-a")


def test_the_sign_in_token_is_bound_to_its_nonce_and_expires() -> None:
    """The sign-in form's token works with its nonce only, and only for two hours."""
    token = sessions.login_csrf(SETTINGS, "nonce", now=1_000_000)
    assert sessions.login_csrf_ok(SETTINGS, "nonce", token, now=1_000_060)
    assert not sessions.login_csrf_ok(SETTINGS, "other", token, now=1_000_060)
    assert not sessions.login_csrf_ok(OTHER, "nonce", token, now=1_000_060)
    assert not sessions.login_csrf_ok(SETTINGS, "nonce", token,
                                      now=1_000_000 + sessions.LOGIN_FORM_SECONDS + 1)
    assert not sessions.login_csrf_ok(SETTINGS, "nonce", token, now=999_000)
    for bad in (None, "", "x", "abc.def", token.replace(".", "")):
        assert not sessions.login_csrf_ok(SETTINGS, "nonce", bad, now=1_000_060)
    assert not sessions.login_csrf_ok(SETTINGS, None, token, now=1_000_060)


def test_signed_values_detect_tampering() -> None:
    """A signed value reads back; a changed value or signature reads as None."""
    signed = sessions.sign(SETTINGS, "hello")
    assert sessions.unsign(SETTINGS, signed) == "hello"
    assert sessions.unsign(SETTINGS, "jello" + signed[5:]) is None
    assert sessions.unsign(OTHER, signed) is None
    assert sessions.unsign(SETTINGS, None) is None
    assert sessions.unsign(SETTINGS, "no-signature") is None


def test_next_paths_stay_on_this_site() -> None:
    """Only local paths are followed after signing in."""
    assert safe_next("/editor/streams/x?y=1") == "/editor/streams/x?y=1"
    for bad in (None, "", "editor", "//evil.example", "/\\evil.example",
                "https://evil.example/editor", "/editor\r\nSet-Cookie: x", "/a\\b"):
        assert safe_next(bad) == "/editor", bad
