"""The route registry: every API route once, served over HTTP and over the long connection alike.

A route is a transport-agnostic handler ``async (ctx, uid, device, body) -> data``: ``uid``/``device`` are
the authenticated caller (0 / "" on public routes), ``body`` the request object with case-insensitive keys.
HTTP serves it at ``/api/<path>`` inside the ``{Code, Msg, Data}`` envelope; the socket serves it as the
action ``api.<path with / as .>`` answered by ``api.success`` / ``api.failed`` with the request's seq
(:mod:`glide.api.socket`). The OpenAPI document is generated from the same entries
(:mod:`glide.api.openapi`), so what is documented is what is served.

Routes that need the HTTP request itself (sign-in, token refresh, logout) register an ``http_handler``
instead and are HTTP-only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from glide.api.envelope import ApiContext, Body, authenticate, error_response, failure, ok, read_body
from glide.errors import GlideError

log = logging.getLogger("glide.api")

Schema = dict[str, Any]
ApiHandler = Callable[[ApiContext, int, str, Body], Awaitable[Any]]
HttpHandler = Callable[[ApiContext, Request], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One API route. ``path`` is relative to ``/api/`` (e.g. ``"user/info"``)."""

    path: str
    summary: str
    handler: ApiHandler | None = None
    http_handler: HttpHandler | None = None
    methods: tuple[str, ...] = ("POST",)
    auth: bool = True
    socket: bool = True
    request: Schema | None = None  # JSON Schema of the body; None = the route reads no body
    response: Schema | None = None  # JSON Schema of ``Data``; None = anything
    errors: tuple[int, ...] = ()  # HTTP statuses of the business errors it may answer besides 400/401

    @property
    def action(self) -> str:
        """The socket action name: ``api.`` + the path with ``/`` as ``.``."""
        return "api." + self.path.replace("/", ".")

    @property
    def over_socket(self) -> bool:
        return self.socket and self.handler is not None


class Registry:
    """An ordered set of routes, unique by path and by socket action."""

    def __init__(self) -> None:
        self._routes: dict[str, ApiRoute] = {}
        self._actions: set[str] = set()

    def add(self, route: ApiRoute) -> ApiRoute:
        if (route.handler is None) == (route.http_handler is None):
            raise ValueError(f"{route.path}: give exactly one of handler and http_handler")
        if route.path.startswith("/") or route.path.endswith("/") or not route.path:
            raise ValueError(f"{route.path!r}: a path is relative to /api/, without leading or trailing /")
        if route.path in self._routes:
            raise ValueError(f"{route.path}: registered twice")
        if route.over_socket:
            if route.action in self._actions:
                raise ValueError(f"{route.path}: socket action {route.action} registered twice")
            self._actions.add(route.action)
        self._routes[route.path] = route
        return route

    def route(
        self,
        path: str,
        *,
        summary: str,
        request: Schema | None = None,
        response: Schema | None = None,
        methods: Sequence[str] = ("POST",),
        auth: bool = True,
        socket: bool = True,
        errors: Sequence[int] = (),
    ) -> Callable[[ApiHandler], ApiHandler]:
        """Decorator form of :meth:`add` for an ``async (ctx, uid, device, body)`` handler."""

        def register(handler: ApiHandler) -> ApiHandler:
            self.add(
                ApiRoute(
                    path,
                    summary,
                    handler=handler,
                    methods=tuple(methods),
                    auth=auth,
                    socket=socket,
                    request=request,
                    response=response,
                    errors=tuple(errors),
                )
            )
            return handler

        return register

    def __iter__(self) -> Iterator[ApiRoute]:
        return iter(self._routes.values())

    def __len__(self) -> int:
        return len(self._routes)

    def get(self, path: str) -> ApiRoute | None:
        return self._routes.get(path)

    def starlette_routes(self, ctx: ApiContext) -> list[BaseRoute]:
        """Starlette routes (relative to the ``/api`` mount) for every registered route."""
        return [Route(f"/{r.path}", http_endpoint(ctx, r), methods=list(r.methods)) for r in self]


async def call(ctx: ApiContext, route: ApiRoute, uid: int, device: str, body: Body) -> Any:
    """Run a transport-agnostic route for an already authenticated caller."""
    assert route.handler is not None
    return await route.handler(ctx, uid, device, body)


def http_endpoint(ctx: ApiContext, route: ApiRoute) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of ``route``: authenticate (first), read the body, run, wrap in the envelope."""

    async def run(request: Request) -> Response:
        try:
            if route.http_handler is not None:
                return ok(await route.http_handler(ctx, request))
            uid, device = 0, ""
            if route.auth:
                claims, _ = await authenticate(ctx, request)
                uid, device = claims.uid, claims.device
            body = await read_body(request) if request.method != "GET" else Body({})
            return ok(await call(ctx, route, uid, device, body))
        except GlideError as e:
            return error_response(e)
        except ClientDisconnect:
            return failure(400, 300, "client disconnected")
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            return failure(500, 500, "internal error")

    return run
