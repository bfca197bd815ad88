"""GET /static/{version}/{name}: the browser files, cached for a year under their version."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...core.errors import ApiError
from ..assets import IMMUTABLE, Assets


async def static_file(request: Request) -> Response:
    """One file; 304 when the browser's copy is current."""
    assets: Assets = request.app.state.assets
    asset = assets.files.get(request.path_params["name"])
    if asset is None:
        raise ApiError(404, "not_found", "no such file")
    current = request.path_params["version"] == assets.version
    headers = {"ETag": asset.etag, "Cache-Control": IMMUTABLE if current else "no-cache",
               # Modules are fetched with CORS by pages that embed the feed elsewhere.
               "Access-Control-Allow-Origin": "*"}
    if asset.etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, headers=headers, media_type=asset.media_type)


def _etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


def routes() -> list[BaseRoute]:
    """The static file route."""
    return [Route("/static/{version}/{name}", static_file, methods=["GET", "HEAD"],
                  include_in_schema=False)]
