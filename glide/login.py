"""Socket login (``api.auth`` with a JWT, ``authenticate`` with GlideIM's credential) and sessions.

A session is ``(uid, device)``: a second login on the same device kicks the first out (``notify.kickout``,
then close); other devices stay online, unless the operator asked for one device per user.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable

from glide._native import Envelope, Outgoing
from glide.chat.payload import envelope_data, field
from glide.context import Context
from glide.dispatch import Dispatcher
from glide.errors import GlideError
from glide.gateway.conn import Conn
from glide.gateway.hub import KICKED_OUT
from glide.logs import event

log = logging.getLogger("glide.login")


class LoginActions:
    def __init__(self, ctx: Context, after_login: Callable[[Conn], Awaitable[None]]) -> None:
        self.ctx = ctx
        self.after_login = after_login

    def register(self, dispatcher: Dispatcher) -> None:
        dispatcher.register("hello", self.on_hello, login_required=False)
        dispatcher.register("heartbeat", self.on_heartbeat, login_required=False)
        dispatcher.register("api.auth", self.on_api_auth, login_required=False)
        dispatcher.register("authenticate", self.on_authenticate, login_required=False)
        dispatcher.on_session_end.append(self.ctx.hooks.logged_out)

    def on_hello(self, conn: Conn, env: Envelope) -> None:
        """A client's hello only announces its version; nothing to answer."""

    def on_heartbeat(self, conn: Conn, env: Envelope) -> None:
        """Receiving any frame already refreshed the connection's liveness."""

    async def on_api_auth(self, conn: Conn, env: Envelope) -> None:
        try:
            data = envelope_data(env)
            token = field(data, "token") if isinstance(data, dict) else None
            if not isinstance(token, str) or not token:
                raise GlideError("data.Token: expected the JWT from the HTTP login")
            claims = await self.ctx.tokens.authenticate(token)
            await self._require_user(claims.uid)
            self._refuse_relogin(conn, claims.uid, claims.device)
        except GlideError as e:
            event(log, logging.INFO, "login refused", conn=conn.id, peer=conn.peer, why=e.message)
            conn.send(Outgoing("api.failed", e.message, seq=env.seq))
            return
        self._bind(conn, claims.uid, claims.device, "")
        reply = {"Token": token, "Uid": str(claims.uid), "Device": claims.device, "Server": None}
        await self._after(conn, Outgoing("api.success", reply, seq=env.seq))

    async def on_authenticate(self, conn: Conn, env: Envelope) -> None:
        try:
            data = envelope_data(env)
            credential = field(data, "credential") if isinstance(data, dict) else None
            if not isinstance(credential, str) or not credential:
                raise GlideError("data.credential: expected the credential from the HTTP login")
            creds = self.ctx.credentials.open(credential)
            if creds.timestamp <= await self.ctx.store.users.session_ended_at(creds.uid, creds.device):
                raise GlideError("credential revoked: this session logged out")
            await self._require_user(creds.uid)
            self._refuse_relogin(conn, creds.uid, creds.device)
        except GlideError as e:
            event(log, logging.INFO, "login refused", conn=conn.id, peer=conn.peer, why=e.message)
            conn.send(Outgoing("notify.error", e.message, seq=env.seq))
            return
        self._bind(conn, creds.uid, creds.device, creds.device_name)
        conn.ticket_secret = creds.secrets.message_deliver_secret  # its sends carry tickets (glide.auth.ticket)
        await self._after(conn, Outgoing("notify.success", None, seq=env.seq))

    async def _require_user(self, uid: int) -> None:
        if await self.ctx.store.users.user(uid) is None:
            raise GlideError("user does not exist")

    @staticmethod
    def _refuse_relogin(conn: Conn, uid: int, device: str) -> None:
        if conn.authenticated and (conn.uid, conn.device) != (uid, device):
            raise GlideError("already logged in as another session on this connection")

    def _bind(self, conn: Conn, uid: int, device: str, device_name: str) -> None:
        if conn.authenticated:
            return
        # Device ids are few ("1", "web", ...): one string each, not one per connection.
        conn.uid, conn.device, conn.device_name = uid, sys.intern(device), device_name
        # The address goes to the login's log line; not kept by every session (memory per connection).
        peer, conn.peer = conn.peer, ""
        conn.authenticated = True
        conn.syncing = True  # before the session is reachable: live pushes wait for the inbox replay
        event(log, logging.INFO, "login", conn=conn.id, uid=uid, device=device, peer=peer)
        kickout = Outgoing("notify.kickout", {"device_id": device, "device_name": device_name})
        for old in self.ctx.hub.bind(conn, single_device=self.ctx.config.single_device_per_uid):
            event(log, logging.INFO, "kicked out", conn=old.id, uid=old.uid, device=old.device, by=conn.id)
            old.send(kickout)
            old.authenticated = False
            old.close(KICKED_OUT, "kicked out by a newer login")

    async def _after(self, conn: Conn, reply: Outgoing) -> None:
        """The session made reachable from every node, then the login reply (a client told it is logged in
        can be reached at once, also by what is never stored, like message.cli), the application's hooks,
        then the inbox replay."""
        kickout = Outgoing("notify.kickout", {"device_id": conn.device, "device_name": conn.device_name})
        await self.ctx.hub.announce(conn, single_device=self.ctx.config.single_device_per_uid, kickout=kickout)
        conn.send(reply)
        self.ctx.hooks.logged_in(conn)
        await self.after_login(conn)

    def logout(self, uid: int, device: str) -> None:
        """Close the socket of a session whose token was revoked over HTTP (on whichever node it is)."""
        here = self.ctx.hub.close_session(uid, device, 1000, "logged out")
        event(log, logging.INFO, "logout", uid=uid, device=device, here=here)
