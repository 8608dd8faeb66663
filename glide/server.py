"""``Server``: a whole glide node on the running asyncio loop — the gateway, the HTTP API and the store.

Embedding::

    server = glide.Server(glide.Config(ws_port=0, http_port=0, data_dir="state"))

    @server.action("echo")
    async def echo(conn, env):
        return env.data()          # replied as api.success with the request's seq

    @server.on_login
    def hello(conn): ...

    await server.start()           # inside your app's loop
    ...
    await server.stop()
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from glide._native import Envelope, Outgoing
from glide.api import build_api
from glide.api.app import NodeStats
from glide.api.http_server import EmbeddedUvicorn, http_server
from glide.api.socket import register_api_actions
from glide.auth.credential import CredentialService
from glide.auth.tokens import TokenService
from glide.chat.actions import ChatActions
from glide.config import Config
from glide.context import Context
from glide.dispatch import Dispatcher
from glide.errors import ConfigError, GlideError
from glide.gateway.conn import Conn
from glide.gateway.gateway import Gateway, monotonic_ms
from glide.gateway.native import NativeGateway
from glide.group.actions import GroupActions
from glide.group.world import WorldChannel
from glide.hooks import Hooks, LoginHook, MessageHook
from glide.ids import MidGenerator
from glide.login import LoginActions
from glide.metrics import NodeCollector, exposition
from glide.store import open_store

if TYPE_CHECKING:
    from glide.cluster import ClusterHub

log = logging.getLogger("glide")
KEEP_NODE_S = 2.0  # how often a node checks that it still holds its node id

ActionHandler = Callable[[Conn, Envelope], Any]
# The actions a user sends to others: what the per-connection message rate limit counts.
SENT_MESSAGES = frozenset(("message.chat", "message.chat.retry", "message.chat.resend", "message.group", "message.cli"))


class _LogoutBridge:
    """Lets the HTTP API's logout close that session's socket."""

    def __init__(self, server: Server) -> None:
        self.server = server

    async def on_logout(self, uid: int, device: str) -> None:
        self.server.login.logout(uid, device)


class Server:
    def __init__(self, config: Config | None = None, *, clock: Callable[[], int] = monotonic_ms) -> None:
        self.config = config or Config()
        self.hooks = Hooks()
        self.dispatcher = Dispatcher(
            send_rate=self.config.message_rate, send_burst=self.config.message_burst, limited=SENT_MESSAGES
        )
        self.gateway: Gateway | NativeGateway
        if self.config.driver == "native":
            self.gateway = NativeGateway(self.config, clock=None if clock is monotonic_ms else clock)
        else:
            self.gateway = Gateway(self.config, clock=clock)
        self.gateway.dispatcher = self.dispatcher
        self.ctx: Context | None = None
        self.ws_port = self.http_port = 0
        self.tcp_port: int | None = None
        self._http: EmbeddedUvicorn | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._custom: list[tuple[str, ActionHandler, bool]] = []
        self._watch: asyncio.Task[None] | None = None
        self._cluster: ClusterHub | None = None
        self.node_id = 0
        # Set when this node lost its node id to another one (it must stop; glide serve exits).
        self.lost_node = asyncio.Event()

    # embedding API

    def action(self, name: str, *, login_required: bool = True) -> Callable[[ActionHandler], ActionHandler]:
        """Register a handler for a custom action. Its return value (if not None) is replied as
        ``api.success`` with the request's seq; a ``GlideError`` becomes ``api.failed``."""

        def register(handler: ActionHandler) -> ActionHandler:
            self._custom.append((name, handler, login_required))
            if self.ctx is not None:
                self._register_custom(name, handler, login_required)
            return handler

        return register

    def on_login(self, hook: LoginHook) -> LoginHook:
        self.hooks.login.append(hook)
        return hook

    def on_logout(self, hook: LoginHook) -> LoginHook:
        self.hooks.logout.append(hook)
        return hook

    def on_message(self, hook: MessageHook) -> MessageHook:
        self.hooks.message.append(hook)
        return hook

    def deliver(self, uid: int, action: str, data: Any = None) -> int:
        """Push a server envelope to every online device of ``uid``; returns how many devices got it."""
        return self.gateway.hub.deliver(uid, Outgoing(action, data))

    @property
    def api(self) -> Any:
        """The HTTP API as an ASGI application (mount it into your own app instead of ``http_port``)."""
        return self._api

    # lifecycle

    async def start(self, *, serve_http: bool = True) -> None:
        cfg = self.config
        cfg.ensure_secrets()
        self.ws_port = await self.gateway.listen("ws", cfg.host, cfg.ws_port)
        if not cfg.public_ws_url and cfg.ws_port == 0:
            host = "127.0.0.1" if cfg.host in ("0.0.0.0", "") else cfg.host
            # login responses advertise the bound port
            cfg.public_ws_url = f"{cfg.ws_scheme}://{host}:{self.ws_port}/ws"
        store = await open_store(cfg)
        try:
            node = await store.claim_node(cfg.node_id)
            if cfg.redis:
                await self._join_cluster(node)
        except BaseException:
            await store.close()
            raise
        self.node_id = node
        ids = MidGenerator(node, after=max(await store.messages.last_mid(), await store.groups.last_mid()))
        tokens = TokenService(cfg.jwt_secret, cfg.token_ttl_s, cfg.guest_token_ttl_s, revocations=store.users)
        credentials = CredentialService(cfg.secret_key, cfg.credential_ttl_ms)
        self.ctx = ctx = Context(cfg, store, tokens, credentials, ids, self.gateway.hub, self.hooks)
        chat = ChatActions(ctx)
        world = WorldChannel(ctx)
        await world.start()

        async def after_login(conn: Conn) -> None:
            await chat.push_inbox(conn)  # what waited for the user first, then it is announced
            await world.logged_in(conn)

        if self._cluster is not None:
            self._cluster.catch_up = chat.catch_up
        self._watch = asyncio.get_running_loop().create_task(self._keep_node())
        self.dispatcher.pace = self.gateway.paced(store.pace)
        self.login = LoginActions(ctx, after_login=after_login)
        self.login.register(self.dispatcher)
        self.dispatcher.on_session_end.append(world.logged_out)
        chat.register(self.dispatcher)
        GroupActions(ctx).register(self.dispatcher)
        for name, handler, login_required in self._custom:
            self._register_custom(name, handler, login_required)
        # The HTTP API; every route is also a socket action (api.<route>) through the same handlers.
        stats = NodeStats(self.gateway, self.hooks)
        self._api = build_api(
            store=store,
            config=cfg,
            tokens=tokens,
            credentials=credentials,
            ids=ids,
            hooks=_LogoutBridge(self),
            hub=self.gateway.hub,
            stats=stats.snapshot,
            metrics=exposition(NodeCollector(self.gateway, self.dispatcher, store, stats)),
        )
        register_api_actions(self.dispatcher, self._api)
        if cfg.tcp_port is not None:
            self.tcp_port = await self.gateway.listen("tcp", cfg.host, cfg.tcp_port)
        await self.gateway.start()
        if serve_http:
            await self._start_http()
        log.info(
            "glide listening: %s://%s:%d/ws, %s://%s:%d/api%s",
            cfg.ws_scheme,
            cfg.host,
            self.ws_port,
            "https" if cfg.tls_cert else "http",
            cfg.host,
            self.http_port,
            f", tcp{'+tls' if cfg.tls_cert else ''} {cfg.host}:{self.tcp_port}" if self.tcp_port else "",
        )

    async def _join_cluster(self, node: int) -> None:
        from redis.exceptions import RedisError  # the `redis` extra: only clusters need it

        from glide.cluster import ClusterHub

        hub = ClusterHub(self.config.redis, node, spawn=self._spawn, send_many=self.gateway.send_many)
        try:
            await hub.start()
        except (RedisError, OSError) as e:
            await hub.close()
            raise ConfigError(f"redis: {self.config.redis} cannot be reached: {e}") from None
        self.gateway.hub = self._cluster = hub

    def _spawn(self, job: Awaitable[Any]) -> None:
        if self.ctx is not None:
            self.ctx.spawn(job)  # type: ignore[arg-type]

    async def _keep_node(self) -> None:
        """Two nodes must never issue mids with one node id: stop when the store says another took ours."""
        assert self.ctx is not None
        while True:
            await asyncio.sleep(KEEP_NODE_S)
            try:
                await self.ctx.store.keep_node()
            except ConfigError as e:
                log.critical("node id lost, stopping: %s", e.message)
                self.lost_node.set()
                return
            except GlideError as e:  # the database is away: try again at the next check
                log.warning("node id not checked: %s", e.message)
            except Exception:  # never let the watch die: a node without it could share an id unnoticed
                log.exception("node id check failed")

    async def _start_http(self) -> None:
        cfg = self.config
        sock = socket.create_server((cfg.host, cfg.http_port), reuse_port=False)
        sock.setblocking(False)
        self.http_port = sock.getsockname()[1]
        self._http = http_server(
            self._api,
            header_timeout_s=cfg.http_header_timeout_s,
            body_timeout_s=cfg.http_body_timeout_s,
            max_connections=cfg.http_max_connections,
            tls=(cfg.tls_cert, cfg.tls_key) if cfg.tls_cert else None,
        )
        self._http_task = asyncio.get_running_loop().create_task(self._http.serve(sockets=[sock]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        """Stop accepting, close every connection with 1001, finish in-flight work, flush the store."""
        if self._watch is not None:
            self._watch.cancel()
        await self.gateway.stop()
        await self.gateway.hub.close()
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            await self._http_task
        await self.dispatcher.join()
        if self.ctx is not None:
            await self.ctx.join()
            await self.ctx.store.close()

    # internals

    def _register_custom(self, name: str, handler: ActionHandler, login_required: bool) -> None:
        async def run(conn: Conn, env: Envelope) -> None:
            try:
                result = handler(conn, env)
                if inspect.isawaitable(result):
                    result = await result
            except GlideError as e:
                conn.send(Outgoing("api.failed", e.message, seq=env.seq))
                return
            if result is not None:
                conn.send(Outgoing("api.success", result, seq=env.seq))

        self.dispatcher.register(name, run, login_required=login_required)
