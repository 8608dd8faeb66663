"""What both baseline servers share: command line, login token, frames. Deliberately plain Python."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
from collections.abc import Awaitable, Callable
from typing import Any

HELLO = json.dumps({"ver": 1, "action": "hello", "data": {"heartbeat_interval": 30}})


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--jwt-secret", default="", help="verify api.auth tokens (HS256); without it, trust the payload")
    p.add_argument("--no-uvloop", action="store_true", help="plain asyncio event loop")
    return p.parse_args()


def uid_from_token(token: object, secret: str) -> str | None:
    """The ``uid`` claim of a JWT, verified when a secret is given; None if unusable."""
    if not isinstance(token, str):
        return None
    try:
        if secret:
            import jwt

            payload = jwt.decode(token, secret, algorithms=["HS256"])
        else:
            part = token.split(".")[1]
            payload = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except Exception:
        return None
    uid = payload.get("uid") if isinstance(payload, dict) else None
    if isinstance(uid, bool) or not isinstance(uid, int | str) or str(uid) == "":
        return None
    return str(uid)


def frame(action: str, data: Any = None, seq: int = 0) -> str:
    msg: dict[str, Any] = {"ver": 1, "action": action, "data": data}
    if seq:
        msg["seq"] = seq
    return json.dumps(msg)


def run(main: Callable[[argparse.Namespace, asyncio.Event], Awaitable[None]], args: argparse.Namespace) -> None:
    """Run ``main`` until SIGINT/SIGTERM, on uvloop unless asked not to."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(args, stop)

    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(runner())
            return
    asyncio.run(runner())
