"""auth/verifyCode and verified registration: codes mailed through a real SMTP server (aiosmtpd) or, without
one, written to the server log; what GlideIM's web client sends on its register page."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import AsyncIterator
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from helpers_api import PASSWORD, ApiEnv, denied, ok, serve_api

from glide.auth.verification import CODE_TTL_S, MAX_ATTEMPTS, RESEND_S, VerificationCodes
from glide.config import Config
from glide.errors import TooManyRequests
from glide.logs import PlainFormatter

CODE = re.compile(r"code=(\d{6})\b")


class Mailbox:
    """An aiosmtpd handler keeping what it was sent."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.mails.append((envelope.mail_from or "", list(envelope.rcpt_tos), content))
        return "250 OK"


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[Mailbox, int]]:
    """A real SMTP server on this test's loop (glide mails from a worker thread, so the loop stays free)."""
    mailbox = Mailbox()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(mailbox), "127.0.0.1", 0)
    try:
        yield mailbox, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def verified(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with serve_api(tmp_path, require_email_verification=True) as env:
        yield env


def logged_code(caplog: pytest.LogCaptureFixture, email: str) -> str:
    lines = [PlainFormatter().format(r) for r in caplog.records if r.name == "glide.auth"]
    codes = [m.group(1) for line in lines if email in line and (m := CODE.search(line))]
    assert codes, lines
    return codes[-1]


async def test_web_client_register_page_with_the_code_from_the_log(
    verified: ApiEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "glide.auth")
    assert ok(await verified.post("/api/auth/verifyCode", {"email": "ann@example.com", "mode": "register"})) == ""
    code = logged_code(caplog, "ann@example.com")
    body = {"nickname": "Ann", "email": "ann@example.com", "captcha": code, "password": PASSWORD}
    uid = ok(await verified.post("/api/auth/register", body))["uid"]
    user = await verified.store.users.user_by_login("ann@example.com")
    assert user is not None and user.uid == uid and user.email == "ann@example.com"
    # The code is used up: it cannot register a second account.
    again = await verified.post("/api/auth/register", {**body, "email": "ANN@example.com", "account": "ann2"})
    denied(again, 400, 1005, "wrong or expired")
    assert await verified.store.users.user_by_login("ann2") is None


async def test_code_mailed_through_smtp(tmp_path: Path, smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    settings = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False, "smtp_from": "im@example.com"}
    async with serve_api(tmp_path, require_email_verification=True, **settings) as env:
        ok(await env.post("/api/auth/verifyCode", {"Email": "bo@example.com", "Mode": "register"}))
        assert len(mailbox.mails) == 1
        sender, recipients, raw = mailbox.mails[0]
        mail = message_from_bytes(raw)
        assert sender == "im@example.com" and recipients == ["bo@example.com"]
        subject = str(mail["Subject"])
        match = re.search(r"\b(\d{6})\b", subject)
        assert match is not None, subject
        assert match.group(1) in mail.get_payload()  # type: ignore[operator]
        body = {"email": "bo@example.com", "captcha": match.group(1), "password": PASSWORD}
        assert ok(await env.post("/api/auth/register", body))["uid"] > 0


async def test_smtp_down_is_a_clear_503_and_leaves_no_code(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with serve_api(tmp_path, require_email_verification=True, smtp_host="127.0.0.1", smtp_port=port) as env:
        r = await env.post("/api/auth/verifyCode", {"email": "cy@example.com"})
        denied(r, 503, 1001, "could not be sent")
        # Nothing was issued: no code registers, and asking again is not refused as "too soon".
        r = await env.post("/api/auth/register", {"email": "cy@example.com", "captcha": "000000", "password": PASSWORD})
        denied(r, 400, 1005, "wrong or expired")
        denied(await env.post("/api/auth/verifyCode", {"email": "cy@example.com"}), 503, 1001, "could not be sent")


async def test_registration_without_a_valid_code_is_refused(verified: ApiEnv, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "glide.auth")
    base = {"email": "di@example.com", "password": PASSWORD}
    denied(await verified.post("/api/auth/register", base), 400, 1005, "verifyCode")
    denied(await verified.post("/api/auth/register", {"account": "di", "password": PASSWORD}), 400, 1005, "verifyCode")
    denied(await verified.post("/api/auth/register", {**base, "captcha": "123456"}), 400, 1005, "wrong or expired")
    ok(await verified.post("/api/auth/verifyCode", {"email": "di@example.com"}))  # mode defaults to register
    code = logged_code(caplog, "di@example.com")
    # A code of another address does not count.
    other = {"email": "eve@example.com", "captcha": code, "password": PASSWORD}
    denied(await verified.post("/api/auth/register", other), 400, 1005, "wrong or expired")
    assert await verified.store.users.user_by_login("eve@example.com") is None
    assert ok(await verified.post("/api/auth/register", {**base, "captcha": f" {code} "}))["uid"] > 0


VERIFY_BAD_INPUT: list[tuple[dict[str, object], str]] = [
    ({}, "email: required"),
    ({"email": "not-an-email"}, "email: not an e-mail"),
    ({"email": ["a@b.co"]}, "email: expected a string"),
    ({"email": "a@b.co", "mode": "forget"}, "mode: only register"),
    ({"email": "a@b.co", "mode": 3}, "mode: expected a string"),
    ({"email": "x" * 300 + "@b.co"}, "email: must be"),
]


async def test_verify_code_bad_input(verified: ApiEnv, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "glide.auth")
    for body, mentions in VERIFY_BAD_INPUT:
        denied(await verified.post("/api/auth/verifyCode", body), 400, 300, mentions)
    assert not [r for r in caplog.records if r.name == "glide.auth"]  # no code went anywhere
    r = await verified.client.post("/api/auth/verifyCode", content=b"{not json")
    denied(r, 400, 300)


async def test_asking_again_too_soon_is_refused(verified: ApiEnv) -> None:
    ok(await verified.post("/api/auth/verifyCode", {"email": "fa@example.com"}))
    r = await verified.post("/api/auth/verifyCode", {"email": "FA@example.com"})
    denied(r, 429, 429, "moments ago")
    assert int(r.headers["retry-after"]) > 0


# The rules of codes, on a clock the test moves.


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def issued(codes: VerificationCodes, email: str, caplog: pytest.LogCaptureFixture) -> str:
    await codes.send(email)
    return logged_code(caplog, email)


async def test_codes_expire_resend_and_wrong_guesses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "glide.auth")
    clock = Clock()
    codes = VerificationCodes(Config(data_dir=str(tmp_path)), clock=clock)
    code = await issued(codes, "g@example.com", caplog)
    clock.now += CODE_TTL_S + 1
    assert not codes.consume("g@example.com", code)  # expired
    code = await issued(codes, "g@example.com", caplog)
    with pytest.raises(TooManyRequests):
        await codes.send("g@example.com")
    clock.now += RESEND_S
    newer = await issued(codes, "g@example.com", caplog)
    guesses = 0
    if newer != code:
        assert not codes.consume("g@example.com", code)  # only the newest counts
        guesses += 1
    wrong = f"{(int(newer) + 1) % 1_000_000:06d}"
    for _ in range(MAX_ATTEMPTS - 1 - guesses):
        assert not codes.consume("g@example.com", wrong)
    assert not codes.consume("g@example.com", 123456)  # not a string: a wrong guess, not a crash
    assert not codes.consume("g@example.com", newer)  # too many wrong guesses burnt it
