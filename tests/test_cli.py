"""The `bulletin` command, run as a subprocess the way people and scripts run it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

BULLETIN = [sys.executable, "-m", "bulletin.cli"]


def run(args: list[str], env: dict[str, str], stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    """Run the command to completion."""
    return subprocess.run([*BULLETIN, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=60, check=False)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment pointing the command at a private SQLite file."""
    return {**os.environ, "BULLETIN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
            "BULLETIN_SECRET_KEY": "cli-test-secret-0123456789-abcdefghijklmnop"}


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start `bulletin serve` on a free port; returns the process and its base URL."""
    port = free_port()
    server = subprocess.Popen([*BULLETIN, "serve", "--port", str(port), *args], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return server, f"http://127.0.0.1:{port}"


def test_db_upgrade_creates_the_schema(env: dict[str, str]) -> None:
    """`bulletin db upgrade` migrates a new database and says so."""
    result = run(["db", "upgrade"], env)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_editor_and_token_work_against_the_api(env: dict[str, str], tmp_path: Path) -> None:
    """An editor and token made on the command line can post through the API."""
    made = run(["editor", "create", "ada", "--admin", "--display-name", "Ada L",
                "--password-stdin"], env, stdin="a long enough password\n")
    assert made.returncode == 0, made.stderr
    assert "admin 'ada'" in made.stdout
    token_run = run(["token", "create", "ada", "--name", "cms"], env)
    assert token_run.returncode == 0, token_run.stderr
    token = token_run.stdout.strip().splitlines()[-1]
    assert token.startswith("blt_") and "shown only once" in token_run.stderr

    server, base = start_server(env)
    try:
        _wait_ready(base, server)
        auth = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{base}/api/streams", headers=auth,
                             json={"slug": "vote", "title": "Vote", "status": "live"})
        assert created.status_code == 201
        post = httpx.post(f"{base}/api/streams/vote/posts", headers=auth,
                          json={"body": "First result"})
        assert post.status_code == 201
        assert httpx.get(f"{base}/api/streams/vote/posts").json()["posts"][0]["body"] == (
            "First result")
    finally:
        _stop(server)


def test_serve_demo_prints_urls_and_credentials_and_stops_on_sigterm(
    env: dict[str, str],
) -> None:
    """`serve --demo` seeds a live stream, prints where to find it, and exits on SIGTERM."""
    server, base = start_server(env, "--demo")
    try:
        _wait_ready(base, server)
        streams = httpx.get(f"{base}/api/streams").json()["streams"]
        assert [s["status"] for s in streams] == ["live"]
        slug = streams[0]["slug"]
        posts = httpx.get(f"{base}/api/streams/{slug}/posts").json()["posts"]
        assert len(posts) >= 4
        assert httpx.get(f"{base}/api/streams/{slug}").json()["pinned"]
        reader = httpx.get(f"{base}/live/{slug}")
        assert reader.status_code == 200 and 'role="feed"' in reader.text
        _check_demo_story(base, posts, reader.text)
    finally:
        output = _stop(server)
    # uvicorn re-raises SIGTERM once it has shut down gracefully, as supervisors expect.
    assert server.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in output
    assert f"{base}/api/streams/{slug}" in output
    assert f"Reader page:     {base}/live/{slug}" in output
    assert f"{base}/editor" in output
    token = next(line.split()[-1] for line in output.splitlines() if "API token:" in line)
    assert token.startswith("blt_")
    assert "password" in output


def _check_demo_story(base: str, posts: list[dict[str, Any]], page: str) -> None:
    """The demo reads like a real story: a photo (served, stripped), a card, a correction
    made as an edit, times spread over hours, headlines, tags and bylines."""
    with_photo = [p for p in posts if p["media"]]
    assert len(with_photo) == 1
    shown = with_photo[0]["media"][0]
    assert shown["alt"] and shown["credit"]
    for variant in shown["variants"]:
        served = httpx.get(base + variant["url"])
        assert served.status_code == 200
        assert served.headers["content-type"] == variant["content_type"]
    assert f'src="{shown["variants"][0]["url"]}"' in page or shown["variants"][0]["url"] in page
    cards = [e for p in posts for e in p["embeds"] if e.get("type") == "card"]
    assert [(c["provider"], c["state"]) for c in cards] == [("x", "ready")]
    assert cards[0]["author_name"] == "City Clerk's Office" and cards[0]["text"]
    assert "City Clerk&#39;s Office" in page or "City Clerk's Office" in page
    corrected = [p for p in posts if p["edited_at"]]
    assert len(corrected) == 1 and "Correction" in corrected[0]["body"]
    times = sorted(datetime.fromisoformat(p["created_at"]) for p in posts)
    assert times[-1] - times[0] > timedelta(hours=2)
    # Key events with headlines, tags, and bylines from the directory.
    assert any(p["headline"] and p["pinned"] for p in posts)
    assert all(p["tags"] for p in posts)
    assert {c["name"] for p in posts for c in p["contributors"]} == {"Sam Okoye", "Lena Park"}
    assert 'class="post-headline"' in page and 'href="/live/city-council-election?tag=' in page


def test_demo_twice_reuses_the_story_and_revokes_the_old_token(env: dict[str, str]) -> None:
    """Starting the demo again keeps one demo stream; only the newest token works."""
    tokens = []
    for _ in range(2):
        server, base = start_server(env, "--demo")
        try:
            _wait_ready(base, server)
            assert len(httpx.get(f"{base}/api/streams").json()["streams"]) == 1
            if tokens:
                old = httpx.get(f"{base}/api/me",
                                headers={"Authorization": f"Bearer {tokens[0]}"})
                assert old.status_code == 401
        finally:
            output = _stop(server)
        tokens.append(next(line.split()[-1] for line in output.splitlines()
                           if "API token:" in line))
    assert tokens[0] != tokens[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["serve", "--port", "99999"], "invalid port"),
     (["serve", "--bogus"], "unrecognized arguments"),
     (["serve", "--workers", "0"], "invalid worker count"),
     (["editor"], "required"),
     (["editor", "disable"], "required: name"),
     (["token", "revoke"], "required: id"),
     (["token", "revoke", "abc"], "invalid token id"),
     (["token", "revoke", "²"], "invalid token id"),
     (["token", "revoke", "٣"], "invalid token id"),
     (["token", "revoke", "0"], "invalid token id"),
     (["token", "revoke", "99999999999"], "invalid token id"),
     (["token", "create", "ada", "--expires-in", "90"], "invalid duration '90'"),
     (["token", "create", "ada", "--expires-in", "2w"], "invalid duration '2w'"),
     (["token", "create", "ada", "--expires-in", "0d"], "invalid duration '0d'"),
     (["token", "create", "ada", "--expires-in", "4000d"], "at most 3650d"),
     (["token", "create", "ada", "--scope", "root"], "invalid choice: 'root'"),
     (["editor", "create", "ada", "--role", "boss"], "invalid choice: 'boss'"),
     (["frobnicate"], "invalid choice")],
)
def test_bad_arguments_give_one_line_and_exit_2(
    env: dict[str, str], args: list[str], message: str
) -> None:
    """Bad arguments print one error line and exit with status 2."""
    result = run(args, env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_duplicate_editor_and_unknown_editor_are_errors(env: dict[str, str]) -> None:
    """Creating a taken name or a token for nobody fails with one line and status 1."""
    assert run(["editor", "create", "ada", "--password-stdin"], env,
               stdin="a long enough password\n").returncode == 0
    again = run(["editor", "create", "ada", "--password-stdin"], env,
                stdin="a long enough password\n")
    assert again.returncode == 1
    assert again.stderr.strip() == "bulletin: error: an editor named 'ada' already exists"
    nobody = run(["token", "create", "nobody"], env)
    assert nobody.returncode == 1
    assert nobody.stderr.strip() == "bulletin: error: no editor 'nobody'"
    assert nobody.stdout == ""


def test_weak_password_and_missing_password_are_errors(env: dict[str, str]) -> None:
    """A short password, or no terminal and no --password-stdin, are clear errors."""
    weak = run(["editor", "create", "bob", "--password-stdin"], env, stdin="short\n")
    assert weak.returncode == 1 and "at least 10 characters" in weak.stderr
    no_tty = run(["editor", "create", "bob"], env, stdin="")
    assert no_tty.returncode == 1 and "--password-stdin" in no_tty.stderr


def test_common_and_blank_passwords_are_refused(env: dict[str, str]) -> None:
    """A password on the common list (in any case) or of spaces only is one line, status 1."""
    common = run(["editor", "create", "bob", "--password-stdin"], env, stdin="PassWord123\n")
    assert common.returncode == 1
    assert common.stderr.strip() == ("bulletin: error: password is one of the most common "
                                     "passwords, which attackers try first; choose another")
    blank = run(["editor", "create", "bob", "--password-stdin"], env, stdin=" " * 12 + "\n")
    assert blank.returncode == 1 and "only spaces or control characters" in blank.stderr
    assert run(["token", "create", "bob"], env).stderr.strip() == (
        "bulletin: error: no editor 'bob'")


def _make(env: dict[str, str], name: str, *flags: str) -> None:
    made = run(["editor", "create", name, *flags, "--password-stdin"], env,
               stdin="a long enough password\n")
    assert made.returncode == 0, made.stderr


def _token(env: dict[str, str], editor: str, name: str) -> str:
    made = run(["token", "create", editor, "--name", name], env)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def test_roles_and_scoped_expiring_tokens(env: dict[str, str]) -> None:
    """`editor create --role` makes each role (`--admin` is `--role admin`, and a contrary
    pair is refused); `token create --scope --stream --expires-in` makes a token with them,
    says so, and `token list` shows them; a scope above the editor's role, an unknown
    stream and an expiry beyond the setting's spelling are one-line errors."""
    for name, flags, role in [("cora", ["--role", "contributor"], "contributor"),
                              ("ed", ["--role", "editor"], "editor"), ("ed2", [], "editor"),
                              ("ada", ["--admin"], "admin"), ("al", ["--role", "admin"], "admin")]:
        made = run(["editor", "create", name, *flags, "--password-stdin"], env,
                   stdin="a long enough password\n")
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith(f"created {role} {name!r}")
    both = run(["editor", "create", "x", "--admin", "--role", "editor", "--password-stdin"],
               env, stdin="a long enough password\n")
    assert both.returncode == 1
    assert both.stderr.strip() == ("bulletin: error: --admin and --role editor contradict each "
                                   "other: give one")
    assert "x" not in run(["token", "list"], env).stdout
    over = run(["token", "create", "ed", "--scope", "admin"], env)
    assert over.returncode == 1 and over.stdout == ""
    assert "ed's role is editor" in over.stderr and "'admin' scope" in over.stderr
    unknown = run(["token", "create", "ed", "--stream", "nowhere"], env)
    assert unknown.returncode == 1 and unknown.stderr.strip() == (
        "bulletin: error: no stream 'nowhere'")
    assert run(["token", "list"], env).stdout.strip() == "no API tokens"

    server, base = start_server(env)
    try:
        _wait_ready(base, server)
        admin = {"Authorization": f"Bearer {_token(env, 'ada', 'setup')}"}
        for slug in ("vote", "match"):
            assert httpx.post(f"{base}/api/streams", headers=admin, json={
                "slug": slug, "title": slug, "status": "live"}).status_code == 201
        made = run(["token", "create", "ed", "--name", "importer", "--scope", "write",
                    "--stream", "vote", "--stream", "match", "--expires-in", "90d"], env)
        assert made.returncode == 0, made.stderr
        when = (datetime.now(UTC) + timedelta(days=90)).strftime("%Y-%m-%d")
        assert (f"(scope write, streams match, vote, expires {when}" in made.stderr)
        bound = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}
        me = httpx.get(f"{base}/api/me", headers=bound).json()
        assert me["token"]["scope"] == "write" and me["token"]["streams"] == ["match", "vote"]
        assert me["token"]["expires_at"].startswith(when)
        reader = run(["token", "create", "cora", "--name", "feed", "--scope", "read"], env)
        assert reader.returncode == 0 and "(scope read, every stream, never expires)" in (
            reader.stderr)
        read = {"Authorization": f"Bearer {reader.stdout.strip().splitlines()[-1]}"}
        refused = httpx.post(f"{base}/api/streams/vote/posts", headers=read, json={"body": "x"})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "insufficient_scope"
        assert httpx.post(f"{base}/api/streams/vote/posts", headers=bound,
                          json={"body": "x"}).status_code == 201
    finally:
        _stop(server)
    rows = [line.split() for line in run(["token", "list"], env).stdout.splitlines()[1:]]
    assert [(r[1], r[2], r[4], r[5]) for r in rows] == [
        ("cora", "feed", "read", "all"), ("ed", "importer", "write", "match,vote"),
        ("ada", "setup", "write", "all")]
    assert rows[1][8] == when and rows[0][8] == "never"


