"""Event hooks for applications that embed glide: login, logout and stored messages."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from glide.gateway.conn import Conn
from glide.store.base import ChatMessage

log = logging.getLogger("glide.hooks")

LoginHook = Callable[[Conn], Any]
MessageHook = Callable[[Conn, ChatMessage], Any]


class Hooks:
    """Registered callbacks; each may be a plain function or a coroutine function. A failing hook is logged
    and never breaks the message flow."""

    def __init__(self) -> None:
        self.login: list[LoginHook] = []
        self.logout: list[LoginHook] = []
        self.message: list[MessageHook] = []
        self.messages_stored = 0  # 1:1 messages stored since start (app/info, metrics): no hook per message
        self._tasks: set[asyncio.Future[Any]] = set()

    def logged_in(self, conn: Conn) -> None:
        for hook in self.login:
            self._run(hook, conn)

    def logged_out(self, conn: Conn) -> None:
        for hook in self.logout:
            self._run(hook, conn)

    def message_stored(self, conn: Conn, message: ChatMessage) -> None:
        """Run the message hooks (the caller counts ``messages_stored``: the message path, one addition per
        message and no call when no hook is registered)."""
        for hook in self.message:
            self._run(hook, conn, message)

    def _run(self, hook: Callable[..., Any], *args: Any) -> None:
        try:
            result = hook(*args)
        except Exception:
            log.exception("hook %r failed", hook)
            return
        if result is not None and inspect.isawaitable(result):  # a plain hook returns None: no test to pay
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("hook failed", exc_info=task.exception())
