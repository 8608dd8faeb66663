"""The socket credential (glideim.md §4.2): format, round trip, tampering, expiry."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from glide.auth.credential import ClientCredentials, CredentialService, aes_key
from glide.errors import AuthError

KEY = "secret_key"
TTL = 1_500_000


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def b64raw_decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def go_style_decrypt(secret_key: str, credential: str) -> dict[str, Any]:
    """What GlideIM's gateway does, written independently: key = Go sha512.New().Sum(key), 32 bytes."""
    key = (secret_key.encode() + hashlib.sha512().digest())[:32]
    raw = b64raw_decode(credential)
    dec = Cipher(algorithms.AES(key), modes.CBC(raw[:16])).decryptor()
    padded = dec.update(raw[16:]) + dec.finalize()
    plain = padded[: -padded[-1]]
    result: dict[str, Any] = json.loads(plain)
    return result


def go_style_encrypt(secret_key: str, plain: bytes, iv: bytes | None = None) -> str:
    key = (secret_key.encode() + hashlib.sha512().digest())[:32]
    iv = iv or os.urandom(16)
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    raw = iv + enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()
    return base64.b64encode(raw).decode().rstrip("=")


@pytest.fixture
def clock() -> Clock:
    return Clock(1_700_000_000_000)


@pytest.fixture
def service(clock: Clock) -> CredentialService:
    return CredentialService(KEY, TTL, clock_ms=clock)


def test_key_derivation_matches_go() -> None:
    assert aes_key("secret_key") == (b"secret_key" + hashlib.sha512(b"").digest())[:32]
    assert aes_key("x" * 50) == b"x" * 32
    assert len(aes_key("k")) == 32


def test_issue_format_is_glideim_credential(service: CredentialService, clock: Clock) -> None:
    issued = service.issue(42, "2", "Firefox", "S3cr3t")
    assert set(issued) == {"version", "credential"} and issued["version"] == 1
    cred = issued["credential"]
    assert "=" not in cred and "\n" not in cred
    assert (len(b64raw_decode(cred)) - 16) % 16 == 0
    plain = go_style_decrypt(KEY, cred)
    for key in (
        "type",
        "user_id",
        "device_id",
        "device_name",
        "secrets",
        "risk_control",
        "connection_config",
        "connection_id",
        "timestamp",
    ):
        assert key in plain  # no omitempty
    assert plain["user_id"] == "42" and plain["device_id"] == "2" and plain["device_name"] == "Firefox"
    assert plain["secrets"]["message_deliver_secret"] == "S3cr3t"
    assert plain["timestamp"] == clock.ms and plain["type"] == 0


def test_round_trip(service: CredentialService, clock: Clock) -> None:
    cred = service.issue(7, "-1", "", "abc")["credential"]
    opened = service.open(cred)
    assert isinstance(opened, ClientCredentials)
    assert (opened.uid, opened.device, opened.device_name, opened.timestamp) == (7, "-1", "", clock.ms)
    assert opened.secrets.message_deliver_secret == "abc"
    # GlideIM clients might pad; tolerate it
    assert service.open(cred + "=" * (-len(cred) % 4)).uid == 7


def test_unicode_fields_round_trip(service: CredentialService) -> None:
    opened = service.open(service.issue(1, "web", '手机 📱 "quoted"', "s")["credential"])
    assert opened.device_name == '手机 📱 "quoted"'


def test_random_iv(service: CredentialService) -> None:
    a, b = (service.issue(1, "1", "", "s")["credential"] for _ in range(2))
    assert a != b


def test_expiry(service: CredentialService, clock: Clock) -> None:
    cred = service.issue(1, "1", "", "s")["credential"]
    clock.ms += TTL
    assert service.open(cred).uid == 1  # exactly at the limit: still valid (GlideIM: span > limit)
    clock.ms += 1
    with pytest.raises(AuthError, match="credential expired"):
        service.open(cred)


def test_other_secret_key_is_refused(service: CredentialService, clock: Clock) -> None:
    cred = service.issue(1, "1", "", "s")["credential"]
    with pytest.raises(AuthError, match="invalid credential"):
        CredentialService("another key", TTL, clock_ms=clock).open(cred)


def test_iv_rewrite_cannot_change_the_user(service: CredentialService) -> None:
    """CBC malleability: rewriting the IV chooses the first plaintext block. Refused thanks to the MAC."""
    cred = service.issue(7, "1", "", "s")["credential"]
    raw = bytearray(b64raw_decode(cred))
    plain = json.dumps({"type": 0, "user_id": "7"}, separators=(",", ":")).encode()
    original_block, wanted = plain[:16], b'{"user_id":"1","'
    assert original_block == b'{"type":0,"user_'
    for i in range(16):
        raw[i] ^= original_block[i] ^ wanted[i]
    forged = base64.b64encode(bytes(raw)).decode().rstrip("=")
    # the forgery decrypts to valid JSON naming user 1 (what GlideIM's gateway would accept) ...
    assert go_style_decrypt(KEY, forged)["user_id"] == "1"
    # ... but not here
    with pytest.raises(AuthError, match="invalid credential"):
        service.open(forged)


def test_credential_without_mac_is_refused(service: CredentialService, clock: Clock) -> None:
    plain = {
        "type": 0,
        "user_id": "1",
        "device_id": "",
        "device_name": "",
        "secrets": None,
        "connection_id": "",
        "timestamp": clock.ms,
    }
    with pytest.raises(AuthError, match="invalid credential"):
        service.open(go_style_encrypt(KEY, json.dumps(plain).encode()))


def test_bit_flips_anywhere_are_refused(service: CredentialService) -> None:
    raw = b64raw_decode(service.issue(123456, "3", "dev", "secret")["credential"])
    for pos in range(0, len(raw), 5):
        for bit in (0x01, 0x80):
            bad = bytearray(raw)
            bad[pos] ^= bit
            with pytest.raises(AuthError, match="invalid credential"):
                service.open(base64.b64encode(bytes(bad)).decode().rstrip("="))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abcd",
        "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "A" * 43,  # 32 bytes of zeros: decrypts to garbage
        "A" * 21,  # 15 bytes: shorter than an IV
        "A" * 30,  # not a multiple of the block size
        "A" * 20000,  # oversized
        None,
        12345,
        ["x"],
        "ééééééééééééééééééé",
    ],
)
def test_garbage_is_refused(service: CredentialService, bad: object) -> None:
    with pytest.raises(AuthError, match="invalid credential"):
        service.open(bad)


def test_truncated_is_refused(service: CredentialService) -> None:
    cred = service.issue(1, "1", "", "s")["credential"]
    raw = b64raw_decode(cred)
    for cut in (16, 32, len(raw) - 16, len(raw) - 1):
        with pytest.raises(AuthError, match="invalid credential"):
            service.open(base64.b64encode(raw[:cut]).decode().rstrip("="))


@pytest.mark.parametrize(
    "plain",
    [
        b"not json",
        b"[1,2]",
        b'{"user_id":"abc","timestamp":1}',
        b'{"user_id":"1"}',
        b"\xff\xfe",
        b'{"user_id":"1","timestamp":NaN}',
    ],
)
def test_well_encrypted_but_malformed_plaintext(service: CredentialService, plain: bytes) -> None:
    with pytest.raises(AuthError, match="invalid credential"):
        service.open(go_style_encrypt(KEY, plain))


def test_empty_secret_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        CredentialService("", TTL)
