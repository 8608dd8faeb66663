"""The HTTP API (GlideIM routes and envelope) as a Starlette ASGI application, mountable anywhere."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount

from glide.api.auth import AuthRoutes
from glide.api.envelope import ApiContext, ApiHooks, Cors, http_error
from glide.api.msg import MsgRoutes
from glide.api.session import SessionRoutes
from glide.api.user import UserRoutes
from glide.auth.credential import CredentialService
from glide.auth.tokens import TokenService
from glide.config import Config
from glide.ids import MidGenerator
from glide.store.base import Store

__all__ = ["ApiHooks", "build_api"]


def build_api(
    *,
    store: Store,
    config: Config,
    tokens: TokenService,
    credentials: CredentialService,
    ids: MidGenerator,
    hooks: ApiHooks | None = None,
) -> Starlette:
    """The API with every route under ``/api/``. ``ids`` must be the node's one MidGenerator (the one the
    chat flow uses), so ids from ``msg/id`` never collide with stored ones."""
    ctx = ApiContext(store=store, config=config, tokens=tokens, credentials=credentials, ids=ids, hooks=hooks)
    routes = [
        *AuthRoutes(ctx).routes(),
        *UserRoutes(ctx).routes(),
        *SessionRoutes(ctx).routes(),
        *MsgRoutes(ctx).routes(),
    ]
    return Starlette(
        routes=[Mount("/api", routes=routes)],
        middleware=[Middleware(Cors)],
        exception_handlers={HTTPException: http_error, Exception: http_error},
    )
