"""Operational logs: one line per event (a connection opened or closed, a login, a kick-out, a timeout, a
slow consumer dropped, an HTTP request), as plain text or JSON, never with message content.

Events are logged with ``event(logger, level, name, **fields)``; the fields become ``key=value`` pairs in
plain text and keys of the JSON object.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOG_FORMATS = ("plain", "json")
_FIELDS = "glide_fields"


def event(logger: logging.Logger, level: int, name: str, **fields: Any) -> None:
    """Log event ``name`` with its fields (cheap when the level is off)."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={_FIELDS: fields})


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields: dict[str, Any] = getattr(record, _FIELDS, {})
        return line + "".join(f" {k}={v}" for k, v in fields.items()) if fields else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, _FIELDS, {}),
        }
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"), default=str)


def configure(level: str, fmt: str = "plain") -> None:
    """The process's logging for ``glide serve``: one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.Formatter.converter = time.gmtime
