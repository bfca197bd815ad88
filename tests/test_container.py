"""The container recipe keeps the promises docs/deploy.md makes for it.

No container engine runs here, so the image is never built in these tests. What they do
instead: run the image's entrypoint (docker/entrypoint.sh) itself in a clean virtual
environment holding only the built wheel, against PostgreSQL and Redis, the way the
image runs it, health check included; and read the Dockerfile, compose.yaml,
docker/nginx.conf and the Kubernetes manifests of docs/deploy.md for the settings the
docs describe."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.engine import make_url

from bulletin.settings import Settings
from tests.conftest import POSTGRES_URL, TEST_SECRET, free_tcp_port, run_async

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
COMPOSE = ROOT / "compose.yaml"
WORKERS = ("bulletin-1", "bulletin-2")


# --- the Dockerfile ---------------------------------------------------------------------

def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuations joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the image that runs (after the last FROM)."""
    steps = instructions()
    last = max(i for i, (keyword, _rest) in enumerate(steps) if keyword == "FROM")
    return steps[last:]


def healthcheck_command() -> list[str]:
    """The HEALTHCHECK's CMD, in its exec form."""
    (rest,) = [rest for keyword, rest in final_stage() if keyword == "HEALTHCHECK"]
    command: list[str] = json.loads(rest.split(" CMD ", 1)[1])
    return command


