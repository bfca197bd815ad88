#!/bin/sh
# The container's entrypoint (Dockerfile, compose.yaml), also run as is by
# tests/test_container.py in a clean virtual environment.
#
#   (no arguments) or serve [ARGS]   bulletin serve on $BULLETIN_HOST:$BULLETIN_PORT
#                                    (0.0.0.0:8000) with $BULLETIN_WORKERS workers (1)
#   anything else                    the bulletin command itself: db upgrade,
#                                    editor create ada --password-stdin, token create ada
#
# Every other setting is a BULLETIN_* variable, read by bulletin itself (README.md).
# `exec` makes bulletin the process that gets the container's SIGTERM: it stops within
# BULLETIN_SHUTDOWN_SECONDS (10) plus a second, readers getting close code 1001.
set -eu

if [ "$#" -eq 0 ]; then
    set -- serve
fi

if [ "$1" = serve ]; then
    shift
    exec bulletin serve --host "${BULLETIN_HOST:-0.0.0.0}" --port "${BULLETIN_PORT:-8000}" \
        --workers "${BULLETIN_WORKERS:-1}" "$@"
fi

exec bulletin "$@"