def test_default_scope_and_expiry_come_from_the_settings(env: dict[str, str]) -> None:
    """BULLETIN_TOKEN_DEFAULT_SCOPE and _EXPIRES_IN give a token made without --scope or
    --expires-in its scope and lifetime; a bad value is a one-line error."""
    _make(env, "ed")
    narrow = {**env, "BULLETIN_TOKEN_DEFAULT_SCOPE": "read",
              "BULLETIN_TOKEN_DEFAULT_EXPIRES_IN": "12h"}
    made = run(["token", "create", "ed"], narrow)
    assert made.returncode == 0, made.stderr
    when = (datetime.now(UTC) + timedelta(hours=12)).strftime("%Y-%m-%d")
    assert f"(scope read, every stream, expires {when}" in made.stderr
    wider = run(["token", "create", "ed", "--scope", "write"], narrow)
    assert "(scope write, every stream, expires" in wider.stderr
    bad = run(["token", "create", "ed"], {**env, "BULLETIN_TOKEN_DEFAULT_EXPIRES_IN": "soon"})
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith(
        "bulletin: error: BULLETIN_TOKEN_DEFAULT_EXPIRES_IN: invalid duration 'soon'")


def test_token_list_is_a_table_of_every_token_or_one_editors(env: dict[str, str]) -> None:
    """`token list` shows id, editor, name, prefix, scope, streams, created, expiry, last
    used and revoked for every token, newest first; `token list EDITOR` only that editor's."""
    assert run(["token", "list"], env).stdout.strip() == "no API tokens"
    _make(env, "ada", "--admin")
    _make(env, "bob")
    ada = _token(env, "ada", "cms")
    bob = _token(env, "bob", "ci\x1b[31m red")
    listed = run(["token", "list"], env)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.strip().splitlines()
    assert header.split() == ["ID", "EDITOR", "NAME", "PREFIX", "SCOPE", "STREAMS", "CREATED",
                              "(UTC)", "EXPIRES", "LAST", "USED", "REVOKED"]
    assert [row.split()[:2] for row in rows] == [["2", "bob"], ["1", "ada"]]
    assert rows[0].split()[2:5] == ["ci?[31m", "red", bob[:10]]  # no escape reaches a terminal
    assert rows[1].split()[2:4] == ["cms", ada[:10]]
    assert rows[1].split()[-2:] == ["never", "-"]
    assert ada not in listed.stdout and bob not in listed.stdout
    assert [row.split()[:2] for row in run(["token", "list", "ada"], env).stdout.splitlines()[1:]
            ] == [["1", "ada"]]
    nobody = run(["token", "list", "nobody"], env)
    assert nobody.returncode == 1
    assert nobody.stderr.strip() == "bulletin: error: no editor 'nobody'"