def test_the_image_runs_the_wheel_as_a_user_that_is_not_root() -> None:
    """The image builds the wheel in a stage of its own and installs only that on a slim
    Python 3.11+; it ends as a named user (not root, not uid 0), with the entrypoint
    script that the test below runs, SIGTERM as its stop signal and port 8000 exposed."""
    steps = instructions()
    stage = final_stage()
    froms = [rest for keyword, rest in steps if keyword == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build"), froms
    assert froms[1] == "python:${PYTHON_VERSION}-slim"
    (version,) = [rest for keyword, rest in steps if keyword == "ARG"
                  and rest.startswith("PYTHON_VERSION=")]
    assert tuple(map(int, version.split("=")[1].split("."))) >= (3, 11)
    installs = [rest for keyword, rest in stage if keyword == "RUN" and "pip install" in rest]
    assert installs and all("--no-index --find-links /wheels bulletin" in r for r in installs)
    assert not [rest for keyword, rest in stage if keyword == "COPY" and "server" in rest]
    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert ("STOPSIGNAL", "SIGTERM") in stage
    assert ("EXPOSE", "8000") in stage
    assert ("ENTRYPOINT", '["bulletin-entrypoint"]') in stage
    assert ("CMD", '["serve"]') in stage
    copies = [rest for keyword, rest in stage if keyword == "COPY"]
    assert any(c.endswith("docker/entrypoint.sh /usr/local/bin/bulletin-entrypoint")
               for c in copies), copies
    assert "ulimit -n" in DOCKERFILE.read_text() and "--ulimit nofile=" in DOCKERFILE.read_text()


def test_the_health_check_probes_readyz_with_what_the_slim_image_has() -> None:
    """The HEALTHCHECK asks /readyz on the entrypoint's port with Python itself (the slim
    image has no curl), with a start period for the migrations."""
    (rest,) = [rest for keyword, rest in final_stage() if keyword == "HEALTHCHECK"]
    assert "--start-period=" in rest
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"] and "/readyz" in command[2]
    assert "BULLETIN_PORT" in command[2]


def test_the_build_context_holds_what_the_wheel_is_made_of() -> None:
    """.dockerignore lets in pyproject, the package, the client's modules and the
    entrypoint, and nothing else (no .venv, no node_modules, no .env)."""
    allowed = [line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")]
    assert (ROOT / ".dockerignore").read_text().splitlines()[1] == "*"
    for needed in ("pyproject.toml", "README.md", "LICENSE", "server/",
                   "docker/entrypoint.sh", "client_js/*.js", "client_js/*.d.ts"):
        assert needed in allowed, needed


# --- compose.yaml -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """compose.yaml, parsed (YAML merge keys resolved)."""
    parsed: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return parsed


def test_compose_has_the_services_the_docs_list(compose: dict[str, Any]) -> None:
    """PostgreSQL, Redis, a one-shot migration, two workers and nginx; the data of
    PostgreSQL and the photos on named volumes."""
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", *WORKERS, "nginx"}
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert set(compose["volumes"]) == {"pgdata", "media"}
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name


def test_migrate_runs_once_and_the_workers_wait_for_it(compose: dict[str, Any]) -> None:
    """migrate runs `bulletin db upgrade` once (no restart) after PostgreSQL is healthy;
    each worker starts only after it completed successfully and Redis and PostgreSQL are
    healthy, runs `serve`, and nginx waits for both workers' health checks."""
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in WORKERS:
        worker = services[name]
        assert worker["command"] == ["serve", "--no-migrate"]
        assert worker["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"}}
        assert "healthcheck" not in worker, "the image's HEALTHCHECK (/readyz) is used"
        assert worker["ulimits"]["nofile"]["soft"] >= 10_000
        grace = float(worker["stop_grace_period"].rstrip("s"))
        assert grace > Settings().shutdown_seconds + 1
        assert "media:/srv/bulletin/media" in worker["volumes"]
    assert services["nginx"]["depends_on"] == {
        name: {"condition": "service_healthy"} for name in WORKERS}


def test_every_bulletin_service_shares_postgres_redis_and_a_secret_from_outside(
        compose: dict[str, Any]) -> None:
    """migrate and the workers run the same image with the same settings: the database
    and broker URLs name the postgres and redis services, production mode is on, and the
    secret key and database password come from the environment (.env), never written in
    the file."""
    services = compose["services"]
    environments = [services[name]["environment"] for name in ("migrate", *WORKERS)]
    assert all(e == environments[0] for e in environments)
    env = environments[0]
    database = make_url(env["BULLETIN_DATABASE_URL"].replace(
        "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}", "x"))
    assert (database.drivername, database.host, database.port, database.database) == (
        "postgresql+asyncpg", "postgres", 5432, "bulletin")
    assert env["BULLETIN_BROKER_URL"] == "redis://redis:6379/0"
    assert env["BULLETIN_PRODUCTION"] == "1"
    assert re.fullmatch(r"\$\{BULLETIN_SECRET_KEY:\?[^}]+\}", env["BULLETIN_SECRET_KEY"])
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}",
                        services["postgres"]["environment"]["POSTGRES_PASSWORD"])
    example = (ROOT / "docker" / "compose.env.example").read_text()
    assert re.search(r"(?m)^BULLETIN_SECRET_KEY=$", example)
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    settings = Settings.from_env({k: v for k, v in env.items() if "${" not in v},
                                 secret_key=TEST_SECRET, public_url="http://localhost:8080")
    assert settings.broker_url == "redis://redis:6379/0"  # every value is one bulletin takes


def test_nginx_mounts_the_documented_configuration(compose: dict[str, Any]) -> None:
    """nginx mounts docker/nginx.conf, which is docs/nginx.conf with the two workers as
    its upstream (found again by name when they are recreated) and nothing else changed."""
    nginx = compose["services"]["nginx"]
    assert "./docker/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert nginx["ports"] == ["${BULLETIN_HTTP_PORT:-8080}:80"]
    documented = (ROOT / "docs" / "nginx.conf").read_text()
    assert (ROOT / "docker" / "nginx.conf").read_text() == for_compose(documented), (
        "docker/nginx.conf must be docs/nginx.conf with the compose upstream: make the "
        "same change in both (for_compose() shows the one difference)")


