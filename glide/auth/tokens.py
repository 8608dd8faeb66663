"""HTTP API tokens: HS256 JWTs in GlideIM's claim layout, plus server-side revocation.

Claims: ``uid`` (int), ``device`` (int when numeric, else string), ``ver`` 1, ``app_id`` 1, ``exp``,
``iat``, ``jti``. Tokens issued by GlideIM's own API (no ``jti``, ``uid`` possibly a numeric string) are
accepted when signed with the same secret; their ``jti`` is derived from the token so they can be revoked.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from glide.errors import AuthError

ALGORITHM = "HS256"
MAX_TOKEN_LEN = 8192
MAX_UID = (1 << 63) - 1
MAX_EXP = 1 << 40
_NUMERIC = re.compile(r"-?[0-9]{1,18}")


@dataclass(frozen=True, slots=True)
class Claims:
    """What a valid token says: who, on which device, its id and expiry (Unix seconds)."""

    uid: int
    device: str
    jti: str
    exp: int
    issued_ms: int = 0  # when it was issued (Unix ms): a logout of its session kills tokens issued until then


class TokenRevocations(Protocol):
    """Where revoked token ids and ended sessions are kept (the user store implements it)."""

    async def revoke_token(self, jti: str, expires_at_ms: int) -> None: ...

    async def is_token_revoked(self, jti: str) -> bool: ...

    async def session_ended_at(self, uid: int, device: str) -> int: ...


async def check_not_revoked(revocations: TokenRevocations, claims: Claims) -> None:
    """Refuse a revoked token, and any token of a session that logged out after it was issued."""
    if await revocations.is_token_revoked(claims.jti):
        raise AuthError("token revoked")
    if claims.issued_ms <= await revocations.session_ended_at(claims.uid, claims.device):
        raise AuthError("token revoked: this session logged out")


def device_claim(device: str) -> int | str:
    """GlideIM clients expect a numeric device id as a JSON number."""
    return int(device) if _NUMERIC.fullmatch(device) else device


class TokenService:
    """Issues and checks tokens. ``clock`` returns Unix seconds (injectable for tests)."""

    def __init__(
        self,
        secret: str,
        ttl_s: int,
        guest_ttl_s: int,
        *,
        revocations: TokenRevocations | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("the JWT secret must not be empty")
        self._secret = secret.encode("utf-8")
        self.ttl_s = ttl_s
        self.guest_ttl_s = guest_ttl_s
        self.revocations = revocations
        self._clock = clock

    def issue(self, uid: int, device: str, guest: bool = False) -> str:
        """A new signed token for ``uid`` on ``device``; guests get the guest lifetime."""
        now = self._clock()
        payload: dict[str, Any] = {
            "uid": uid,
            "device": device_claim(device),
            "ver": 1,
            "app_id": 1,
            "iat": int(now),
            "iatms": int(now * 1000),
            "exp": int(now) + (self.guest_ttl_s if guest else self.ttl_s),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Claims:
        """Check signature, shape and expiry (not revocation). Raises :class:`AuthError` saying why."""
        if not isinstance(token, str) or not token.strip():
            raise AuthError("missing token")
        token = token.strip()
        if len(token) > MAX_TOKEN_LEN:
            raise AuthError("malformed token: too long")
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                # Expiry is checked below against the injectable clock; GlideIM tokens carry no aud/iat rules.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
            )
        except jwt.InvalidSignatureError:
            raise AuthError("invalid token signature") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError("invalid token: unsupported algorithm") from None
        except jwt.DecodeError:
            raise AuthError("malformed token") from None
        except jwt.InvalidTokenError as e:
            raise AuthError(f"invalid token: {e}") from None
        claims = _claims(payload, token)
        if self._clock() >= claims.exp:
            raise AuthError("token expired")
        return claims

    async def authenticate(self, token: str) -> Claims:
        """:meth:`verify`, then refuse revoked tokens."""
        claims = self.verify(token)
        if self.revocations is not None:
            await check_not_revoked(self.revocations, claims)
        return claims

    async def revoke(self, claims: Claims) -> None:
        """Make this token unusable before it expires (logout)."""
        if self.revocations is None:
            raise RuntimeError("TokenService was built without a revocation store")
        await self.revocations.revoke_token(claims.jti, claims.exp * 1000)


def _claims(payload: dict[str, Any], token: str) -> Claims:
    uid = payload.get("uid")
    if isinstance(uid, str) and uid.isascii() and uid.isdigit() and len(uid) <= 19:
        uid = int(uid)
    if not isinstance(uid, int) or isinstance(uid, bool) or not 0 < uid <= MAX_UID:
        raise AuthError("malformed token: uid is not a user id")
    exp = payload.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or not 0 < exp < MAX_EXP:
        # (also rejects NaN and Infinity, which the JSON parser accepts)
        raise AuthError("malformed token: no valid exp claim")
    device = payload.get("device", "")
    if isinstance(device, int) and not isinstance(device, bool):
        device = str(device)
    if not isinstance(device, str) or len(device) > 64:
        raise AuthError("malformed token: device is not an id")
    jti = payload.get("jti")
    if jti is None:
        jti = "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()
    if not isinstance(jti, str) or not 0 < len(jti) <= 128:
        raise AuthError("malformed token: jti is not an id")
    issued_ms = payload.get("iatms")
    if not isinstance(issued_ms, int) or isinstance(issued_ms, bool):  # GlideIM's tokens: iat in seconds
        iat = payload.get("iat")
        issued_ms = int(iat * 1000) if isinstance(iat, int | float) and not isinstance(iat, bool) else 0
    if not 0 <= issued_ms < MAX_EXP * 1000:
        raise AuthError("malformed token: no valid iat claim")
    return Claims(uid=uid, device=device, jti=jti, exp=int(exp), issued_ms=issued_ms)