def test_revoking_and_disabling_take_effect_on_a_running_server(env: dict[str, str]) -> None:
    """`token revoke ID` stops that token; `editor disable NAME` signs the editor out of
    the desk and refuses their tokens; `editor enable NAME` lets them back in. Repeats
    change nothing and say so."""
    _make(env, "bob")
    first, second = _token(env, "bob", "one"), _token(env, "bob", "two")
    server, base = start_server(env)
    try:
        _wait_ready(base, server)

        def me(token: str) -> int:
            return httpx.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"}
                             ).status_code

        with httpx.Client(base_url=base) as desk:
            form = desk.get("/editor/login").text
            csrf = form.split('name="csrf_token" value="')[1].split('"')[0]
            signed_in = desk.post("/editor/login", data={
                "csrf_token": csrf, "username": "bob", "password": "a long enough password"})
            assert signed_in.status_code == 303
            assert desk.get("/editor").status_code == 200

            revoked = run(["token", "revoke", "1"], env)
            assert revoked.returncode == 0, revoked.stderr
            assert revoked.stdout.startswith("revoked API token 1 (blt_")
            assert "'one' of 'bob'" in revoked.stdout
            assert (me(first), me(second)) == (401, 200)
            again = run(["token", "revoke", "1"], env)
            assert again.returncode == 0 and "was already revoked at" in again.stdout
            assert run(["token", "list", "bob"], env).stdout.splitlines()[2].split()[-1] != "-"

            disabled = run(["editor", "disable", "bob"], env)
            assert disabled.returncode == 0, disabled.stderr
            assert disabled.stdout.strip() == ("disabled editor 'bob': signed out everywhere, "
                                               "and their API tokens are refused")
            assert desk.get("/editor").status_code == 303
            assert me(second) == 403
            assert "already disabled" in run(["editor", "disable", "bob"], env).stdout

            enabled = run(["editor", "enable", "bob"], env)
            assert enabled.returncode == 0 and enabled.stdout.strip() == "enabled editor 'bob'"
            assert (me(first), me(second)) == (401, 200)
    finally:
        _stop(server)


