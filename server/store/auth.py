"""Passwords (Argon2) and API tokens (random, stored as SHA-256).

A new password is refused (``PasswordTooWeak``) when it is shorter than
``MIN_PASSWORD_LENGTH``, when it has nothing but whitespace and control characters (it
would look empty, or be invisible, in every form), and when it is one of
``COMMON_PASSWORDS`` compared case-insensitively: the first guesses of every attack.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOKEN_PREFIX = "blt_"
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# Verified against when a username does not exist, so that a wrong username costs
# as much time as a wrong password and does not reveal which names exist.
_DUMMY_HASH = _hasher.hash("bulletin-timing-equaliser")


# The most common passwords of at least MIN_PASSWORD_LENGTH characters in published
# leaks (shorter ones are refused anyway), plus this product's and trade's own words.
# Lowercase: a password is compared after casefold().
COMMON_PASSWORDS = frozenset({
    "1234567890", "0987654321", "0123456789", "9876543210", "1111111111", "0000000000",
    "2222222222", "3333333333", "4444444444", "5555555555", "6666666666", "7777777777",
    "8888888888", "9999999999", "1234512345", "1122334455", "1212121212", "1231231231",
    "1029384756", "1234567891", "1234567899", "12345678910", "11111111111", "123123123123",
    "123456789a", "123456789q", "1234554321", "1357924680", "1111122222", "0101010101",
    "1010101010", "123456789123", "12345678900", "1q2w3e4r5t", "1q2w3e4r5t6y", "1q2w3e4r5t6y7u",
    "1qaz2wsx3edc", "1qaz2wsx3edc4rfv", "q1w2e3r4t5", "q1w2e3r4t5y6", "zaq12wsxcde3",
    "1qazxsw23edc", "qwertyuiop", "qwertyuiop1", "qwertyuiop123", "qwertyuiop[]", "poiuytrewq",
    "azertyuiop", "qwertzuiop", "qwerty1234", "qwerty12345", "qwerty123456", "qwertyqwerty",
    "qwerty123!", "asdfghjkl1", "asdfghjkl123", "asdfasdfasdf", "zxcvbnm123", "zxcvbnm1234",
    "qazwsxedc123", "qazwsxedcrfv", "qweasdzxc123", "123qweasdzxc", "1234qwerasdf", "123qwe123qwe",
    "qweqweqweqwe", "abcdefghij", "abcdefg123", "abcd123456", "abc1234567", "abcdef1234",
    "a1b2c3d4e5", "aaaaaaaaaa", "abc123abc123", "abcd1234abcd", "3rjs1la7qe", "password12",
    "password123", "password1234", "password12345", "password123456", "password1!", "password123!",
    "password01", "password99", "password00", "passw0rd123", "p@ssw0rd123", "p@ssword123",
    "pa55word123", "passwordpassword", "password2020", "password2021", "password2022",
    "password2023", "password2024", "password2025", "password2026", "mypassword", "mypassword1",
    "mypassword123", "newpassword", "newpassword1", "newpassword123", "secretpassword",
    "mysecretpassword", "changeme123", "changemenow", "letmein123", "letmein1234", "letmeinnow",
    "welcome123", "welcome1234", "welcome12345", "welcome2020", "welcome2021", "welcome2022",
    "welcome2023", "welcome2024", "welcome2025", "administrator", "administrator1", "admin12345",
    "admin123456", "adminadmin", "adminadmin123", "admin@123456", "superadmin", "superuser1",
    "root123456", "rootpassword", "test123456", "testtest123", "testing123", "test1234567",
    "default123", "secret1234", "secret12345", "iloveyou12", "iloveyou123", "iloveyou1234",
    "iloveyou2020", "iloveyoubaby", "iloveyoutoo", "iloveyou!!", "loveyou123", "iloveme123",
    "lovelove123", "sunshine12", "sunshine123", "princess12", "princess123", "princess1234",
    "football12", "football123", "football1234", "baseball12", "baseball123", "basketball",
    "basketball1", "superman12", "superman123", "batman12345", "spiderman1", "spiderman123",
    "starwars12", "starwars123", "pokemon123", "pokemon1234", "michael123", "michael1234",
    "charlie123", "liverpool1", "liverpool123", "chelsea123", "arsenal123", "manchester",
    "manchester1", "manchesterunited", "realmadrid", "realmadrid1", "barcelona1", "barcelona10",
    "dragon1234", "dragon12345", "monkey1234", "monkey12345", "master1234", "master12345",
    "shadow1234", "shadow12345", "computer12", "computer123", "internet123", "whatever123",
    "freedom123", "chocolate1", "chocolate123", "butterfly1", "butterfly123", "elizabeth1",
    "alexander1", "christopher", "christopher1", "christina1", "jessica123", "jennifer12",
    "babygirl12", "babygirl123", "myspace123", "facebook123", "facebook12", "samsung123",
    "minecraft1", "minecraft12", "minecraft123", "fortnite123", "naruto1234", "jordan2323",
    "trustno1234", "trustnoone", "blink182182", "hellokitty", "hellohello", "hello12345",
    "hello123456", "helloworld", "helloworld1", "helloworld123", "goodmorning", "goodluck123",
    "thankyou123", "sweetheart", "sweetheart1", "friendship", "friends123", "family1234",
    "qwerty2020", "summer2020", "summer2021", "summer2022", "summer2023", "summer2024",
    "summer2025", "winter2020", "winter2021", "winter2022", "winter2023", "winter2024",
    "winter2025", "spring2024", "autumn2024", "january2024", "december2024", "asdfghjkl;",
    "passwort123", "motdepasse", "azerty1234", "azerty123456", "contrasena", "contrasena1",
    "senha12345", "wachtwoord", "1password1", "password!!", "!qaz2wsx3edc", "zaq1zaq1zaq1",
    "zaq1@wsx3edc", "qwe123qwe123", "qwer1234qwer", "asdf1234asdf", "q1w2e3r4t5y6u7", "1a2b3c4d5e",
    "123abc123abc", "abcabcabcabc", "abc12345678", "87654321aa", "11223344556", "0987654321q",
    "999999999999", "123456789012", "1234567890a", "1234567890q", "qwerty7890", "qwertyui12",
    "asdfzxcv12", "zxcvbnmasdf", "zxcvbnm,./", "147258369a", "159753159753", "741852963a",
    "369258147a", "7418529630", "9638527410", "1478963250", "qweasdzxc1", "qazwsx1234",
    "qazwsx12345", "football10", "soccer1234", "soccer12345", "hockey1234", "tennis1234",
    "golfer1234", "baseball10", "yankees123", "cowboys123", "steelers12", "patriots12",
    "lakers1234", "goldfish12", "pineapple1", "strawberry", "blueberry1", "watermelon",
    "sunflower1", "rainbow123", "starlight1", "moonlight1", "blackdragon", "silverfox1",
    "purple1234", "orange1234", "yellow1234", "bluebird12", "greenday12", "metallica1",
    "nirvana123", "pinkfloyd1", "beatles123", "rockandroll", "rocknroll1", "bulletin123",
    "bulletin1234", "bulletin12345", "newsroom123", "newsroom1234", "breakingnews", "liveblog123",
    "editor1234", "editor12345", "journalist", "reporter123", "livestream", "newsdesk123",
})


class PasswordTooWeak(ValueError):
    """A new password is too short, blank, or one of the most common passwords."""


def check_password_strength(password: str) -> None:
    """Raise ``PasswordTooWeak``, with a message for people, unless ``password`` will do."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordTooWeak(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if all(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in password):
        raise PasswordTooWeak("password must not be only spaces or control characters")
    if password.strip().casefold() in COMMON_PASSWORDS:
        raise PasswordTooWeak("password is one of the most common passwords, which attackers "
                              "try first; choose another")


def hash_password(password: str) -> str:
    """Hash a new password with Argon2id, once it passes ``check_password_strength``."""
    check_password_strength(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; spends the same time when there is no hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash uses outdated parameters."""
    return _hasher.check_needs_rehash(password_hash)


def new_token() -> str:
    """A new API token: a recognisable prefix and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of a token. Tokens carry 256 bits, so a fast hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_display_prefix(token: str) -> str:
    """The first characters of a token, safe to show in lists."""
    return token[: len(TOKEN_PREFIX) + 6]


def constant_time_equals(a: str, b: str) -> bool:
    """Compare two secrets without leaking where they differ."""
    return hmac.compare_digest(a.encode(), b.encode())
