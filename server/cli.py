"""The ``bulletin`` command: serve, migrate, and manage editors and tokens."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

from . import __version__
from .core.access import ROLES, SCOPES

T = TypeVar("T")
log = logging.getLogger("bulletin")


# Exit statuses of `bulletin db check` and `serve --no-migrate`, for deploy scripts (2 is
# a usage error, as argparse answers).
EXIT_NOT_AT_HEAD = 1
EXIT_UNREACHABLE = 3


class CliError(Exception):
    """A failure to report on one line, with an exit status (1 unless told)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: scripts and people both read it.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, exposed for tests and docs."""
    parser = _Parser(prog="bulletin", description="Live-update push server for live stories.")
    parser.add_argument("--version", action="version", version=f"bulletin {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", help="apply migrations and serve HTTP/WebSocket")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    serve.add_argument("--demo", action="store_true",
                       help="create a demo live stream and editor, and print how to use them")
    serve.add_argument("--workers", type=_workers, default=1,
                       help="server processes sharing the port (default 1); more than one "
                            "needs a shared broker (BULLETIN_BROKER_URL=redis://...); "
                            "SIGHUP restarts them one at a time")
    serve.add_argument("--no-migrate", action="store_true",
                       help="do not apply migrations at start; refuse to start unless the "
                            "database is at head (exit 1; 3 if it cannot be reached)")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    db_commands.add_parser("upgrade", help="apply every pending migration (safe to run "
                                           "from several processes at once)")
    db_commands.add_parser("current", help="print the database's revision and whether it "
                                           "is the head")
    db_commands.add_parser("check", help="exit 0 if the database is at head, 1 if not, "
                                         "3 if it cannot be reached")

    editor = commands.add_parser("editor", help="manage editors")
    editor_commands = editor.add_subparsers(dest="editor_command", required=True,
                                            parser_class=_Parser)
    create = editor_commands.add_parser("create", help="create an editor account")
    create.add_argument("name", help="username: lowercase letters, digits, '.', '_', '-'")
    create.add_argument("--role", choices=ROLES, help="contributor: writes posts and edits "
                        "their own; editor (the default): also edits anyone's, pins, deletes "
                        "and runs streams; admin: also manages editors and tokens")
    create.add_argument("--admin", action="store_true", help="the same as --role admin")
    create.add_argument("--display-name", help="name shown on posts (default: the username)")
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input (first line)")
    disable = editor_commands.add_parser(
        "disable", help="disable an editor: signs them out everywhere, refuses their tokens")
    disable.add_argument("name", help="the editor's username")
    enable = editor_commands.add_parser("enable", help="allow a disabled editor back in")
    enable.add_argument("name", help="the editor's username")

    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True,
                                          parser_class=_Parser)
    token_create = token_commands.add_parser(
        "create", help="create an API token; printed once, on the last line")
    token_create.add_argument("editor", help="the editor's username")
    token_create.add_argument("--name", default="cli", help="what the token is for")
    token_create.add_argument(
        "--scope", choices=SCOPES,
        help="read: reads drafts and revisions only; write: posts and streams; admin: also "
             "the token API (admins only). Default: BULLETIN_TOKEN_DEFAULT_SCOPE, or write")
    token_create.add_argument(
        "--stream", action="append", metavar="SLUG", dest="streams",
        help="write only to this stream (repeat for several); default: every stream")
    token_create.add_argument(
        "--expires-in", type=_duration, metavar="DURATION",
        help="expire after this long: 90d, 12h, 30m. Default: "
             "BULLETIN_TOKEN_DEFAULT_EXPIRES_IN, or never")
    token_list = token_commands.add_parser(
        "list", help="list API tokens (revoked ones too), newest first")
    token_list.add_argument("editor", nargs="?", help="only this editor's tokens")
    token_revoke = token_commands.add_parser(
        "revoke", help="revoke an API token: it stops working at once, on open connections too")
    token_revoke.add_argument("id", type=_token_id, help="the token's id (see token list)")
    return parser


def _token_id(value: str) -> int:
    from .web.validation import ascii_int

    token_id = ascii_int(value, max_digits=10)
    if token_id is None or not 0 < token_id < 2**31:  # ids are 32-bit in the database
        raise argparse.ArgumentTypeError(f"invalid token id {value!r}: expected a number "
                                         "from `bulletin token list`")
    return token_id


def _duration(value: str) -> timedelta:
    from .durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _workers(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) <= 256:
        raise argparse.ArgumentTypeError(f"invalid worker count {value!r}: expected 1-256")
    return int(value)


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"invalid port {value!r}: expected 1-65535")
    return int(value)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        from .logsetup import configure
        from .settings import Settings

        settings = Settings.from_env()
        # Warnings from libraries (Alembic is chatty at INFO); ours from BULLETIN_LOG_LEVEL.
        configure(settings)
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "db":
            return _DB_COMMANDS[args.db_command](settings, args)
        if args.command == "editor":
            return _EDITOR_COMMANDS[args.editor_command](settings, args)
        return _TOKEN_COMMANDS[args.token_command](settings, args)
    except CliError as exc:
        print(f"bulletin: error: {exc}", file=sys.stderr)
        return exc.status
    except Exception as exc:
        from .settings import SettingsError

        if isinstance(exc, SettingsError):
            print(f"bulletin: error: {exc}", file=sys.stderr)
            return 1
        raise


def _upgrade(settings: Any) -> None:
    from .store import migrate

    try:
        migrate.upgrade(settings.database_url)
    except Exception as exc:
        raise CliError(_database_failure(settings.database_url, exc)) from None


def _db_upgrade(settings: Any, args: argparse.Namespace) -> int:
    _upgrade(settings)
    print("database is up to date")
    return 0


def _db_current(settings: Any, args: argparse.Namespace) -> int:
    state = _schema(settings)
    if state.at_head:
        print(f"{state.head} (head)")
    elif state.current is None:
        print(f"none (empty database; head is {state.head})")
    elif not state.known:
        print(f"{state.current} (unknown to this version of Bulletin, whose head is "
              f"{state.head})")
    else:
        print(f"{state.current} (behind: head is {state.head})")
    return 0


def _db_check(settings: Any, args: argparse.Namespace) -> int:
    print(f"at head: {_require_head(settings).head}")
    return 0


def _require_head(settings: Any) -> Any:
    """The database's schema; raises (exit 1) unless it is at head, or (exit 3) if it
    cannot be read."""
    state = _schema(settings)
    if state.at_head:
        return state
    if state.current is None:
        problem = f"empty: no schema yet, head is {state.head}; run bulletin db upgrade"
    elif not state.known:
        problem = (f"at {state.current}, a revision this version of Bulletin does not know "
                   f"(its head is {state.head}): a newer version migrated it")
    else:
        problem = f"behind: at {state.current}, head is {state.head}; run bulletin db upgrade"
    raise CliError(f"the database is {problem}", status=EXIT_NOT_AT_HEAD)


def _schema(settings: Any) -> Any:
    from .store import migrate

    try:
        return migrate.schema(settings.database_url)
    except Exception as exc:
        raise CliError(_database_failure(settings.database_url, exc),
                       status=EXIT_UNREACHABLE) from None


def _database_failure(url: str, exc: BaseException) -> str:
    from sqlalchemy.engine import make_url

    shown = make_url(url).render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return f"cannot use the database {shown}: {reason or type(exc).__name__}"


def _with_db(settings: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    from .store.db import Database

    async def run() -> T:
        db = Database(settings.database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except CliError:
        raise
    except Exception as exc:
        from .core.errors import ApiError

        if isinstance(exc, ApiError):
            raise CliError(exc.message) from None
        raise CliError(_database_failure(settings.database_url, exc)) from None


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CliError("no password on standard input")
        return line
    if not sys.stdin.isatty():
        raise CliError("standard input is not a terminal: use --password-stdin")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password again: "):
        raise CliError("the passwords do not match")
    return first


def _editor_create(settings: Any, args: argparse.Namespace) -> int:
    from .store import accounts

    if args.admin and args.role not in (None, "admin"):
        raise CliError(f"--admin and --role {args.role} contradict each other: give one")
    role = "admin" if args.admin else args.role or "editor"
    password = _read_password(args)
    _upgrade(settings)

    async def work(db: Any) -> Any:
        async with db.write() as session:
            return await accounts.create_editor(
                session, username=args.name, display_name=args.display_name,
                password=password, role=role)

    editor = _with_db(settings, work)
    print(f"created {editor.role} {editor.username!r} ({editor.display_name})")
    return 0


def _token_create(settings: Any, args: argparse.Namespace) -> int:
    from .durations import parse_duration
    from .store import accounts

    scope = args.scope or settings.token_default_scope
    expires_in = args.expires_in
    if expires_in is None and settings.token_default_expires_in:
        expires_in = parse_duration(settings.token_default_expires_in)
    _upgrade(settings)

    async def work(db: Any) -> Any:
        async with db.write() as session:
            editor = await accounts.get_editor(session, username=args.editor)
            if editor.disabled:
                raise CliError(f"editor {args.editor!r} is disabled")
            return await accounts.create_token(
                session, editor=editor, name=args.name, scope=scope, streams=args.streams,
                expires_in=expires_in)

    token, plain = _with_db(settings, work)
    print(f"created API token {args.name!r} for {args.editor!r} ({_access(token)}); "
          "it is shown only once:", file=sys.stderr)
    print(plain)
    return 0


def _access(token: Any) -> str:
    streams = "every stream" if token.streams is None else "streams " + ", ".join(token.streams)
    expiry = ("never expires" if token.expires_at is None
              else f"expires {_when(token.expires_at)} UTC")
    return f"scope {token.scope}, {streams}, {expiry}"


def _token_list(settings: Any, args: argparse.Namespace) -> int:
    from .store import accounts

    _upgrade(settings)

    async def work(db: Any) -> Any:
        async with db.read() as session:
            editor = None if args.editor is None else await accounts.get_editor(
                session, username=args.editor)
            return await accounts.list_all_tokens(session, editor=editor)

    rows = _with_db(settings, work)
    if not rows:
        print("no API tokens" + ("" if args.editor is None else f" for {args.editor!r}"))
        return 0
    print(_table(
        ["ID", "EDITOR", "NAME", "PREFIX", "SCOPE", "STREAMS", "CREATED (UTC)", "EXPIRES",
         "LAST USED", "REVOKED"],
        [[str(token.id), editor.username, _printable(token.name), token.prefix, token.scope,
          "all" if token.streams is None else ",".join(token.streams),
          _when(token.created_at), _when(token.expires_at) or "never",
          _when(token.last_used_at) or "never",
          _when(token.revoked_at) or "-"] for token, editor in rows]))
    return 0


def _token_revoke(settings: Any, args: argparse.Namespace) -> int:
    from .store import accounts

    _upgrade(settings)

    async def work(db: Any) -> tuple[Any, Any, Any]:
        async with db.write() as session:
            token, editor = await accounts.get_token(session, token_id=args.id)
            already = token.revoked_at
            await accounts.revoke_token(session, token_id=args.id)
        if already is None:
            await _announce(settings)
        return token, editor, already

    token, editor, already = _with_db(settings, work)
    what = (f"API token {token.id} ({token.prefix}…, {_printable(token.name)!r} "
            f"of {editor.username!r})")
    if already is not None:
        print(f"{what} was already revoked at {_when(already)} UTC; nothing changed")
    else:
        print(f"revoked {what}")
    return 0


def _editor_disable(settings: Any, args: argparse.Namespace) -> int:
    return _editor_set_disabled(settings, args, disabled=True)


def _editor_enable(settings: Any, args: argparse.Namespace) -> int:
    return _editor_set_disabled(settings, args, disabled=False)


def _editor_set_disabled(settings: Any, args: argparse.Namespace, *, disabled: bool) -> int:
    from .store import accounts

    _upgrade(settings)

    async def work(db: Any) -> bool:
        async with db.write() as session:
            editor = await accounts.get_editor(session, username=args.name)
            changed = editor.disabled != disabled
            assert editor.id is not None
            await accounts.set_disabled(session, editor_id=editor.id, disabled=disabled)
        if changed and disabled:
            await _announce(settings)
        return changed

    changed = _with_db(settings, work)
    if not changed:
        print(f"editor {args.name!r} was already {'disabled' if disabled else 'enabled'}; "
              "nothing changed")
    elif disabled:
        print(f"disabled editor {args.name!r}: signed out everywhere, and their API tokens "
              "are refused")
    else:
        print(f"enabled editor {args.name!r}")
    return 0


async def _announce(settings: Any) -> None:
    # The change has committed: it holds whatever happens here. Running servers also
    # re-check open connections every credential_check_seconds, so a failure to tell
    # them at once is a delay, not a hole: a warning, not an error.
    from .live import revocation

    try:
        await revocation.announce(settings)
    except Exception as exc:
        print(f"bulletin: warning: running servers could not be told at once "
              f"({type(exc).__name__}: {exc}); open connections end within "
              f"{settings.credential_check_seconds:g} seconds", file=sys.stderr)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                     .rstrip() for row in [headers, *rows])


def _printable(text: str) -> str:
    # Names are typed by editors: no escape sequence of theirs reaches the terminal.
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _when(value: Any) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M")


_DB_COMMANDS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "upgrade": _db_upgrade, "current": _db_current, "check": _db_check}
_EDITOR_COMMANDS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "create": _editor_create, "disable": _editor_disable, "enable": _editor_enable}
_TOKEN_COMMANDS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "create": _token_create, "list": _token_list, "revoke": _token_revoke}


def _serve(settings: Any, args: argparse.Namespace) -> int:
    from .serving import serve
    from .web.app import create_app

    if args.workers > 1 and not settings.shared_broker:
        raise CliError(f"--workers {args.workers} needs a broker shared by the processes: "
                       f"set BULLETIN_BROKER_URL=redis://host:6379/0 "
                       f"(the in-process {settings.broker_url} reaches one process only)")
    _check_port(args.host, args.port)
    if args.no_migrate:
        _require_head(settings)
    else:
        _upgrade(settings)
    settings = settings.with_secret()
    if args.demo:
        from .store.demo import seed
        from .store.media import media_store_from_url

        media = media_store_from_url(settings.media_location, settings)
        info = _with_db(settings, lambda db: seed(
            db, password=secrets.token_urlsafe(12), media=media,
            max_pixels=settings.max_image_pixels))
        base = f"http://{_display_host(args.host)}:{args.port}"
        print(_demo_banner(base, info), flush=True)
    if args.workers > 1:
        from .supervisor import Supervisor

        return Supervisor(settings, host=args.host, port=args.port, workers=args.workers).run()
    serve(create_app(settings), settings, host=args.host, port=args.port)
    return 0


def _check_port(host: str, port: int) -> None:
    # Fail before migrating and seeding, with one line, rather than after startup with
    # uvicorn's five. (Something may still take the port in between; uvicorn reports that.)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CliError(f"cannot bind to {host!r}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}; "
                           "choose another with --port") from None


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _demo_banner(base: str, info: dict[str, str]) -> str:
    slug = info["slug"]
    return "\n".join([
        "",
        "  Bulletin demo is ready.",
        f"  Reader page:     {base}/live/{slug}",
        f"  Editor desk:     {base}/editor  (sign in below)",
        f"  Embed:           {base}/embed/{slug}",
        f"  Stream (JSON):   {base}/api/streams/{slug}",
        f"  Posts:           {base}/api/streams/{slug}/posts",
        f"  Event log:       {base}/api/streams/{slug}/events?since=0",
        f"  API description: {base}/api/openapi.json",
        f"  Editor sign-in:  username {info['username']}  password {info['password']}",
        f"  API token:       {info['token']}",
        "  Post an update:",
        f"    curl -X POST {base}/api/streams/{slug}/posts \\",
        f"      -H 'Authorization: Bearer {info['token']}' \\",
        "      -H 'Content-Type: application/json' -d '{\"body\": \"Hello from the desk\"}'",
        "  (the password and token are new each time the demo starts)",
        "",
    ])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