def for_compose(documented: str) -> str:
    """docs/nginx.conf with the compose services as its upstream, resolved through
    Docker's DNS (nginx 1.27.3+ re-resolves `server ... resolve`)."""
    conf, found = re.subn(r"(?m)^\s*server 10\.0\.1\.\d+:8000 max_fails=0;\n", "", documented)
    assert found == 2, "docs/nginx.conf changed shape: update for_compose()"
    servers = "".join(f"        server {name}:8000 max_fails=0 resolve;\n" for name in WORKERS)
    upstream = "    upstream bulletin {\n"
    conf = conf.replace(upstream, "    # Docker's own DNS: a recreated worker is found again.\n"
                                  "    resolver 127.0.0.11 valid=10s ipv6=off;\n\n"
                        + upstream + "        zone bulletin 64k;\n" + servers)
    header = ("# GENERATED from docs/nginx.conf for compose.yaml: the upstream is the compose\n"
              "# services. Edit docs/nginx.conf and copy the change here "
              "(tests/test_container.py).\n")
    return header + conf


# --- the entrypoint, run in a clean virtual environment ---------------------------------

@pytest.fixture(scope="module")
def wheel_env(bulletin_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with only the built wheel installed in it; its
    dependencies come from this test run's environment (through a .pth file), so that
    nothing is downloaded. Returns the environment's bin/ folder."""
    env_dir = tmp_path_factory.mktemp("image") / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    str(bulletin_wheel)], check=True, capture_output=True, text=True,
                   timeout=300)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (Path(site) / "bulletin-test-deps.pth").write_text("\n".join(deps) + "\n")
    return env_dir / "bin"


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database (no schema: the entrypoint migrates it)."""
    import asyncpg

    name = f"bulletin_image_{uuid.uuid4().hex[:12]}"
    admin_dsn = make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(
        hide_password=False)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        run_async(admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        from tests.conftest import service_unavailable

        service_unavailable(f"PostgreSQL not available at {POSTGRES_URL}: {exc}")
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    run_async(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _entrypoint(bin_dir: Path, env: dict[str, str], *args: str, stdin: str | None = None,
                cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", str(ENTRYPOINT), *args], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_entrypoint_migrates_serves_and_stops_from_the_wheel_alone(
        wheel_env: Path, fresh_postgres: str, redis_url: str, tmp_path: Path) -> None:
    """As in the image: from the wheel in a clean environment, `entrypoint.sh db upgrade`
    migrates a new PostgreSQL database (the compose migrate service), `editor create` and
    `token create` work through it, and with no arguments it serves on 0.0.0.0 with the
    production settings from the environment: the HEALTHCHECK command passes, a post goes
    through to the reader page and the event log, the page's CSS and JavaScript come from
    the wheel, and SIGTERM stops it
    gracefully."""
    port = free_tcp_port()
    env = {"PATH": f"{wheel_env}:/usr/bin:/bin", "HOME": str(tmp_path),
           "BULLETIN_DATABASE_URL": fresh_postgres, "BULLETIN_BROKER_URL": redis_url,
           "BULLETIN_SECRET_KEY": TEST_SECRET, "BULLETIN_PRODUCTION": "1",
           "BULLETIN_PUBLIC_URL": f"http://127.0.0.1:{port}", "BULLETIN_PORT": str(port),
           "BULLETIN_MEDIA_URL": f"file://{tmp_path / 'media'}", "BULLETIN_LOG_LEVEL": "warning"}
    workdir = tmp_path / "srv"
    workdir.mkdir()

    migrated = _entrypoint(wheel_env, env, "db", "upgrade", cwd=workdir)
    assert migrated.returncode == 0, migrated.stderr
    made = _entrypoint(wheel_env, env, "editor", "create", "ada", "--admin",
                       "--password-stdin", stdin="a long editor password\n", cwd=workdir)
    assert made.returncode == 0, made.stderr
    issued = _entrypoint(wheel_env, env, "token", "create", "ada", "--name", "test",
                         cwd=workdir)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]

    server = subprocess.Popen(["/bin/sh", str(ENTRYPOINT)], env=env, cwd=workdir,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(healthcheck_command(), env, server, workdir)
        with httpx.Client(base_url=base, timeout=10,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            ready = client.get("/readyz").json()
            assert ready["checks"] == {"database": "ok", "broker": "ok"}
            created = client.post("/api/streams", json={"slug": "night",
                                                        "title": "Night", "status": "live"})
            assert created.status_code == 201, created.text
            posted = client.post("/api/streams/night/posts", json={"body": "Polls closed."})
            assert posted.status_code == 201, posted.text
            events = client.get("/api/streams/night/events", params={"since": 0}).json()
            assert [e["op"] for e in events["events"]][-1] == "post.created"
            page = client.get("/live/night", headers={"Accept": "text/html"})
            assert page.status_code == 200 and "Polls closed." in page.text
            assets = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', page.text)
            assert any(a.endswith(".css") for a in assets)
            assert any(a.endswith(".js") for a in assets)
            for asset in assets:
                assert client.get(asset).status_code == 200, asset
            assert client.get("/").json()["version"] == _installed_version(wheel_env)
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=Settings().shutdown_seconds + 5)
        # uvicorn ends a graceful stop by re-raising the signal (a container's exit 143).
        assert server.returncode in (0, -signal.SIGTERM), output
        assert "Traceback" not in output, output
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


def _installed_version(bin_dir: Path) -> str:
    return subprocess.run([str(bin_dir / "bulletin"), "--version"], capture_output=True,
                          text=True, check=True).stdout.split()[1]


def _wait_healthy(command: list[str], env: dict[str, str], server: subprocess.Popen[str],
                  cwd: Path) -> None:
    """Run the image's HEALTHCHECK command until it passes, as Docker would."""
    deadline = time.monotonic() + 30
    while True:
        if server.poll() is not None:
            raise AssertionError(f"the entrypoint exited: {server.communicate()[0]}")
        check = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                               timeout=10, check=False)
        if check.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the health check never passed: {check.stderr}")
        time.sleep(0.2)


