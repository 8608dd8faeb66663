"""Errors shared by every layer.

Each error carries the GlideIM API ``code`` clients see in ``{"Code":…,"Msg":…}`` and the HTTP status the
API answers with; socket handlers use ``message`` for ``notify.error`` frames.
"""

from __future__ import annotations


class GlideError(Exception):
    """Base of every expected failure: a clear ``message`` for the client, a GlideIM ``code``."""

    code: int = 500
    http_status: int = 500

    def __init__(self, message: str, *, code: int | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status


class BadRequest(GlideError):
    """The input is malformed or out of range; the message names the field."""

    code = 300
    http_status = 400


class AuthError(GlideError):
    """Missing, invalid, expired or revoked token / credential, or wrong password (code 1002)."""

    code = 401
    http_status = 401


class NotAllowed(GlideError):
    """Authenticated, but this user may not do this (e.g. recall someone else's message)."""

    code = 403
    http_status = 403


class NotFound(GlideError):
    """The thing does not exist. GlideIM code 1001 ("not found"); unknown users use 2002."""

    code = 1001
    http_status = 404


class UserNotFound(NotFound):
    """The user does not exist (GlideIM code 2002)."""

    code = 2002


class AlreadyExists(GlideError):
    """Unique key taken, e.g. the account or e-mail is registered (GlideIM code 1004)."""

    code = 1004
    http_status = 409


class TooLate(GlideError):
    """A time window has passed, e.g. the recall window of a message."""

    code = 410
    http_status = 410


class TooManyRequests(GlideError):
    """An abuse limit refused this request; ``retry_after_s`` says when to try again."""

    code = 429
    http_status = 429

    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StorageError(GlideError):
    """The storage backend failed (disk full, I/O error, corrupted file, closed store)."""

    code = 1001
    http_status = 503


class ConfigError(GlideError):
    """A setting is unknown or has a bad value; the message names the setting and its source."""

    code = 500
    http_status = 500
