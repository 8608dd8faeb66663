"""The socket credential of GlideIM Gen-2 (glideim.md §4.2), issued by the HTTP API, opened by the gateway.

``credential = base64.RawStdEncoding(iv ‖ AES-256-CBC(key, iv, PKCS#7(json)))`` with
``key = (secret_key ‖ SHA512(b""))[:32]`` and a random 16-byte IV; ``json`` is GlideIM's
``ClientAuthCredentials`` (every field present, ``timestamp`` in ms).

One addition, for integrity: CBC without a MAC is malleable. Whoever holds a credential can rewrite the
IV and so choose the first plaintext block, e.g. turn ``{"type":0,"user_`` + ``id":"7",…`` into
``{"user_id":"1","`` + ``id":"7",…``, which GlideIM's gateway reads as user 1. So the plaintext also
carries ``mac``, an HMAC-SHA256 (key derived from ``secret_key``) of the fields it vouches for, and
:meth:`CredentialService.open` refuses a credential without a valid one. GlideIM's gateway ignores the
unknown key, so the credentials stay readable by it; credentials minted by GlideIM's own API (no ``mac``)
are refused here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from glide.errors import AuthError

VERSION = 1
BLOCK = 16
MAX_CREDENTIAL_LEN = 16384
MAX_UID = (1 << 63) - 1
INVALID = "invalid credential"
EXPIRED = "credential expired"
_MAC_CONTEXT = b"glide socket credential mac v1"


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class CredentialSecrets:
    """``secrets`` of the credential: the sender's ticket secret (§2.6) and the presence secret."""

    message_deliver_secret: str
    online_state_secret: str = ""


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """An opened credential: who the socket is, and the secrets the gateway checks tickets with."""

    uid: int
    device: str
    device_name: str
    secrets: CredentialSecrets
    timestamp: int  # ms, when it was issued
    type: int = 0
    connection_id: str = ""


def aes_key(secret_key: str) -> bytes:
    """GlideIM's key: Go ``sha512.New().Sum(key)`` appends SHA512("") to the key, then 32 bytes are kept."""
    return (secret_key.encode("utf-8") + hashlib.sha512(b"").digest())[:32]


class CredentialService:
    """Issues and opens credentials. ``clock_ms`` returns Unix ms (injectable for tests)."""

    def __init__(self, secret_key: str, ttl_ms: int, *, clock_ms: Callable[[], int] = _wall_ms) -> None:
        if not secret_key:
            raise ValueError("the credential secret key must not be empty")
        self._key = aes_key(secret_key)
        self._mac_key = hmac.new(secret_key.encode("utf-8"), _MAC_CONTEXT, hashlib.sha256).digest()
        self.ttl_ms = ttl_ms
        self._clock_ms = clock_ms

    def issue(self, uid: int, device: str, device_name: str, message_deliver_secret: str) -> dict[str, Any]:
        """``{"version": 1, "credential": "…"}`` as sent in login responses."""
        creds = ClientCredentials(
            uid=uid,
            device=device,
            device_name=device_name,
            secrets=CredentialSecrets(message_deliver_secret),
            timestamp=self._clock_ms(),
        )
        plain: dict[str, Any] = {
            "type": creds.type,
            "user_id": str(uid),
            "device_id": device,
            "device_name": device_name,
            "secrets": {
                "message_deliver_secret": creds.secrets.message_deliver_secret,
                "online_state_secret": creds.secrets.online_state_secret,
            },
            "risk_control": None,
            "connection_config": None,
            "connection_id": creds.connection_id,
            "timestamp": creds.timestamp,
            "mac": self._mac(creds),
        }
        data = json.dumps(plain, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        iv = os.urandom(BLOCK)
        padder = padding.PKCS7(BLOCK * 8).padder()
        padded = padder.update(data) + padder.finalize()
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(iv)).encryptor()
        raw = iv + encryptor.update(padded) + encryptor.finalize()
        return {"version": VERSION, "credential": base64.b64encode(raw).decode("ascii").rstrip("=")}

    def open(self, credential: object) -> ClientCredentials:
        """Decrypt and check a credential. Raises :class:`AuthError` "invalid credential" or "credential expired"."""
        creds = self._decode(credential)
        if self._clock_ms() - creds.timestamp > self.ttl_ms:
            raise AuthError(EXPIRED)
        return creds

    def _decode(self, credential: object) -> ClientCredentials:
        if not isinstance(credential, str) or not 5 <= len(credential) <= MAX_CREDENTIAL_LEN:
            raise AuthError(INVALID)
        text = credential.strip().rstrip("=")
        try:
            # RawStdEncoding: no padding; tolerate it anyway, but never non-alphabet characters.
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise AuthError(INVALID) from None
        if len(raw) < 2 * BLOCK or len(raw) % BLOCK:
            raise AuthError(INVALID)
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(raw[:BLOCK])).decryptor()
        padded = decryptor.update(raw[BLOCK:]) + decryptor.finalize()
        unpadder = padding.PKCS7(BLOCK * 8).unpadder()
        try:
            data = unpadder.update(padded) + unpadder.finalize()
            obj = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise AuthError(INVALID) from None
        if not isinstance(obj, dict):
            raise AuthError(INVALID)
        creds = _fields({str(k).lower(): v for k, v in obj.items()})
        mac = obj.get("mac")
        if not isinstance(mac, str) or not hmac.compare_digest(
            mac.encode("utf-8", "replace"), self._mac(creds).encode()
        ):
            raise AuthError(INVALID)
        return creds

    def _mac(self, c: ClientCredentials) -> str:
        fields = [
            c.type,
            c.uid,
            c.device,
            c.device_name,
            c.secrets.message_deliver_secret,
            c.secrets.online_state_secret,
            c.connection_id,
            c.timestamp,
        ]
        msg = json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode("ascii")
        digest = hmac.new(self._mac_key, msg, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > MAX_UID:
        raise AuthError(INVALID)
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise AuthError(INVALID)
    return value


def _fields(obj: dict[str, Any]) -> ClientCredentials:
    """Typed fields of the plaintext (keys already lower-cased: Go decodes case-insensitively)."""
    uid = obj.get("user_id")
    if isinstance(uid, str) and uid.isascii() and uid.isdigit() and len(uid) <= 19:
        uid = int(uid)
    if not isinstance(uid, int) or isinstance(uid, bool) or not 0 < uid <= MAX_UID:
        raise AuthError(INVALID)
    secrets = obj.get("secrets")
    if not isinstance(secrets, dict):
        raise AuthError(INVALID)
    secrets = {str(k).lower(): v for k, v in secrets.items()}
    # Every field the MAC vouches for must be present: what we issue always has them all.
    timestamp, kind = _int(obj.get("timestamp")), _int(obj.get("type"))
    device, name, conn = _str(obj.get("device_id")), _str(obj.get("device_name")), _str(obj.get("connection_id"))
    deliver, state = _str(secrets.get("message_deliver_secret")), _str(secrets.get("online_state_secret"))
    return ClientCredentials(
        uid=uid,
        device=device,
        device_name=name,
        secrets=CredentialSecrets(deliver, state),
        timestamp=timestamp,
        type=kind,
        connection_id=conn,
    )
