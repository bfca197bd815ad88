"""New passwords: long enough, not blank or invisible, not one of the common ones."""

from __future__ import annotations

import pytest

from bulletin.store import auth


@pytest.mark.parametrize("password", [
    "Password123", "QWERTYUIOP", "1234567890", " iloveyou123\t", "BULLETIN123"])
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    """A password on the list is refused in any case and with surrounding spaces."""
    with pytest.raises(auth.PasswordTooWeak, match="most common passwords"):
        auth.hash_password(password)


@pytest.mark.parametrize("password", [
    " " * 10, "\x00" * 10, "\t\n\r\x0b\x0c" * 2, "\u200b" * 10, "\u3000\x7f" * 5])
def test_blank_and_control_character_passwords_are_refused(password: str) -> None:
    """Only whitespace, NUL, control or zero-width characters: refused (and when also too
    short, for the length first)."""
    with pytest.raises(auth.PasswordTooWeak, match="only spaces or control characters"):
        auth.hash_password(password)
    with pytest.raises(auth.PasswordTooWeak, match="at least 10 characters"):
        auth.hash_password(password[:3])


def test_the_common_list_is_lowercase_long_enough_and_spares_other_passwords() -> None:
    """A few hundred entries, each already casefolded and at least the minimum length
    (shorter ones are refused by length anyway); passphrases, and passwords with a
    control character among others, still pass."""
    assert 200 <= len(auth.COMMON_PASSWORDS) <= 2000
    for password in auth.COMMON_PASSWORDS:
        assert password == password.casefold().strip()
        assert len(password) >= auth.MIN_PASSWORD_LENGTH
    for password in ("correct horse battery", "Tr0ub4dor&3 but longer", "tab\tinside it"):
        assert auth.verify_password(auth.hash_password(password), password)
