"""Per-target send tickets (GlideIM §2.6).

A connection that logged in with GlideIM's credential (``authenticate``) must present, on every
``message.chat`` / ``.retry`` / ``.resend`` and ``message.group``, the ticket ``POST /api/session/ticket``
issued for that target; otherwise the request is answered ``notify.forbidden`` with its seq (GlideIM's
client then fetches a ticket and retries once). Connections that logged in with a JWT (``api.auth``) send
without one, as on GlideIM's gateway: their token already proves who they are, and who may receive from
whom is enforced where the message is stored (blacklist / whitelist, group membership).

``ticket = hex(SHA1(secret + sender_uid + hex(SHA1(secret + to))))``, 40 lowercase hex characters, where
``secret`` is the **sender's** ``message_deliver_secret`` and ``to`` the envelope's target exactly as the
client writes it (a uid like ``"2"`` or a channel id). Comparison is case-insensitive and constant-time.
"""

from __future__ import annotations

import hashlib
import hmac

TICKET_LEN = 40

# notify.forbidden texts of GlideIM's gateway, in the order it checks them.
NO_SECRET = "no message deliver secret"
INVALID_TICKET = "invalid ticket"
TICKET_EXPIRED = "ticket expired"


def _sha1_hex(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def ticket(secret: str, sender_uid: int | str, to: int | str) -> str:
    """The ticket that lets ``sender_uid`` send to ``to``."""
    return _sha1_hex(f"{secret}{sender_uid}{_sha1_hex(f'{secret}{to}')}")


def verify_ticket(secret: str, sender_uid: int | str, to: int | str, presented: str) -> bool:
    """True if ``presented`` is the ticket for this sender and target."""
    return ticket_problem(secret, sender_uid, to, presented) is None


def ticket_problem(secret: str, sender_uid: int | str, to: int | str, presented: object) -> str | None:
    """None if the ticket is valid, else GlideIM's ``notify.forbidden`` text for the failure."""
    if not secret:
        return NO_SECRET
    if not isinstance(presented, str) or len(presented) != TICKET_LEN or not presented.isascii():
        return INVALID_TICKET
    expected = ticket(secret, sender_uid, to)
    if not hmac.compare_digest(presented.lower().encode(), expected.encode()):
        return TICKET_EXPIRED
    return None


# The actions a credential session needs a ticket for (the rest of the socket API needs none).
TICKETED_ACTIONS = frozenset(("message.chat", "message.chat.retry", "message.chat.resend", "message.group"))
FORBIDDEN = "notify.forbidden"


def send_ticket_problem(secret: str | None, sender_uid: int, to: str, presented: str) -> str | None:
    """The ``notify.forbidden`` text for a send, or None when it may go (no secret: not a credential login)."""
    if secret is None:
        return None
    return ticket_problem(secret, sender_uid, to, presented)
