"""What nodes send each other over Redis: one message per destination node per round carrying every item of
that round (deliveries, kicks, closes), and on the shared channel broadcasts and route-cache invalidations.

A message is a run of segments, each ``<length>:<segment>`` (length in decimal ASCII), so that Redis can
put together a node's message from segments in a script without reading them (glide.cluster.routes.ROUND).
A segment is ``<JSON head>\\n<frame><frame>…``: the head is ``[origin node, items, frame lengths]`` and each
item names its frame by index, so a frame pushed to many users of one node crosses Redis once and is never
re-serialised (a frame is the envelope's JSON as the TCP JSON wire has it; the receiver decodes it with the
Rust codec and forwards ``data`` byte for byte). Items:

- ``["d", [uid…], mid, frame]``: deliver to every local device of each uid (``mid`` > 0: about a 1:1
  message: held during an inbox replay, dropped when the device already got it)
- ``["k", uid, device, conn_id, frame]``: the session ``(uid, device)`` held by connection ``conn_id`` was
  taken by a newer login elsewhere: send it the kick-out frame and close it
- ``["c", uid, device, code, reason]``: close that session (its token was revoked)
- ``["b", frame]`` (shared channel): send to every local session
- ``["i", [uid…]]`` (shared channel): routes of these users changed; ``["i", null]``: all of them
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from glide._native import TCP_JSON, Outgoing, decode_json

TCP_HEADER = 4  # the TCP JSON wire's length prefix
MAX_LENGTH_DIGITS = 10  # a segment's length prefix (Redis caps a message at 512 MB)


def frame_bytes(out: Outgoing) -> bytes:
    """The envelope's JSON text (encoded at most once per Outgoing: the TCP JSON frame is cached)."""
    return out.frame(TCP_JSON)[TCP_HEADER:]


def outgoing_from(frame: bytes) -> Outgoing:
    """The Outgoing of a frame another node encoded: ``data`` forwarded untouched."""
    env = decode_json(frame)
    return Outgoing(
        env.action,
        seq=env.seq,
        sender=env.sender,
        to=env.to,
        ticket=env.ticket,
        extra=env.extra,
        raw_data=env.data_raw,
        ver=env.ver,
    )


@dataclass
class Batch:
    """The items of one segment; frames deduplicated by identity."""

    origin: int
    items: list[list[Any]] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    _index: dict[int, int] = field(default_factory=dict)

    def frame(self, out: Outgoing) -> int:
        key = id(out)
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self.frames)
            self.frames.append(frame_bytes(out))
        return index

    def encode(self) -> bytes:
        """The batch as one segment, its length prefix included (a message of its own, or part of one)."""
        head = orjson.dumps([self.origin, self.items, [len(f) for f in self.frames]])
        body = b"".join((head, b"\n", *self.frames))
        return b"%d:%b" % (len(body), body)


Segment = tuple[int, list[list[Any]], list[bytes]]


def decode(payload: bytes) -> list[Segment]:
    """Every segment of a message as ``(origin, items, frames)``; ValueError if it is not a run of them."""
    segments: list[Segment] = []
    at, end = 0, len(payload)
    while at < end:
        colon = payload.find(b":", at, at + MAX_LENGTH_DIGITS + 1)
        digits = payload[at:colon]
        if colon < 0 or not digits.isdigit():
            raise ValueError("no segment length")
        start = colon + 1
        at = start + int(digits)
        if at > end:
            raise ValueError("segment cut short")
        segments.append(_segment(payload[start:at]))
    return segments


def _segment(data: bytes) -> Segment:
    head, sep, body = data.partition(b"\n")
    if not sep:
        raise ValueError("no head")
    origin, items, lengths = orjson.loads(head)
    frames: list[bytes] = []
    at = 0
    for n in lengths:
        if not isinstance(n, int) or n < 0:
            raise ValueError("bad frame length")
        frames.append(body[at : at + n])
        at += n
    if at != len(body) or not isinstance(origin, int) or not isinstance(items, list):
        raise ValueError("frames do not match the head")
    return origin, items, frames
