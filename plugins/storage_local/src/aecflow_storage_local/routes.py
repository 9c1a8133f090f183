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

    from aecflow.actor import Actor, acting_as
    from aecflow.host.auth import request_actor
    from aecflow.host.content import stream_object
    from aecflow.host.errors import error_response

    async def serve(request: Request) -> Response:
        storage = flow.storage
        params = request.query_params
        key = request.path_params["key"]
        # The raw value: verify_download refuses what is not a plain ASCII number (``²``,
        # thousands of digits) instead of int() raising a 500 here.
        if not storage.verify_download(
            key, params.get("expires", ""), params.get("filename"), params.get("signature", "")
        ):
            return error_response(
                403, "invalid_signature", "the download link is invalid or has expired"
            )
        # The signature stands in for a token: audit the fetch as the link's holder.
        with acting_as(request_actor(request, Actor(id="signed-url"))):
            async with flow.audit.operation(
                "file.download", read_only=True, storage_key=key, details={"via": "signed_url"}
            ) as op:
                record = await flow.readable_object(key)
                op.note(project=record.project, file_id=record.id)
                info = await storage.stat(key)
                response = stream_object(
                    request,
                    storage,
                    key,
                    size=info.size,
                    filename=params.get("filename") or key.rsplit("/", 1)[-1],
                    content_type=info.content_type,
                    etag=None,
                )
                op.note(bytes_out=int(response.headers.get("content-length", 0)))
        return response

    return Route(PATH, serve, methods=["GET", "HEAD"])
