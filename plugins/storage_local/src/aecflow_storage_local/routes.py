"""The HTTP route that serves this backend's signed download URLs in the aecflow host."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from aecflow.flow import Flow

#: Where the host mounts signed URLs; ``public_base_url`` defaults to this path on the host.
PATH = "/v1/storage/local/{key:path}"


def signed_url_route(flow: Flow) -> BaseRoute:
    from starlette.routing import Route

    from aecflow.host.content import stream_object
    from aecflow.host.errors import error_response

    async def serve(request: Request) -> Response:
        storage = flow.storage
        params = request.query_params
        key = request.path_params["key"]
        if not storage.verify_download(  # the raw value: "²" or 5,000 digits are no int
            key, params.get("expires", ""), params.get("filename"), params.get("signature", "")
        ):
            return error_response(
                403, "invalid_signature", "the download link is invalid or has expired"
            )
        info = await storage.stat(key)
        return stream_object(
            request,
            storage,
            key,
            size=info.size,
            filename=params.get("filename") or key.rsplit("/", 1)[-1],
            content_type=info.content_type,
            etag=None,
        )

    return Route(PATH, serve, methods=["GET", "HEAD"])