def test_the_entrypoint_passes_other_commands_to_bulletin(wheel_env: Path,
                                                           tmp_path: Path) -> None:
    """`docker run bulletin --version` (any first argument but serve) runs that bulletin
    command."""
    env = {"PATH": f"{wheel_env}:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = _entrypoint(wheel_env, env, "--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("bulletin ")


# --- Kubernetes, as docs/deploy.md shows it ---------------------------------------------

def kubernetes_manifests() -> list[dict[str, Any]]:
    """The YAML blocks of docs/deploy.md's Kubernetes section, parsed."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("### Kubernetes", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    return [doc for block in blocks for doc in yaml.safe_load_all(block) if doc]


def test_the_kubernetes_deployment_drains_before_it_stops() -> None:
    """The documented Deployment probes /readyz for readiness and /healthz for liveness,
    sleeps in preStop so that the endpoint leaves the Service before SIGTERM, and gives
    more grace than the preStop sleep plus BULLETIN_SHUTDOWN_SECONDS; a Job runs the
    migration with the same image."""
    manifests = {m["kind"]: m for m in kubernetes_manifests()}
    assert {"Deployment", "Job", "Service"} <= set(manifests)
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > sleep + Settings().shutdown_seconds + 1
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    job = manifests["Job"]["spec"]["template"]["spec"]
    (migrate,) = job["containers"]
    assert migrate["args"] == ["db", "upgrade"] and migrate["image"] == container["image"]
    assert job["restartPolicy"] in ("Never", "OnFailure")


def test_the_environment_is_what_entrypoint_and_settings_read() -> None:
    """The variables the image sets for the entrypoint are the ones the script reads."""
    script = ENTRYPOINT.read_text()
    for name in ("BULLETIN_HOST", "BULLETIN_PORT", "BULLETIN_WORKERS"):
        assert f"${{{name}:-" in script, name
        assert re.search(rf"\b{name}=", DOCKERFILE.read_text()), name
    assert os.access(ENTRYPOINT, os.X_OK)
