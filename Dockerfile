# syntax=docker/dockerfile:1
# Bulletin's image: the wheel (not the source tree) on a slim Python, run as a user
# that is not root. See docs/deploy.md, "Containers, compose and Kubernetes".
#
#   docker build -t bulletin .
#   docker run --rm -p 8000:8000 --ulimit nofile=65536:65536 \
#       -e BULLETIN_DATABASE_URL=postgresql+asyncpg://bulletin:...@db/bulletin \
#       -e BULLETIN_BROKER_URL=redis://redis:6379/0 \
#       -e BULLETIN_SECRET_KEY=... -e BULLETIN_PUBLIC_URL=https://live.example.com bulletin
#
# Never built on the machine this file was written on (it has no container engine);
# tests/test_container.py checks this file's promises and runs its entrypoint directly.

ARG PYTHON_VERSION=3.12

# --- build: the wheel, and the wheels of every dependency -------------------------------
FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md LICENSE ./
COPY client_js/ client_js/
# server/web/client_js is a link to ../../client_js: the wheel carries a copy.
COPY server/ server/
RUN pip wheel --no-deps --wheel-dir /dist . \
 && pip wheel --wheel-dir /wheels /dist/bulletin-*.whl

# --- run --------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN useradd --system --uid 10001 --user-group --home-dir /srv/bulletin --create-home \
        --shell /usr/sbin/nologin bulletin
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels bulletin
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/bulletin-entrypoint

# Read by the entrypoint only: where `bulletin serve` listens, and how many workers
# (more than one needs BULLETIN_BROKER_URL=redis://...).
ENV BULLETIN_HOST=0.0.0.0 \
    BULLETIN_PORT=8000 \
    BULLETIN_WORKERS=1 \
    BULLETIN_PRODUCTION=1 \
    BULLETIN_MEDIA_URL=file:///srv/bulletin/media
WORKDIR /srv/bulletin
RUN install -d -o bulletin -g bulletin /srv/bulletin/media
# Photos, unless BULLETIN_MEDIA_URL is an s3:// bucket: every worker of every machine
# must see the same files (one volume shared by all, or a bucket).
VOLUME ["/srv/bulletin/media"]
USER bulletin:bulletin

EXPOSE 8000
# bulletin serve stops gracefully on SIGTERM (readers get close code 1001) within
# BULLETIN_SHUTDOWN_SECONDS (10) plus a second: give `docker stop -t` / the orchestrator
# more than that (compose.yaml: stop_grace_period: 20s).
STOPSIGNAL SIGTERM
# Ready: the database answers (the broker may be reconnecting: "degraded" is still 200).
# python, because the slim image has no curl; 503 (database unreachable) makes it fail.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('BULLETIN_PORT', '8000'), timeout=2)"]

# File descriptors: every reader is one socket (two through a proxy on the same host).
# Docker's default soft limit is often 1024; for 10,000+ readers per container raise it:
# `docker run --ulimit nofile=65536:65536`, compose's `ulimits: nofile:`, or the
# container runtime's default (Kubernetes takes it from the runtime: containerd's
# LimitNOFILE). `ulimit -n` inside the container shows what it got.
ENTRYPOINT ["bulletin-entrypoint"]
CMD ["serve"]
