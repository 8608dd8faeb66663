"""E-mail verification codes for registration (GlideIM's ``auth/verifyCode``, checked by ``auth/register``).

A code is six digits, valid for CODE_TTL_S, good for MAX_ATTEMPTS wrong guesses, and only the newest one
of an address counts; an address gets a new code at most once per RESEND_S. Codes live in this node's
memory (a node restarted before the user registers asks for a new one). They go out by SMTP when the node
has an ``smtp_host``, else into the server log (a small deployment reads them there).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from glide.config import Config
from glide.errors import StorageError, TooManyRequests
from glide.logs import event

log = logging.getLogger("glide.auth")

CODE_TTL_S = 600
RESEND_S = 60
MAX_ATTEMPTS = 5
MAX_PENDING = 100_000  # addresses with an outstanding code, at most
SMTP_TIMEOUT_S = 10


@dataclass
class _Code:
    code: str
    issued_at: float
    attempts: int = 0


class VerificationCodes:
    def __init__(self, config: Config, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self._codes: dict[str, _Code] = {}

    async def send(self, email: str) -> None:
        """Issue a code for ``email`` and deliver it; raises TooManyRequests within RESEND_S of the last
        one, StorageError if the mail server refuses it."""
        key = email.strip().casefold()
        now = self.clock()
        current = self._codes.get(key)
        if current is not None and now - current.issued_at < RESEND_S:
            wait = RESEND_S - (now - current.issued_at)
            raise TooManyRequests(f"a code was sent to {email} moments ago: ask again later", retry_after_s=wait)
        self._expire(now)
        code = f"{secrets.randbelow(1_000_000):06d}"
        self._codes[key] = _Code(code, now)
        if self.config.smtp_host:
            try:
                await asyncio.to_thread(self._mail, email, code)
            except (OSError, smtplib.SMTPException) as e:
                del self._codes[key]
                raise StorageError(f"the verification e-mail could not be sent: {e}") from None
        else:
            event(log, logging.WARNING, "e-mail verification code (no smtp_host: not mailed)", email=email, code=code)

    def consume(self, email: str, code: object) -> bool:
        """Whether ``code`` is the valid code of ``email``; a right one is used up, a wrong one counts."""
        key = email.strip().casefold()
        current = self._codes.get(key)
        if current is None or self.clock() - current.issued_at > CODE_TTL_S:
            self._codes.pop(key, None)
            return False
        if isinstance(code, str) and hmac.compare_digest(code.strip(), current.code):
            del self._codes[key]
            return True
        current.attempts += 1
        if current.attempts >= MAX_ATTEMPTS:
            del self._codes[key]
        return False

    def _expire(self, now: float) -> None:
        if len(self._codes) < MAX_PENDING:
            return
        for key in [k for k, c in self._codes.items() if now - c.issued_at > CODE_TTL_S]:
            del self._codes[key]
        if len(self._codes) >= MAX_PENDING:
            raise TooManyRequests("too many verification codes outstanding: try again later", retry_after_s=RESEND_S)

    def _mail(self, to: str, code: str) -> None:
        c = self.config
        message = EmailMessage()
        message["From"] = c.smtp_from or f"glide <noreply@{c.smtp_host}>"
        message["To"] = to
        message["Subject"] = f"Your verification code: {code}"
        message.set_content(
            f"Your verification code is {code}.\n\nIt is valid for {CODE_TTL_S // 60} minutes. "
            "If you did not ask for it, ignore this message.\n"
        )
        with smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
            if c.smtp_starttls:
                smtp.starttls()
            if c.smtp_user:
                smtp.login(c.smtp_user, c.smtp_password)
            smtp.send_message(message)
