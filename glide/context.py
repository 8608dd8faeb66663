"""The services the business core shares, passed explicitly to every feature."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from glide.auth.credential import CredentialService
from glide.auth.tokens import TokenService
from glide.config import Config
from glide.gateway.hub import LocalHub
from glide.hooks import Hooks
from glide.ids import MidGenerator
from glide.store.base import Store

log = logging.getLogger("glide")


@dataclass
class Context:
    config: Config
    store: Store
    tokens: TokenService
    credentials: CredentialService
    ids: MidGenerator
    hub: LocalHub
    hooks: Hooks
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background job whose failure is logged, not lost."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background job failed", exc_info=task.exception())

    async def join(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
