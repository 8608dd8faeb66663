"""``glide bench`` end to end at a tiny scale against real servers (glide started as ``glide serve``, and the
baselines): every message delivered exactly once, and the JSON result and PNG charts written. Behaviour
only; no assertion on speed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cluster_support import RedisServer
from serve_process import ServeProcess

from glide.bench.__main__ import main

PNG = b"\x89PNG\r\n\x1a\n"
FAST = ["--quiet", "--grace", "5", "--seed", "3"]


def bench(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "out"
    code = main([*args, *FAST, "--out", str(out)])
    name = "compare.json" if args[0] == "compare" else "result.json"
    return code, json.loads((out / name).read_text())


def assert_clean_delivery(load: dict[str, Any], expected: int) -> None:
    assert load["error"] is None, load["error"]
    assert load["errors"] == 0, load["errors_by_kind"]
    assert load["sent"] > 0
    assert load["delivered"] == load["expected_deliveries"] == expected
    assert load["delivery_rate"] == 1.0
    assert load["duplicates"] == 0 and load["lost"] == 0 and load["unacked"] == 0
    assert load["latency"]["count"] == expected
    assert sum(c for _, c in load["latency"]["glide_buckets"]) == expected


def assert_artifacts(out: Path) -> None:
    for name in ("throughput.png", "latency.png"):
        assert (out / name).read_bytes()[:8] == PNG


def test_case1_against_glide(tmp_path: Path) -> None:
    code, r = bench(tmp_path, "case1", "--scale", "0.005", "--interval", "5-20")
    assert code == 0
    assert (r["profile"], r["server"], r["params"]["clients"]) == ("case1", "glide", 10)
    load = r["load"]
    assert_clean_delivery(load, 10 * 3)
    assert load["acked"] == load["receipts"] == 30  # both phases of the ack flow
    assert load["misrouted"] == 0 and load["reordered"] == 0
    assert set(r["server_process"]) >= {"pid", "cpu_s", "peak_rss_kb", "rss_before_kb", "series"}
    derived = r["derived"]
    assert set(derived) >= {"delivered_per_s", "server_cpu_us_per_delivered", "harness_cpu_s"}
    # the load generator's own thread: part of the harness's CPU, measured on its own
    assert 0 < derived["loadgen_cpu_s"] <= derived["harness_cpu_s"]
    per_msg = 1e6 * derived["loadgen_cpu_s"] / load["delivered"]
    assert derived["loadgen_cpu_us_per_delivered"] == pytest.approx(per_msg, abs=1e6 * 0.0005 / load["delivered"])
    assert {"cpus", "kernel", "python"} <= set(r["machine"])
    assert_artifacts(tmp_path / "out")


def test_case2_against_the_picows_baseline(tmp_path: Path) -> None:
    code, r = bench(tmp_path, "case2", "--scale", "0.002", "--server", "picows", "--interval", "5-10")
    assert code == 0
    assert r["server"] == "picows"
    assert_clean_delivery(r["load"], 20 * 2)
    assert_artifacts(tmp_path / "out")


def test_fanout_into_a_glide_group(tmp_path: Path) -> None:
    code, r = bench(tmp_path, "fanout", "--scale", "0.02", "--interval", "5-20")
    assert code == 0, r["load"]
    members, senders = r["params"]["clients"], r["params"]["senders"]
    assert (members, senders) == (20, 1)
    assert r["group"]
    assert_clean_delivery(r["load"], r["load"]["sent"] * (members - 1))


def test_idle_connections_memory(tmp_path: Path) -> None:
    code, r = bench(tmp_path, "idle", "--clients", "30", "--hold", "2", "--users", "guest")
    assert code == 0
    load = r["load"]
    assert load["logged_in"] == 30 and load["errors"] == 0 and load["sent"] == 0
    assert set(r["derived"]) >= {"rss_before_kb", "rss_connected_kb", "bytes_per_conn"}


def test_saturate_steps_against_websockets(tmp_path: Path) -> None:
    code, r = bench(tmp_path, "saturate", "--scale", "0.01", "--server", "websockets", "--max-steps", "2")
    steps = r["steps"]
    assert 1 <= len(steps) <= 2
    for step in steps:
        assert step["offered_rate_per_s"] > 0 and step["verdict"]
        assert step["held"] == (step["verdict"] == "held")
    assert steps[0]["delivery_rate"] == 1.0, steps[0]
    # Whether a step held depends on the machine's speed (p99 bound): only check the report is consistent.
    held = [s["offered_rate_per_s"] for s in steps if s["held"]]
    assert r["derived"]["max_held_rate_per_s"] == (max(held) if held else 0.0)
    assert code == (0 if held else 1)


def test_saturate_steps_with_one_seed_use_fresh_cli_mids(tmp_path: Path) -> None:
    """Every step is a new run: with the same --seed its cliMids must still be new, or glide (which
    deduplicates by (sender, cliMid)) acknowledges the repeats without delivering them."""
    _, r = bench(tmp_path, "saturate", "--scale", "0.01", "--server", "glide", "--max-steps", "4", "--users", "guest")
    steps = r["steps"]
    assert len(steps) >= 2, steps
    for step in steps:
        assert step["delivery_rate"] == 1.0 and step["errors"] == 0, step


@pytest.mark.parametrize("servers", ["glide,websockets"])
def test_compare_reports_ratios(tmp_path: Path, servers: str) -> None:
    code, c = bench(tmp_path, "compare", "case1", "--scale", "0.005", "--interval", "5-20", "--servers", servers)
    assert code == 0
    assert set(c["results"]) == {"glide", "websockets"}
    for name, result in c["results"].items():
        assert_clean_delivery(result["load"], 30)
        assert_artifacts(tmp_path / "out" / name)
    assert set(c["ratios"]) == {"glide / websockets"}
    assert c["ratios"]["glide / websockets"]["delivery_rate"] == 1.0


def test_cluster_prices_a_cross_node_message_against_a_same_node_one(
    tmp_path: Path, pg_url: str, redis_server: RedisServer
) -> None:
    code, r = bench(
        tmp_path, "cluster", "--scale", "0.01", "--interval", "5-20", "--store", pg_url, "--redis", redis_server.url
    )
    assert code == 0
    assert r["profile"] == "cluster" and len(r["targets"]) == 2
    for phase in ("same_node", "cross_node"):
        p = r["phases"][phase]
        assert_clean_delivery(p["load"], 10 * 3)
        assert p["load"]["acked"] == p["load"]["receipts"] == 30
        assert [n["pid"] for n in p["server_process"]["nodes"]] == [n["pid"] for n in r["server_process"]["nodes"]]
        # what the nodes count per delivered message: every message was stored, woke a node
        assert p["derived"]["store_transactions_per_delivered"] > 0
        assert p["derived"]["redis_rounds_per_delivered"] > 0
        assert p["derived"]["wakeups_per_delivered"] > 0
    # every cross-node message and its receipt reach the other node through Redis
    assert r["phases"]["cross_node"]["derived"]["node_messages_received_per_delivered"] > 0
    d = r["derived"]
    assert d["same_node_cpu_us_per_delivered"] == r["phases"]["same_node"]["derived"]["server_cpu_us_per_delivered"]
    assert d["cross_node_cpu_us_per_delivered"] == r["phases"]["cross_node"]["derived"]["server_cpu_us_per_delivered"]
    assert d["cross_over_same"] > 0


def test_case1_spread_over_the_nodes_of_an_external_cluster(
    tmp_path: Path, pg_url: str, redis_server: RedisServer
) -> None:
    secret = "s" * 48
    args = ("--store", pg_url, "--redis", redis_server.url, "--jwt-secret", secret, "--secret-key", "k" * 48)
    limits = ("--signin-per-minute", "0", "--guests-per-minute", "0", "--world-channel", "false")
    nodes = [ServeProcess(tmp_path / f"node{i}", *args, *limits) for i in range(2)]
    try:
        targets = [a for n in nodes for a in ("--target", n.ws_url, "--server-pid", str(n.proc.pid))]
        api = f"http://127.0.0.1:{nodes[1].http_port}/api"
        code, r = bench(
            tmp_path, "case1", "--scale", "0.005", "--interval", "5-20", "--server", "none", *targets,
            "--api", api, "--jwt-secret", secret,
        )  # fmt: skip
    finally:
        for n in nodes:
            n.terminate()
    assert code == 0
    assert r["targets"] == [n.ws_url for n in nodes]
    assert_clean_delivery(r["load"], 30)
    assert [n["pid"] for n in r["server_process"]["nodes"]] == [n.proc.pid for n in nodes]
    assert r["server_process"]["cpu_s"] == round(sum(n["cpu_s"] for n in r["server_process"]["nodes"]), 3)


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert main(["compare", "--quiet", "--out", str(tmp_path)]) == 2
    assert main(["case1", "case2", "--quiet", "--out", str(tmp_path)]) == 2
    with pytest.raises(SystemExit):
        main(["nosuchprofile"])
    # --server none needs a target
    with pytest.raises(SystemExit):
        main(["case1", "--server", "none", "--quiet", "--out", str(tmp_path)])
    # the cluster profile needs two nodes: a store and a Redis for started ones, two targets for external ones
    assert main(["cluster", "--quiet", "--out", str(tmp_path)]) == 2
    assert main(["cluster", "--server", "none", "--target", "ws://127.0.0.1:1/ws", "--quiet"]) == 2
    assert main(["cluster", "--server", "picows", "--quiet", "--out", str(tmp_path)]) == 2
    # several targets are the nodes of an external cluster, never a server started here
    with pytest.raises(SystemExit):
        main(["case1", "--target", "ws://127.0.0.1:1/ws", "--target", "ws://127.0.0.1:2/ws", "--quiet"])
