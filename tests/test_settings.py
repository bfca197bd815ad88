"""Settings come from BULLETIN_* variables, with defaults that run on a bare laptop."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulletin.settings import Settings, SettingsError, parse_s3_url


def test_defaults_need_nothing_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no variables: a SQLite file in the working directory and the memory broker."""
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'bulletin.db'}"
    assert settings.broker_url == "memory://"
    assert settings.production is False


def test_variables_are_parsed_by_type() -> None:
    """Ints, floats, booleans and comma lists are parsed from strings."""
    settings = Settings.from_env({
        "BULLETIN_MAX_BODY_BYTES": "1024", "BULLETIN_WRITE_RATE": "2.5",
        "BULLETIN_PRODUCTION": "yes", "BULLETIN_SECRET_KEY": "s" * 40,
        "BULLETIN_PUBLIC_URL": "https://live.example",
        "BULLETIN_ALLOWED_ORIGINS": "https://a.example, https://b.example/",
    })
    assert settings.max_body_bytes == 1024
    assert settings.write_rate == 2.5
    assert settings.production is True
    assert settings.allowed_origins == ("https://a.example", "https://b.example")


def test_redis_broker_urls_are_accepted_and_shared() -> None:
    """redis:// and rediss:// brokers are accepted and reach other processes; memory://
    does not."""
    for url in ("redis://127.0.0.1:6379/0?prefix=site-a:", "rediss://cache.internal/1"):
        assert Settings.from_env({"BULLETIN_BROKER_URL": url}).shared_broker
    assert not Settings.from_env({}).shared_broker


def test_production_takes_its_links_from_settings_not_the_host_header() -> None:
    """In production a public URL or a host allow-list is enough; one of them is needed."""
    key = {"BULLETIN_PRODUCTION": "1", "BULLETIN_SECRET_KEY": "s" * 40}
    assert Settings.from_env({**key, "BULLETIN_PUBLIC_URL": "https://live.example"}).production
    hosts = Settings.from_env({**key, "BULLETIN_ALLOWED_HOSTS": "live.example, *.news.example"})
    assert hosts.allowed_hosts == ("live.example", "*.news.example")


def test_s3_media_storage_is_configured_by_url_and_its_own_variables() -> None:
    """s3://bucket/prefix is accepted with an endpoint, region, keys and public URL; the
    secret key stays out of the settings' repr."""
    settings = Settings.from_env({
        "BULLETIN_MEDIA_URL": "s3://bulletin-photos/live/2026",
        "BULLETIN_MEDIA_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "BULLETIN_MEDIA_S3_REGION": "eu-west-1",
        "BULLETIN_MEDIA_S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "BULLETIN_MEDIA_S3_SECRET_ACCESS_KEY": "very-secret-value",
        "BULLETIN_MEDIA_PUBLIC_URL": "https://cdn.example.com/photos/",
    })
    assert settings.media_location == "s3://bulletin-photos/live/2026"
    assert (settings.media_s3_endpoint_url, settings.media_s3_region) == (
        "http://127.0.0.1:9000", "eu-west-1")
    assert settings.media_s3_access_key_id == "AKIAEXAMPLE"
    assert settings.media_public_url == "https://cdn.example.com/photos/"
    assert "very-secret-value" not in repr(settings)
    assert parse_s3_url("s3://bulletin-photos/live/2026/") == ("bulletin-photos", "live/2026")
    assert parse_s3_url("s3://bulletin-photos") == ("bulletin-photos", "")


