"""Rules of the user store that every backend shares: the login namespace, new-account checks, secrets."""

from __future__ import annotations

import secrets
import string

from glide.errors import BadRequest
from glide.store.checks import check_text

SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_LEN = 32
REVOKED_PURGE = 100  # expired revocations deleted per revoke_token call (a bounded purge)


def login_key(login: str) -> str:
    """Accounts and e-mails share one case-insensitive login namespace."""
    return login.strip().casefold()


def new_account_keys(account: str, email: str | None, nickname: str, avatar: str, password_hash: str) -> dict[str, str]:
    """Check a new account's fields; its login keys (each naming the field it came from)."""
    for field, value in (
        ("account", account),
        ("nickname", nickname),
        ("avatar", avatar),
        ("password_hash", password_hash),
    ):
        check_text(value, field)
    if email is not None:
        check_text(email, "email")
    if not account.strip():
        raise BadRequest("account: must not be empty")
    keys = {login_key(account): "account"}
    if email:
        keys.setdefault(login_key(email), "email")
    return keys


def new_deliver_secret() -> str:
    """A user's ``message_deliver_secret`` (the key of its send tickets)."""
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LEN))