def test_revoke_disable_and_enable_refuse_what_does_not_exist(env: dict[str, str]) -> None:
    """An unknown token id or editor name is one line and status 1."""
    for args, message in [(["token", "revoke", "7"], "no token 7"),
                          (["editor", "disable", "nobody"], "no editor 'nobody'"),
                          (["editor", "enable", "nobody"], "no editor 'nobody'")]:
        result = run(args, env)
        assert result.returncode == 1, args
        assert result.stderr.strip() == f"bulletin: error: {message}"
        assert result.stdout == ""


def test_unreachable_database_is_one_line(env: dict[str, str]) -> None:
    """A database that cannot be reached gives one line naming it (without the password)."""
    port = free_port()
    env = {**env, "BULLETIN_DATABASE_URL":
           f"postgresql+asyncpg://bulletin:hunter2@127.0.0.1:{port}/nowhere"}
    result = run(["db", "upgrade"], env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("bulletin: error: cannot use the database")
    assert "hunter2" not in result.stderr and str(port) in lines[0]


def test_port_in_use_is_one_line(env: dict[str, str]) -> None:
    """Serving on a port that is taken fails at once with one line, before any set-up."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["serve", "--demo", "--port", str(port)], env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"bulletin: error: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "choose another with --port")
    assert "demo" not in result.stdout


def test_bad_setting_is_one_line(env: dict[str, str]) -> None:
    """A malformed BULLETIN_* variable is reported on one line with status 1."""
    result = run(["db", "upgrade"], {**env, "BULLETIN_MAX_BODY_BYTES": "lots"})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "bulletin: error: BULLETIN_MAX_BODY_BYTES: expected int, got 'lots'")


def _wait_ready(base: str, server: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            out = server.stdout.read() if server.stdout else ""
            raise AssertionError(f"server exited with {server.returncode}:\n{out}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become ready")


def _stop(server: subprocess.Popen[str]) -> str:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    try:
        out, _ = server.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        out, _ = server.communicate()
        raise AssertionError(f"server did not stop within 15 s of SIGTERM:\n{out}") from None
    return out