def test_s3_media_defaults_leave_credentials_to_the_library() -> None:
    """Without its own variables, s3:// storage talks to AWS in us-east-1 with the keys
    the client library finds (AWS_* variables, the machine's role)."""
    settings = Settings.from_env({"BULLETIN_MEDIA_URL": "s3://bulletin-photos"})
    assert settings.media_s3_endpoint_url == settings.media_public_url == ""
    assert settings.media_s3_region == "us-east-1"
    assert settings.media_s3_access_key_id == settings.media_s3_secret_access_key == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [({"BULLETIN_MAX_BODY_BYTES": "lots"}, "BULLETIN_MAX_BODY_BYTES: expected int"),
     ({"BULLETIN_PRODUCTION": "maybe"}, "BULLETIN_PRODUCTION: expected bool"),
     ({"BULLETIN_DATABASE_URL": "mysql://x"}, "BULLETIN_DATABASE_URL must start"),
     ({"BULLETIN_BROKER_URL": "kafka://x"}, "unsupported broker"),
     ({"BULLETIN_PRODUCTION": "1"}, "BULLETIN_SECRET_KEY is required"),
     ({"BULLETIN_PRODUCTION": "1", "BULLETIN_SECRET_KEY": "s" * 40},
      "BULLETIN_PUBLIC_URL \\(or BULLETIN_ALLOWED_HOSTS\\) is required"),
     ({"BULLETIN_FRAMES_PER_SECOND": "0"}, "BULLETIN_FRAMES_PER_SECOND must be positive"),
     ({"BULLETIN_SECRET_KEY": "short"}, "at least 32"),
     ({"BULLETIN_PAGE_SIZE": "0"}, "must be positive"),
     ({"BULLETIN_MEDIA_URL": "gs://photos"}, "unsupported media storage"),
     ({"BULLETIN_MEDIA_URL": "s3://"}, "BULLETIN_MEDIA_URL: .* is not a bucket name"),
     ({"BULLETIN_MEDIA_URL": "s3://Photos_2026/x"}, "is not a bucket name"),
     ({"BULLETIN_MEDIA_URL": "s3://key:secret@photos"}, "takes no keys, port"),
     ({"BULLETIN_MEDIA_URL": "s3://photos?region=eu"}, "takes no keys, port, query"),
     ({"BULLETIN_MEDIA_URL": "s3://photos/a//b"}, "the prefix 'a//b'"),
     ({"BULLETIN_MEDIA_URL": "s3://photos/../other"}, "the prefix '../other'"),
     ({"BULLETIN_MEDIA_URL": "s3://photos/my photos"}, "the prefix"),
     ({"BULLETIN_MEDIA_S3_ENDPOINT_URL": "localhost:9000"},
      "BULLETIN_MEDIA_S3_ENDPOINT_URL must be an http:// or https:// address"),
     ({"BULLETIN_MEDIA_PUBLIC_URL": "cdn.example.com/photos"},
      "BULLETIN_MEDIA_PUBLIC_URL must be an http:// or https:// address"),
     ({"BULLETIN_MEDIA_S3_REGION": "EU West"}, "BULLETIN_MEDIA_S3_REGION must be a region"),
     ({"BULLETIN_MEDIA_S3_ACCESS_KEY_ID": "AKIAEXAMPLE"}, "go together"),
     ({"BULLETIN_MEDIA_S3_SECRET_ACCESS_KEY": "secret"}, "go together"),
     ({"BULLETIN_TOKEN_DEFAULT_SCOPE": "root"},
      "BULLETIN_TOKEN_DEFAULT_SCOPE must be one of read, write, admin, got 'root'"),
     ({"BULLETIN_TOKEN_DEFAULT_EXPIRES_IN": "2w"},
      "BULLETIN_TOKEN_DEFAULT_EXPIRES_IN: invalid duration '2w'")],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    """A malformed variable raises SettingsError naming it."""
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_development_secret_is_generated_once_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a secret, one is generated into a private file with a warning, then reused."""
    path = tmp_path / "secret"
    first = Settings.from_env({}, secret_key_file=str(path)).with_secret()
    assert "BULLETIN_SECRET_KEY is not set" in caplog.text
    assert path.stat().st_mode & 0o077 == 0
    second = Settings.from_env({}, secret_key_file=str(path)).with_secret()
    assert first.secret_key == second.secret_key
    assert len(first.secret_key) >= 32


def test_reading_settings_does_not_touch_the_environment_at_import() -> None:
    """Importing the app modules reads no variables and opens nothing (factory does)."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "class Spy(dict):\n"
        "    def get(self, k, d=None):\n"
        "        if k.startswith('BULLETIN_'): raise SystemExit('read ' + k)\n"
        "        return super().get(k, d)\n"
        "    def __getitem__(self, k):\n"
        "        if k.startswith('BULLETIN_'): raise SystemExit('read ' + k)\n"
        "        return super().__getitem__(k)\n"
        "os.environ = Spy(os.environ)\n"
        "import importlib, pkgutil, bulletin\n"
        "for m in pkgutil.walk_packages(bulletin.__path__, 'bulletin.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.stdout.strip() == "ok", result.stderr


def test_readme_documents_every_setting() -> None:
    """The README's configuration table names exactly the settings that exist."""
    import re
    from dataclasses import fields

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`BULLETIN_([A-Z0-9_]+)`", table))
    internal = {"SECRET_KEY_FILE"}
    assert documented == {f.name.upper() for f in fields(Settings)} - internal
