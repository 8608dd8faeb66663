"""The local hub's session table: a uid with one session maps to the connection itself, with several to a dict
by device; every question about sessions answers the same across those shapes."""

from __future__ import annotations

import random
from collections.abc import Callable

from glide._native import Outgoing
from glide.gateway.hub import LocalHub


class _Conn:
    """A stand-in for a connection: what the hub reads of one, and the frames sent to it."""

    def __init__(self, uid: int, device: str) -> None:
        self.uid, self.device, self.closed, self.syncing = uid, device, False, False
        self.seen = None
        self.held: dict[int, Outgoing] | None = None
        self.sent: list[Outgoing] = []

    def send(self, out: Outgoing) -> None:
        self.sent.append(out)


def test_sessions_from_one_device_to_several_and_back() -> None:
    hub = LocalHub()
    phone, web, phone2 = _Conn(7, "phone"), _Conn(7, "web"), _Conn(7, "phone")
    other = _Conn(8, "phone")
    assert hub.bind(phone) == [] and hub.bind(other) == []
    assert hub._sessions[7] is phone  # one session: no dict
    assert hub.bind(web) == []
    assert set(hub.devices(7)) == {phone, web} and hub.online_count() == 3
    assert hub.session(7, "web") is web and hub.session(7, "tablet") is None
    assert hub.bind(phone2) == [phone]  # the same device again replaces it
    assert hub.session(7, "phone") is phone2
    assert not hub.unbind(phone)  # no longer the registered session
    assert hub.deliver_here(7, Outgoing("x", None)) == 2 and len(web.sent) == len(phone2.sent) == 1
    assert hub.unbind(web)
    assert hub._sessions[7] is phone2 and list(hub.devices(7)) == [phone2]
    assert hub.session(7, "web") is None and hub.session(7, "phone") is phone2
    assert set(hub.all()) == {phone2, other} and hub.is_online(7)
    assert hub.unbind(phone2) and not hub.is_online(7) and list(hub.devices(7)) == []
    assert hub.online_count() == 1 and hub.deliver_here(7, Outgoing("x", None)) == 0


def test_single_device_login_replaces_every_session() -> None:
    hub = LocalHub()
    a, b, c = _Conn(1, "a"), _Conn(1, "b"), _Conn(1, "c")
    hub.bind(a)
    hub.bind(b)
    assert set(hub.bind(c, single_device=True)) == {a, b}
    assert hub._sessions[1] is c and hub.online_count() == 1
    assert not hub.unbind(a) and not hub.unbind(b) and hub.unbind(c)
    assert hub.broadcast_here(Outgoing("x", None)) == 0


def test_a_fan_out_reaches_the_driver_in_one_call() -> None:
    """deliver_many hands the driver every live session of the uids at once (the native driver queues the one
    frame for all of them in one call), skipping the excluded and the closed; the default sends one by one."""
    calls: list[tuple[list[_Conn], Outgoing]] = []
    hub = LocalHub(lambda conns, out: calls.append((conns, out)))
    a1, a2, b, c, d = _Conn(1, "1"), _Conn(1, "2"), _Conn(2, "1"), _Conn(3, "1"), _Conn(4, "1")
    for conn in (a1, a2, b, c, d):
        hub.bind(conn)
    d.closed = True
    out = Outgoing("message.group", {"gid": 7})
    assert hub.deliver_many([1, 2, 3, 4, 5], out, exclude=b) == 3
    assert len(calls) == 1 and calls[0][0] == [a1, a2, c] and calls[0][1] is out
    assert hub.deliver_many([5, 6], out) == 0 and len(calls) == 1  # nobody here: the driver is not called
    plain = LocalHub()
    for conn in (a1, b):
        plain.bind(conn)
    assert plain.deliver_many([1, 2], out) == 2 and a1.sent == [out] and b.sent == [out]


def test_the_session_count_follows_every_change_of_the_table() -> None:
    """online_count is kept as sessions come and go (app/info reads it at every login: it must not walk the
    table); through binds of new, repeated and same-device sessions, single-device logins and unbinds of
    current and replaced ones, it always equals the sessions the table holds."""
    rng = random.Random(7)
    hub = LocalHub()
    conns = [_Conn(uid, device) for uid in range(1, 6) for device in ("a", "b", "c") for _ in range(2)]
    for _ in range(3000):
        conn = rng.choice(conns)
        if rng.random() < 0.55:
            hub.bind(conn, single_device=rng.random() < 0.15)
        else:
            hub.unbind(conn)
        assert hub.online_count() == len(hub.all())


class _Forwarding(LocalHub):
    """A hub with other nodes (as glide.cluster's): every delivery is also handed to them."""

    __slots__ = ("forwarded",)

    def __init__(self) -> None:
        super().__init__()
        self.forwarded: list[tuple[int, int, bool]] = []

    def forward(self, uid: int, out: Outgoing, mid: int, if_nobody: Callable[[], None] | None) -> None:
        self.forwarded.append((uid, mid, if_nobody is not None))


def _deliveries(hub: LocalHub, conn: _Conn, out: Outgoing, mid: int, exclude: _Conn | None) -> tuple[int, int]:
    nobody: list[int] = []
    sent = hub.deliver(conn.uid, out, mid=mid, exclude=exclude, if_nobody=lambda: nobody.append(1))
    return sent, len(nobody)


def test_a_lone_session_gets_a_delivery_as_any_session_would() -> None:
    """``deliver``'s shortcut for a uid with one live session on one node: sent at once; a closed or excluded
    session gets nothing and the sender hears that nobody is online; a replaying one holds the push of a
    message (and gets other frames at once). A hub with other nodes forwards every delivery."""
    out = Outgoing("message.chat", {"mid": 7})
    for state in ("live", "closed", "excluded", "syncing"):
        for mid in (0, 7):
            hub, conn = LocalHub(), _Conn(1, "web")
            hub.bind(conn)
            conn.closed = state == "closed"
            conn.syncing = state == "syncing"
            sent, nobody = _deliveries(hub, conn, out, mid, conn if state == "excluded" else None)
            if state in ("closed", "excluded"):
                assert (sent, nobody, conn.sent, conn.held) == (0, 1, [], None), (state, mid)
            elif state == "syncing" and mid:
                assert (sent, nobody, conn.sent, conn.held) == (1, 0, [], {7: out}), (state, mid)
            else:
                assert (sent, nobody, conn.sent, conn.held) == (1, 0, [out], None), (state, mid)

            cluster, conn = _Forwarding(), _Conn(1, "web")
            cluster.bind(conn)
            conn.closed = state == "closed"
            sent, nobody = _deliveries(cluster, conn, out, mid, None)
            assert cluster.forwarded == [(1, mid, state == "closed")] and nobody == 0, (state, mid)
