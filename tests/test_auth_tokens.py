"""Passwords (argon2id), JWT tokens with revocation, and send tickets."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import jwt
import pytest

from glide.auth.passwords import NO_PASSWORD, burn_verify, hash_password, needs_rehash, verify_password
from glide.auth.ticket import INVALID_TICKET, NO_SECRET, TICKET_EXPIRED, ticket, ticket_problem, verify_ticket
from glide.auth.tokens import Claims, TokenService
from glide.errors import AuthError
from glide.store import SqliteStore

SECRET = "jwt-secret-for-tests-0123456789abcdef"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# passwords


def test_password_hash_and_verify() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$") and "correct horse" not in h
    assert verify_password(h, "correct horse")
    assert not verify_password(h, "correct horsE")
    assert hash_password("correct horse") != h  # salted
    assert not needs_rehash(h)


@pytest.mark.parametrize("stored", [NO_PASSWORD, "", "plain-text", "$argon2id$v=19$garbage"])
def test_unusable_hashes_never_verify(stored: str) -> None:
    assert not verify_password(stored, "")
    assert not verify_password(stored, "anything")
    assert not needs_rehash(stored)


def test_burn_verify_does_not_raise() -> None:
    burn_verify("whatever")


# tokens


def test_issue_and_verify_claims() -> None:
    clock = Clock(1_700_000_000)
    svc = TokenService(SECRET, 3600, 7200, clock=clock)
    token = svc.issue(42, "2")
    payload = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert payload["uid"] == 42 and payload["device"] == 2  # numeric device as a JSON number (GlideIM)
    assert payload["ver"] == 1 and payload["app_id"] == 1 and payload["iat"] == 1_700_000_000
    assert payload["exp"] == 1_700_003_600 and len(payload["jti"]) == 32
    claims = svc.verify(token)
    assert claims == Claims(uid=42, device="2", jti=payload["jti"], exp=1_700_003_600, issued_ms=1_700_000_000_000)
    assert payload["iatms"] == 1_700_000_000_000  # a logout kills tokens issued up to its millisecond
    guest = svc.verify(svc.issue(43, "-1", guest=True))
    assert guest.exp == 1_700_007_200 and guest.device == "-1"
    assert svc.verify(svc.issue(44, "web")).device == "web"


def test_expired() -> None:
    clock = Clock(1_700_000_000)
    svc = TokenService(SECRET, 60, 60, clock=clock)
    token = svc.issue(1, "1")
    clock.t += 59
    svc.verify(token)
    clock.t += 1
    with pytest.raises(AuthError, match="token expired"):
        svc.verify(token)


def test_wrong_signature() -> None:
    token = TokenService("another-secret-0123456789abcdefghij", 60, 60).issue(1, "1")
    with pytest.raises(AuthError, match="invalid token signature"):
        TokenService(SECRET, 60, 60).verify(token)


@pytest.mark.parametrize(
    "token",
    ["", "   ", "abc", "a.b.c", "a.b", "....", "eyJhbGciOiJIUzI1NiJ9.e30", "x" * 10000, "é.é.é"],
)
def test_malformed(token: str) -> None:
    with pytest.raises(AuthError):
        TokenService(SECRET, 60, 60).verify(token)


def test_alg_none_is_refused() -> None:
    token = jwt.encode({"uid": 1, "exp": time.time() + 60}, key=None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(AuthError):
        TokenService(SECRET, 60, 60).verify(token)


def forge(payload: dict[str, object]) -> str:
    return jwt.encode(payload, SECRET, algorithm="HS256")


def test_glideim_tokens_are_accepted() -> None:
    """GlideIM's api: uid int64 or numeric string, device int64, no jti."""
    svc = TokenService(SECRET, 60, 60)
    exp = int(time.time()) + 60
    token = forge({"exp": exp, "uid": "543629", "device": 2, "ver": 1, "app_id": 1})
    claims = svc.verify(token)
    assert (claims.uid, claims.device, claims.exp) == (543629, "2", exp)
    # a stable id derived from the token, so it can be revoked
    assert claims.jti == "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    assert svc.verify(forge({"exp": exp, "uid": 5})).device == ""


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"uid": "abc"}, "uid"),
        ({"uid": 0}, "uid"),
        ({"uid": -3}, "uid"),
        ({"uid": True}, "uid"),
        ({"uid": 2**64}, "uid"),
        ({"uid": 1.5}, "uid"),
        ({"uid": None}, "uid"),
        ({"uid": 1, "device": [1]}, "device"),
        ({"uid": 1, "device": "d" * 65}, "device"),
        ({"uid": 1, "jti": 5}, "jti|JWT ID"),
        ({"uid": 1, "jti": ""}, "jti"),
    ],
)
def test_bad_claims(payload: dict[str, object], message: str) -> None:
    with pytest.raises(AuthError, match=message):
        TokenService(SECRET, 60, 60).verify(forge({"exp": time.time() + 60, **payload}))


@pytest.mark.parametrize("exp", [None, "soon", True, float("nan"), float("inf"), -1, 2**60])
def test_bad_exp(exp: object) -> None:
    payload: dict[str, object] = {"uid": 1} if exp is None else {"uid": 1, "exp": exp}
    with pytest.raises(AuthError, match="exp"):
        TokenService(SECRET, 60, 60).verify(forge(payload))


async def test_revocation_through_the_store(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "g.db")
    try:
        svc = TokenService(SECRET, 60, 60, revocations=store.users)
        token, other = svc.issue(1, "1"), svc.issue(1, "1")
        claims = await svc.authenticate(token)
        await svc.revoke(claims)
        with pytest.raises(AuthError, match="token revoked"):
            await svc.authenticate(token)
        assert svc.verify(token) == claims  # signature-only check does not know about revocation
        assert (await svc.authenticate(other)).uid == 1  # other tokens of the same user stay valid
        await svc.revoke(claims)  # idempotent
    finally:
        await store.close()


async def test_revoke_without_store_is_an_error() -> None:
    svc = TokenService(SECRET, 60, 60)
    claims = svc.verify(svc.issue(1, "1"))
    assert await svc.authenticate(svc.issue(1, "1"))
    with pytest.raises(RuntimeError):
        await svc.revoke(claims)


def test_empty_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        TokenService("", 60, 60)


# tickets


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def test_ticket_formula() -> None:
    secret = "Ab3dEf"
    expected = sha1(secret + "1" + sha1(secret + "2"))
    assert ticket(secret, 1, "2") == expected == ticket(secret, "1", 2)
    assert len(expected) == 40
    assert ticket(secret, 1, "the_world_channel") == sha1(secret + "1" + sha1(secret + "the_world_channel"))


def test_ticket_checks() -> None:
    t = ticket("s", 1, "2")
    assert verify_ticket("s", 1, "2", t)
    assert verify_ticket("s", 1, "2", t.upper())  # GlideIM compares case-insensitively
    assert ticket_problem("s", 1, "2", t) is None
    assert ticket_problem("s", 1, "3", t) == TICKET_EXPIRED  # another target
    assert ticket_problem("s", 2, "2", t) == TICKET_EXPIRED  # another sender
    assert ticket_problem("rotated", 1, "2", t) == TICKET_EXPIRED  # the secret changed
    assert ticket_problem("", 1, "2", t) == NO_SECRET
    for bad in ("", t[:39], t + "0", None, 5, "é" * 40):
        assert ticket_problem("s", 1, "2", bad) == INVALID_TICKET
