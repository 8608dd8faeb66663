"""Validation of client chat payloads. GlideIM's Go decoder matched keys case-insensitively; so do we."""

from __future__ import annotations

import json
from typing import Any

from glide._native import Envelope
from glide.errors import BadRequest
from glide.store.base import NewChat

MAX_CLI_MID = 64


def field(data: dict[str, Any], name: str) -> Any:
    """``data[name]``, falling back to a case-insensitive match (last one wins, as in Go)."""
    if name in data:
        return data[name]
    lowered = name.lower()
    found = None
    for key, value in data.items():
        if key.lower() == lowered:
            found = value
    return found


def parse_uid(value: Any, name: str) -> int:
    """A uid given as a number or a decimal string (GlideIM clients send both)."""
    if isinstance(value, bool):
        raise BadRequest(f"{name}: expected a user id")
    if isinstance(value, int):
        uid = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:  # "²" is a digit too
        uid = int(value)
    else:
        raise BadRequest(f"{name}: expected a user id, got {value!r:.40}")
    if uid <= 0 or uid >= 2**63:
        raise BadRequest(f"{name}: user id out of range")
    return uid


def _int(data: dict[str, Any], name: str, default: int) -> int:
    value = data.get(name)
    if type(value) is int and -(2**63) <= value < 2**63:  # the usual case: the exact key, a plain int
        return value
    value = field(data, name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise BadRequest(f"data.{name}: expected an integer")
    return value


def envelope_data(env: Envelope) -> Any:
    """``env.data()``. JSON the decoder accepts but Python cannot hold (a lone surrogate escape, a number past
    the double range) is the client's error, not a failure of the handler."""
    try:
        return env.data()
    except ValueError as e:
        raise BadRequest(f"data: not valid JSON: {e}") from None


def data_object(env: Envelope) -> dict[str, Any]:
    """``data``, which must be a JSON object."""
    data = envelope_data(env)
    if not isinstance(data, dict):
        raise BadRequest("data: expected an object")
    return data


def parse_chat(env: Envelope, sender: int, mid: int, now_ms: int) -> NewChat:
    """A ``message.chat`` request as a message to store; the receiver is the envelope's ``to``."""
    plain = env.chat_fields()  # the usual shape, read by the extension without building ``data``
    if plain is not None:
        receiver, cli_mid, content, type_, send_at = plain
        return NewChat(mid, cli_mid, sender, receiver, type_, content, send_at or now_ms)
    return parse_chat_data(env, sender, mid, now_ms)


def parse_chat_data(env: Envelope, sender: int, mid: int, now_ms: int) -> NewChat:
    """:func:`parse_chat` of any shape, from ``data`` as Python objects: the reference the extension's reading
    of the plain shape agrees with (GlideIM's case-insensitive keys, every type check and its message)."""
    data = data_object(env)
    to_value: Any = env.to or field(data, "to")
    receiver = parse_uid(to_value, "to")
    content = field(data, "content")
    if not isinstance(content, str):
        raise BadRequest("data.content: expected a string")
    cli_mid = field(data, "cliMid")
    if cli_mid is None:
        cli_mid = ""
    if not isinstance(cli_mid, str) or len(cli_mid) > MAX_CLI_MID:
        raise BadRequest(f"data.cliMid: expected a string of at most {MAX_CLI_MID} characters")
    return NewChat(
        mid=mid,
        cli_mid=cli_mid,
        sender=sender,
        receiver=receiver,
        type=_int(data, "type", 1),
        content=content,
        send_at=_int(data, "sendAt", now_ms) or now_ms,
    )


def parse_mid_ref(env: Envelope) -> tuple[int, str]:
    """``(mid, cliMid)`` naming an existing message: ``data.mid``, or ``cliMid``, or Gen-1's recall JSON
    in ``data.content``."""
    plain = env.mid_ref()  # a positive ``mid``, read by the extension without building ``data``
    if plain is not None:
        return plain
    return parse_mid_ref_data(env)


def parse_mid_ref_data(env: Envelope) -> tuple[int, str]:
    """:func:`parse_mid_ref` of any shape, from ``data`` as Python objects (the reference, as above)."""
    data = data_object(env)
    mid = _int(data, "mid", 0)
    cli_mid = field(data, "cliMid")
    if not mid:
        content = field(data, "content")
        if isinstance(content, str) and content.startswith("{"):
            try:
                inner = json.loads(content)
            except (ValueError, RecursionError):  # nested past the parser's depth: not a recall reference either
                inner = None
            if isinstance(inner, dict):
                mid = _int(inner, "mid", 0)
    if mid < 0:
        raise BadRequest("data.mid: expected a positive integer")
    if not mid and not (isinstance(cli_mid, str) and cli_mid):
        raise BadRequest("data.mid: missing")
    return mid, cli_mid if isinstance(cli_mid, str) else ""
