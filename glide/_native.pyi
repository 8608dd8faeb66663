"""Type stubs for ``glide._native``, the Rust core (framing, codecs, timing wheel, fan-out)."""

from collections.abc import Iterable, Sequence
from typing import Any, Final, Self, final

__all__ = [
    "EVENT_CLOSED",
    "EVENT_DRAINED",
    "EVENT_MESSAGES",
    "EVENT_OPENED",
    "TCP_JSON",
    "TCP_PROTO",
    "WS_JSON",
    "WS_PROTO",
    "BadMessage",
    "Connection",
    "Envelope",
    "Feed",
    "KeyFilter",
    "LoadGen",
    "NativeDriver",
    "Outgoing",
    "OutgoingShape",
    "TimingWheel",
    "decode_json",
    "decode_proto",
]

WS_JSON: Final[int]
WS_PROTO: Final[int]
TCP_JSON: Final[int]
TCP_PROTO: Final[int]
EVENT_OPENED: Final[int]
EVENT_MESSAGES: Final[int]
EVENT_CLOSED: Final[int]
EVENT_DRAINED: Final[int]

@final
class Envelope:
    """One decoded client envelope ``{ver, seq, action, from, to, data, ticket, extra}``."""

    @property
    def ver(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def action(self) -> str: ...
    @property
    def sender(self) -> str:
        """The envelope's ``from`` (a Python keyword, hence the name)."""
    @property
    def to(self) -> str: ...
    @property
    def ticket(self) -> str: ...
    @property
    def extra(self) -> dict[str, str] | None: ...
    @property
    def data_raw(self) -> bytes | None:
        """``data`` as JSON text, byte-exact as received (JSON) or converted (protobuf); None when absent."""
    def data(self) -> Any:
        """``data`` parsed into Python objects (dict, list, str, int, float, bool, None)."""
    def chat_fields(self) -> tuple[int, str, str, int, int] | None:
        """``(receiver, cli_mid, content, type, send_at)`` of a ``message.chat`` of the plain shape (``send_at``
        0: not given), read without building ``data``; None for any other shape (``parse_chat`` reads it)."""
    def mid_ref(self) -> tuple[int, str] | None:
        """``(mid, cli_mid)`` of a request naming a message by a positive ``mid``; None for any other shape."""

@final
class BadMessage:
    """A complete frame whose envelope could not be decoded; the connection stays usable."""

    @property
    def error(self) -> str: ...

@final
class Feed:
    """What one socket read produced."""

    @property
    def messages(self) -> list[Envelope | BadMessage]: ...
    @property
    def to_send(self) -> bytes | None:
        """Bytes the driver must write now (handshake response, pongs, close replies)."""
    @property
    def close(self) -> tuple[int, str] | None:
        """Set when the connection must end: write ``to_send``, then close the transport."""
    @property
    def opened(self) -> bool:
        """True on the read that completed the WebSocket handshake (TCP has none)."""
    @property
    def error(self) -> str | None:
        """A protocol violation by the peer, described (``close`` is set too)."""

@final
class Connection:
    """The sans-I/O state of one client socket: framing plus envelope codec."""

    def __new__(
        cls,
        transport: str,
        *,
        max_message_size: int = 65536,
        ws_path: str | None = ...,  # "/ws"
        tcp_codec: str = "json",
    ) -> Self:
        """``transport`` is ``"ws"`` or ``"tcp"``; ``tcp_codec`` is ``"json"`` or ``"proto"``."""
    @property
    def wire(self) -> int:
        """One of WS_JSON, WS_PROTO, TCP_JSON, TCP_PROTO (WS_JSON until the handshake picks a subprotocol)."""
    @property
    def is_open(self) -> bool: ...
    def feed(self, data: bytes) -> Feed | None:
        """Consume one socket read; None when it produced nothing (a partial frame)."""
    def close_frame(self, code: int, reason: str) -> bytes:
        """Bytes that start a server-initiated close (a WebSocket close frame; empty for TCP)."""

@final
class Outgoing:
    """A server envelope encoded at most once per wire variant; ``frame`` hands out the same bytes to every
    recipient of that variant (the fan-out buffer)."""

    def __new__(
        cls,
        action: str,
        data: Any = None,
        *,
        seq: int = 0,
        sender: str = "",
        to: str = "",
        ticket: str = "",
        extra: dict[str, str] | None = None,
        raw_data: bytes | None = None,
        ver: int = 1,
    ) -> Self:
        """``data`` is serialised to JSON once; ``raw_data`` (JSON text) is forwarded untouched instead."""
    @property
    def action(self) -> str: ...
    def frame(self, wire: int) -> bytes: ...
    def frames(self, wires: Sequence[int]) -> list[bytes]:
        """One frame per recipient wire, identical variants sharing one bytes object."""

@final
class OutgoingShape:
    """A server envelope whose ``data`` is an object with fixed keys: ``shape(values, seq=…)`` builds what
    ``Outgoing(action, dict(zip(keys, values)), seq=…)`` builds, byte for byte, without the dict."""

    def __new__(cls, action: str, keys: Sequence[str]) -> Self: ...
    @property
    def action(self) -> str: ...
    @property
    def keys(self) -> list[str]: ...
    def __call__(self, values: tuple[Any, ...], *, seq: int = 0) -> Outgoing: ...

@final
class TimingWheel:
    """Hierarchical timing wheel: O(1) insert/re-arm/cancel; ``advance`` returns expired ids in one batch."""

    def __new__(cls, tick_ms: int, now_ms: int) -> Self: ...
    def insert(self, timer_id: int, deadline_ms: int) -> None: ...
    def cancel(self, timer_id: int) -> bool: ...
    def advance(self, now_ms: int) -> list[int]: ...
    def __len__(self) -> int: ...
    def __contains__(self, timer_id: int, /) -> bool: ...

@final
class KeyFilter:
    """(sender, cli_mid) keys: ``maybe`` answers which of a batch may have been added, from memory (a Bloom
    filter growing by layers: no false negatives, ~0.1 % false positives per layer)."""

    def __new__(cls) -> Self: ...
    def add(self, keys: Iterable[tuple[int, str]]) -> None:
        """Add every key of ``keys``; raises TypeError for an item that is not an (int, str) tuple."""
    def maybe(self, keys: list[tuple[int, str]]) -> list[tuple[int, str]]:
        """The keys of ``keys`` that may have been added (the same objects, in order); the others never were."""
    def __len__(self) -> int: ...
    @property
    def memory(self) -> int:
        """Bytes of its bit arrays."""

def decode_json(data: bytes) -> Envelope:
    """Decode one JSON envelope; raises ValueError with the reason."""

def decode_proto(data: bytes) -> Envelope:
    """Decode one protobuf envelope; raises ValueError with the reason."""

@final
class LoadGen:
    """One load run of ``glide bench``: simulated clients on a tokio thread (start once, poll, join)."""

    def __init__(self) -> None: ...
    def start(self, config: dict[str, Any]) -> None: ...
    def poll(self) -> dict[str, Any] | None: ...
    def stop(self) -> None: ...
    @property
    def finished(self) -> bool: ...
    def join(self, timeout: float | None = None) -> dict[str, Any]: ...

@final
class NativeDriver:
    """Sockets on a tokio I/O thread: Python takes events in batches (``drain`` after ``fileno`` turns readable)
    and hands commands back in batches (queued by ``send``/``close``/..., handed over by ``flush``)."""

    def __new__(
        cls,
        *,
        max_message_size: int = 65536,
        ws_path: str | None = ...,  # "/ws"
        tcp_codec: str = "json",
        heartbeat_ms: int = 30000,
        heartbeat_lost_limit: int = 3,
        auth_timeout_ms: int = 10000,
        send_buffer_limit: int = ...,  # 1 MiB
        low_water: int = 65536,
        tick_ms: int = 100,
        manual_clock: bool = False,
        max_pending_events: int = 65536,
        tls_cert: bytes | None = None,
        tls_key: bytes | None = None,
    ) -> Self: ...
    def fileno(self) -> int:
        """The descriptor that becomes readable when events wait (for ``loop.add_reader``)."""
    def quiet(self) -> None:
        """Empty the wake-up descriptor, the events staying queued: it becomes readable again only after the
        next ``drain`` (a loop that holds its events for a later round keeps its reader on)."""
    def listen(self, transport: str, host: str, port: int) -> tuple[str, int]:
        """Bind a listener (``"ws"`` or ``"tcp"``); returns the bound ``(host, port)``."""
    def send(self, conn_id: int, out: Outgoing) -> None: ...
    def send_many(self, conn_ids: Sequence[int], out: Outgoing) -> None: ...
    def close(self, conn_id: int, code: int = 1000, reason: str = "") -> None: ...
    def authenticated(self, conn_id: int) -> None: ...
    def pause_reading(self, conn_id: int, paused: bool) -> None: ...
    def watch_drain(self, conn_id: int) -> None: ...
    def advance(self, now_ms: int) -> None: ...
    def flush(self) -> None:
        """Hand everything queued since the last flush to the I/O thread, in order (one wake-up)."""
    def drain(self) -> list[tuple[int, int, Any]]:
        """Every event since the last call: ``(kind, conn_id, payload)``."""
    @property
    def stats(self) -> dict[str, int]: ...
    def stop(self) -> None:
        """Send what is queued, close every connection with 1001, stop the I/O thread. Idempotent."""
    @property
    def running(self) -> bool: ...
