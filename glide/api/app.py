"""``GET /api/app/info`` (live node statistics, GlideIM Gen-1) and ``GET /api/app/release``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

import glide
from glide.api.envelope import ApiContext, Body, authenticate, is_admin
from glide.api.registry import ApiRoute, Registry
from glide.api.schema import ID_OUT, STR, array, out
from glide.errors import NotFound
from glide.gateway.conn import Conn
from glide.hooks import Hooks
from glide.ids import wall_ms

if TYPE_CHECKING:
    from glide.gateway.gateway import GatewayBase

VERSION_CODE = 1
RELEASE_URL = "https://pypi.org/project/glide-im/"
MAX_LISTED_CLIENTS = 100  # app/info lists at most this many sessions: the answer stays small on a big node

ONLINE_CLIENT = out(ID=STR, AliveAt=ID_OUT, ConnectionAt=ID_OUT, Device=STR)
SERVER_INFO = out(Online=ID_OUT, MaxOnline=ID_OUT, MessageSent=ID_OUT, StartAt=ID_OUT, OnlineCli=array(ONLINE_CLIENT))
RELEASE = out(VersionCode=ID_OUT, VersionName=STR, UpdateAt=ID_OUT, DownloadUrl=STR, Description=STR)


def installed_at() -> int:
    """When this glide was installed (Unix seconds): GlideIM's release ``UpdateAt``."""
    try:
        return int(Path(glide.__file__).stat().st_mtime)
    except OSError:
        return 0


class NodeStats:
    """Counts what ``app/info`` reports: logins by the server's own hook, stored messages by the hooks'
    counter (no hook per message). ``snapshot`` is the provider ``build_api(stats=…)`` takes."""

    def __init__(self, gateway: GatewayBase, hooks: Hooks) -> None:
        self.gateway = gateway
        self.started_at = wall_ms()
        self.max_online = 0
        self.logins = 0
        self.hooks = hooks
        hooks.login.append(self._logged_in)

    def _logged_in(self, conn: Conn) -> None:
        self.logins += 1
        self.max_online = max(self.max_online, self.gateway.hub.online_count())

    @property
    def messages(self) -> int:
        """1:1 messages stored since start."""
        return self.hooks.messages_stored

    def snapshot(self) -> dict[str, Any]:
        """GlideIM's ``{Online, MaxOnline, MessageSent, StartAt, OnlineCli}``; times in Unix seconds, as GlideIM
        and its web client have them."""
        hub = self.gateway.hub
        online = hub.online_count()
        # Connection times are stamps of the gateway's monotonic clock (its now_ms, advanced once per tick):
        # shift them onto the wall clock.
        offset = wall_ms() - self.gateway.now_ms
        clients = []
        for conn in hub.all()[:MAX_LISTED_CLIENTS]:
            clients.append(
                {
                    "ID": f"{conn.uid}_{conn.device}",
                    "AliveAt": (int(getattr(conn, "last_recv", 0)) + offset) // 1000,
                    "ConnectionAt": (int(getattr(conn, "opened_at", 0)) + offset) // 1000,
                    "Device": conn.device,
                }
            )
        return {
            "Online": online,
            "MaxOnline": max(self.max_online, online),
            "MessageSent": self.messages,
            "StartAt": self.started_at // 1000,
            "OnlineCli": clients,
        }


async def info(ctx: ApiContext, request: Request) -> Any:
    """The node's counters for any signed-in user; the list of sessions (who is online, on which device,
    since when) only for the operator's ``admin_token``."""
    admin = is_admin(ctx, request)
    if not admin:
        await authenticate(ctx, request)
    if ctx.stats is None:
        raise NotFound("server statistics are not available: this API is served without a gateway")
    stats = ctx.stats()
    return stats if admin else {**stats, "OnlineCli": []}


async def release(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    return {
        "VersionCode": VERSION_CODE,
        "VersionName": glide.__version__,
        "UpdateAt": installed_at(),
        "DownloadUrl": RELEASE_URL,
        "Description": "glide, a GlideIM-compatible IM server",
    }


def register(reg: Registry) -> None:
    reg.add(
        ApiRoute(
            "app/info",
            "Live statistics of this node: online count, peak, messages stored since start; the online "
            "sessions only for the operator (bearer token: the node's admin_token)",
            http_handler=info,
            methods=("GET", "POST"),
            socket=False,
            response=SERVER_INFO,
            errors=(404,),
        )
    )
    reg.route(
        "app/release",
        summary="The server release",
        methods=("GET", "POST"),
        auth=False,
        response=RELEASE,
    )(release)
