"""glide bench without a server: profiles and scaling, verdicts, ratios, login material, /proc sampling,
charts from a synthetic result, and the load generator's refusal of bad configs."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from glide.auth.credential import CredentialService
from glide.auth.ticket import ticket
from glide.bench import procstat, report
from glide.bench.cli import passed
from glide.bench.cluster import NodeWatch, node_counts, per_delivered
from glide.bench.compare import ratios
from glide.bench.loadgen import new_loadgen
from glide.bench.profiles import PROFILES, saturate_step
from glide.bench.saturate import verdict
from glide.bench.users import mint_credentials, mint_jwt, tokens_for


def test_profiles_match_glideim_published_loads() -> None:
    c1, c2 = PROFILES["case1"], PROFILES["case2"]
    assert (c1.clients, c1.messages, c1.interval_ms) == (2000, 600, (60, 200))
    assert (c2.clients, c2.messages, c2.interval_ms, c2.connect_interval_ms) == (10000, 800, (50, 100), 10.0)
    assert PROFILES["fanout"].clients == 1000 and PROFILES["fanout"].group
    assert PROFILES["idle"].clients == 10000 and PROFILES["idle"].kind == "idle"
    assert PROFILES["saturate"].kind == "saturate"


def test_scale_shrinks_but_keeps_a_runnable_profile() -> None:
    tiny = PROFILES["case1"].scaled(0.001)
    assert (tiny.clients, tiny.messages) == (2, 1)
    assert PROFILES["case1"].scaled(1.0) is PROFILES["case1"]
    half = PROFILES["case2"].scaled(0.5)
    assert (half.clients, half.messages, half.interval_ms) == (5000, 400, (50, 100))
    fan = PROFILES["fanout"].scaled(0.01)
    assert fan.senders is not None and 1 <= fan.senders <= fan.clients
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            PROFILES["case1"].scaled(bad)


def test_saturate_steps_offer_the_asked_rate() -> None:
    p = PROFILES["saturate"]
    for rate in (1000.0, 5000.0, 40000.0):
        (lo, hi), messages = saturate_step(p, rate)
        offered = p.clients * 2000 / (lo + hi)
        assert abs(offered - rate) / rate < 0.05, (rate, offered)
        assert messages * p.clients / rate == pytest.approx(p.step_s, rel=0.05)


def _load(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "delivery_rate": 1.0,
        "lost": 0,
        "unacked": 0,
        "duplicates": 0,
        "errors": 0,
        "error": None,
        "latency": {"p99_ms": 3.0},
    }
    return base | over


def test_a_step_holds_only_when_everything_is_delivered_once_in_time() -> None:
    assert verdict(_load(), 50.0) == (True, "held")
    for bad in (
        _load(delivery_rate=0.999),
        _load(lost=1),
        _load(unacked=2),
        _load(duplicates=1),
        _load(errors=3),
        _load(error="max_duration_ms reached"),
        _load(latency={"p99_ms": 50.1}),
    ):
        ok, why = verdict(bad, 50.0)
        assert not ok and why != "held"


def test_exit_status_follows_delivery() -> None:
    assert passed({"profile": "case1", "load": _load()})
    assert not passed({"profile": "case1", "load": _load(duplicates=1)})
    assert not passed({"profile": "case1", "load": _load(), "error": "no rate held"})
    assert passed({"profile": "idle", "load": _load(logged_in=5, clients=5)})
    assert not passed({"profile": "idle", "load": _load(logged_in=4, clients=5)})


def test_ratios_divide_glide_by_each_baseline() -> None:
    results = {
        "glide": {"derived": {"delivered_per_s": 300.0, "server_cpu_us_per_delivered": 10.0}, "load": {}},
        "picows": {"derived": {"delivered_per_s": 100.0, "server_cpu_us_per_delivered": 40.0}, "load": {}},
        "websockets": {"derived": {"delivered_per_s": 0.0}, "load": {}},
    }
    r = ratios(results, "chat")
    assert r["glide / picows"]["delivered_per_s"] == 3.0
    assert r["glide / picows"]["server_cpu_us_per_delivered"] == 0.25
    assert r["glide / websockets"]["delivered_per_s"] is None  # no division by zero
    assert "glide-asyncio / picows" not in r


def test_minted_tokens_carry_glideim_claims() -> None:
    token = mint_jwt("s" * 32, 42)
    claims = jwt.decode(token, "s" * 32, algorithms=["HS256"])
    assert claims["uid"] == 42 and claims["device"] == 1 and claims["ver"] == 1 and claims["app_id"] == 1
    assert claims["exp"] > claims["iat"] and claims["jti"]
    accounts = tokens_for("s" * 32, [1, 2])
    assert [a.load_user()["uid"] for a in accounts] == ["1", "2"]


def test_minted_credentials_open_and_carry_a_ticket_secret() -> None:
    (acct,) = mint_credentials("secret_key", [7])
    assert acct.credential and acct.ticket_secret and acct.token is None
    opened = CredentialService("secret_key", 60_000).open(acct.credential)
    assert opened.uid == 7 and opened.secrets.message_deliver_secret == acct.ticket_secret
    # The load generator computes tickets itself; this is the formula glide checks.
    assert len(ticket(acct.ticket_secret, 7, 8)) == 40
    assert set(acct.load_user()) == {"uid", "credential", "ticket_secret"}


def test_proc_sampling_of_this_process() -> None:
    s = procstat.read_proc(os.getpid())
    assert s is not None and s.rss_kb > 0 and s.cpu_s > 0
    assert procstat.peak_rss_kb(os.getpid()) >= s.rss_kb
    assert procstat.read_proc(2**22 + 12345) is None
    m = procstat.machine()
    assert m["cpus"] and "kernel" in m


def test_charts_and_json_from_a_result(tmp_path: Path) -> None:
    result = {
        "profile": "case1",
        "server": "glide",
        "scale": 0.5,
        "load": {
            "series": {
                "t": [1, 2, 3],
                "frames_in": [5, 6, 7],
                "frames_out": [1, 2, 3],
                "online": [2, 2, 0],
                "errors": [0, 1, 0],
                "sent": [1, 1, 0],
                "delivered": [1, 1, 0],
            },
            "latency": {
                "p50_ms": 1.0,
                "p99_ms": 2.0,
                "max_ms": 3.0,
                "count": 3,
                "buckets": [[0.5, 1], [1.0, 1], [2.5, 1]],
                "glide_buckets": [["<=20", 3], [">4000", 0]],
            },
        },
        "server_process": {"series": {"t": [0, 1], "cpu_pct": [0, 50.0], "rss_kb": [1000, 2000]}},
    }
    pngs = report.charts(result, tmp_path)
    assert [p.name for p in pngs] == ["throughput.png", "latency.png"]
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path = report.write_json(result, tmp_path / "sub" / "result.json")
    assert json.loads(path.read_text())["profile"] == "case1"


def test_load_generator_refuses_bad_configs() -> None:
    bad: list[dict[str, Any]] = [
        {"url": "http://127.0.0.1:1/ws", "users": [{"uid": "1", "token": "t"}, {"uid": "2", "token": "t"}]},
        {"url": "ws://127.0.0.1:1/ws", "users": []},
        {"url": "ws://127.0.0.1:1/ws", "users": [{"uid": "1", "token": "t"}], "messages": 1},
        {"url": "ws://127.0.0.1:1/ws", "users": [{"uid": "1"}]},
        {"url": "ws://127.0.0.1:1/ws", "users": [{"uid": "1", "token": "t", "credential": "c"}]},
        {"url": "ws://127.0.0.1:1/ws", "users": [{"uid": "1", "token": "t"}], "interval_ms": [9, 1]},
        {"url": "ws://127.0.0.1:1/ws", "users": [{"uid": "1", "token": "t"}], "nonsense": 1},
        {"url": "ws://127.0.0.1:1/ws", "users": [{"uid": "1", "token": "t"}], "source_ips": ["x"]},
        {"users": [{"uid": "1", "token": "t"}]},
    ]
    for cfg in bad:
        with pytest.raises(ValueError):
            new_loadgen().start(cfg)  # type: ignore[arg-type]
    gen = new_loadgen()
    with pytest.raises(RuntimeError):
        gen.join()
    assert gen.poll() is None and not gen.finished


def test_wakeups_count_the_threads_sleeps_and_a_node_that_does_not_answer_gives_no_counts() -> None:
    before = procstat.wakeups(os.getpid())
    never, waited, leave = threading.Event(), threading.Event(), threading.Event()

    def sleeper() -> None:
        for _ in range(20):
            never.wait(0.001)
        waited.set()
        leave.wait()

    waiter = threading.Thread(target=sleeper)
    waiter.start()
    waited.wait()
    assert procstat.wakeups(os.getpid()) >= before + 20  # each wait slept and was woken
    leave.set()
    waiter.join()
    assert procstat.wakeups(2**22 + 1) == 0  # no such process
    assert node_counts([NodeWatch("http://127.0.0.1:1/metrics", "token", os.getpid())]) is None
    counts = per_delivered({"redis_rounds": 10.0, "wakeups": 5.0}, {"redis_rounds": 30.0, "wakeups": 45.0}, 40)
    assert counts == {"redis_rounds_per_delivered": 0.5, "wakeups_per_delivered": 1.0}
    assert per_delivered({"wakeups": 0.0}, {"wakeups": 3.0}, 0) == {"wakeups_per_delivered": None}


def test_machine_cpu_counts_what_this_process_burns() -> None:
    before, mine = procstat.machine_cpu_s(), time.process_time()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # busy: the machine's busy time grows by at least ours
        pass
    spent = time.process_time() - mine
    assert procstat.machine_cpu_s() - before >= spent - 0.05  # (clock ticks)
