"""The OpenAPI 3.1 document of the API, generated from the route registry (so it lists exactly the routes
served, with the request bodies and ``Data`` schemas they declare), served at ``GET /api/openapi.json``.

Every answer is the ``{Code, Msg, Data}`` envelope: 200 with ``Code`` 100 and the route's ``Data``, or an
error status with the GlideIM code, a message and ``Data: null``. Each operation also names its socket
action (``x-socket-action``) when it is callable over the long connection.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glide.api.registry import ApiRoute, Registry, Schema

TITLE = "glide HTTP API"
DESCRIPTION = (
    "GlideIM-compatible IM API. Every response is the envelope {Code, Msg, Data}; Code 100 is success. "
    "Request keys match case-insensitively and unknown keys are ignored. Authenticated routes take "
    "`Authorization: Bearer <token>` (from auth/signin); over the WebSocket, a route `a/b/c` is the action "
    "`api.a.b.c` answered by `api.success` / `api.failed` with the request's seq."
)
STATUS_TEXT = {
    400: "Bad input: the message names the field (Code 300 and route-specific codes)",
    401: "Missing, invalid, expired or revoked token; wrong password",
    403: "Not allowed for this caller",
    404: "Not found (unknown user, group, message, contact, request)",
    409: "Already exists",
    410: "Too late (e.g. the recall window passed)",
    413: "Request body too large (1 MiB)",
}

ERROR_ENVELOPE: Schema = {
    "type": "object",
    "properties": {"Code": {"type": "integer"}, "Msg": {"type": "string"}, "Data": {"type": "null"}},
    "required": ["Code", "Msg", "Data"],
    "additionalProperties": False,
}


def success_envelope(data: Schema | None) -> Schema:
    return {
        "type": "object",
        "properties": {"Code": {"const": 100}, "Msg": {"type": "string"}, "Data": data if data is not None else {}},
        "required": ["Code", "Msg", "Data"],
        "additionalProperties": False,
    }


def _json(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def error_statuses(route: ApiRoute, method: str) -> list[int]:
    """Every error status the route can answer: bad input, auth, body size, plus its declared ones."""
    statuses = {400, *route.errors}
    if route.auth or route.http_handler is not None:
        statuses.add(401)
    if method != "GET":
        statuses.add(413)
    return sorted(statuses)


def operation(route: ApiRoute, method: str) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{route.path.replace('/', '_')}_{method.lower()}",
        "summary": route.summary,
        "tags": [route.path.split("/")[0]],
        "security": [{"bearer": []}] if route.auth else [],
        "responses": {
            "200": {"description": "Success: Code 100", "content": _json(success_envelope(route.response))},
            **{
                str(status): {"description": STATUS_TEXT.get(status, "Error"), "content": _json(ERROR_ENVELOPE)}
                for status in error_statuses(route, method)
            },
        },
    }
    if route.over_socket:
        op["x-socket-action"] = route.action
    if method != "GET" and route.request is not None:
        # An empty body reads as {}: a body is needed only when the route has required keys.
        op["requestBody"] = {"required": bool(route.request.get("required")), "content": _json(route.request)}
    return op


def openapi_document(registry: Registry, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in registry:
        paths[f"/api/{route.path}"] = {method.lower(): operation(route, method) for method in route.methods}
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": version, "description": DESCRIPTION},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def openapi_endpoint(registry: Registry, version: str) -> Any:
    document = openapi_document(registry, version)

    async def serve(request: Request) -> Response:
        return JSONResponse(document)

    return serve
