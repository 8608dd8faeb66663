"""``cluster``: the price of a cross-node message. The same 1:1 chat load runs twice on two nodes of one cluster:
first with every client on the first node (each message stays on its node), then with the clients spread over
both and every sender's peer on the other node (each message crosses nodes through Redis). Server CPU per
delivered message is summed over both nodes in each phase; ``cross_over_same`` is their ratio.

Beside the CPU, each phase counts per delivered message what a node pays per batch rather than per message,
summed over the nodes: store transactions and Redis round trips (the nodes' own counters, scraped from
``/metrics``), messages received from the other node, and wake-ups (voluntary context switches of the nodes'
threads). Those say why the ratio is what it is at a given load."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from glide.bench import procstat
from glide.bench.profiles import Profile
from glide.bench.runner import Endpoint, Options, accounts, base_result, check_fds, derive, load_config, measure
from glide.bench.servers import GLIDES, start_server

NODES = 2
PHASES = ("same_node", "cross_node")
COUNTED = {  # a node's metric -> the name of its count per delivered message
    "glide_store_transactions_total": "store_transactions",
    "glide_cluster_rounds_total": "redis_rounds",
    "glide_cluster_messages_received_total": "node_messages_received",
}


@dataclasses.dataclass(frozen=True)
class NodeWatch:
    """A node started here, read before and after each phase: its metrics (with its admin token) and its pid."""

    metrics_url: str
    admin_token: str
    pid: int


def node_counts(watches: list[NodeWatch]) -> dict[str, float] | None:
    """The nodes' counters now, summed: COUNTED's and ``wakeups``, with the machine's busy CPU (µs: the nodes,
    PostgreSQL, Redis and the load generator together, all on this machine); None when a node does not answer
    (the phase then reports its figures without the counts)."""
    totals = dict.fromkeys([*COUNTED.values(), "wakeups"], 0.0)
    totals["machine_cpu_us"] = procstat.machine_cpu_s() * 1e6
    with httpx.Client(timeout=10) as client:
        for w in watches:
            try:
                r = client.get(w.metrics_url, headers={"Authorization": f"Bearer {w.admin_token}"})
                r.raise_for_status()
            except httpx.HTTPError:
                return None
            for family in text_string_to_metric_families(r.text):
                for sample in family.samples:
                    if sample.name in COUNTED:
                        totals[COUNTED[sample.name]] += sample.value
            totals["wakeups"] += procstat.wakeups(w.pid)
    return totals


def per_delivered(before: dict[str, float], after: dict[str, float], delivered: int) -> dict[str, float | None]:
    return {f"{k}_per_delivered": round((after[k] - before[k]) / delivered, 3) if delivered else None for k in after}


@contextlib.contextmanager
def cluster_endpoint(opts: Options, workdir: Path) -> Iterator[tuple[Endpoint, list[NodeWatch]]]:
    """Two glide nodes started here on ``--store`` and ``--redis`` (and how to read their counters), or the
    external nodes given by ``--target`` (nothing to read)."""
    if opts.server == "none":
        if len(opts.targets) < NODES:
            raise ValueError("cluster: give --target once per node (at least two) with --server none")
        yield Endpoint("external", opts.targets, opts.api, opts.server_pids, opts.jwt_secret), []
        return
    if opts.server not in GLIDES:
        raise ValueError(f"cluster: the nodes are glide ({', '.join(GLIDES)}) or external (--server none)")
    if not (opts.store and opts.redis):
        raise ValueError("cluster: the nodes share a store and a Redis: give --store postgresql://… --redis redis://…")
    # Every node must accept the tokens and credentials the others issue.
    jwt_secret = secrets.token_hex(32)
    shared = [f"--store={opts.store}", f"--redis={opts.redis}", f"--jwt-secret={jwt_secret}"]
    admin_token = secrets.token_hex(32)
    shared += [f"--secret-key={secrets.token_hex(32)}", f"--admin-token={admin_token}"]
    with contextlib.ExitStack() as stack:
        nodes = [
            stack.enter_context(start_server(opts.server, workdir / f"node{i}", extra=[*shared, *opts.server_args]))
            for i in range(NODES)
        ]
        endpoint = Endpoint(
            opts.server,
            [n.ws_url for n in nodes],
            nodes[0].api_url,
            [n.pid for n in nodes],
            None if opts.signin else jwt_secret,
        )
        watches = [
            NodeWatch(n.api_url.removesuffix("/api") + "/metrics", admin_token, n.pid) for n in nodes if n.api_url
        ]
        yield endpoint, watches


def run_cluster(profile: Profile, opts: Options, console: Console, scale: float) -> dict[str, Any]:
    """Same-node phase, then cross-node phase, on the same nodes and users."""
    check_fds(profile.clients)
    with tempfile.TemporaryDirectory(prefix="glide-bench-") as tmp, cluster_endpoint(opts, Path(tmp)) as (ep, watches):
        accts = accounts(ep, profile.clients, opts, console)
        phases: dict[str, dict[str, Any]] = {}
        for phase in PHASES:
            cross = phase == "cross_node"
            view = ep if cross else dataclasses.replace(ep, ws_urls=ep.ws_urls[:1])
            cfg = load_config(profile, view, accts, opts)
            if cross:
                cfg["cross_node"] = True
            label = f"{profile.name} {phase.replace('_', '-')} → {len(ep.ws_urls)} nodes of {ep.kind}"
            before = node_counts(watches) if watches else None
            m = measure(cfg, ep.pids, console, opts.quiet, label)
            derived = derive(m, profile.clients)
            after = node_counts(watches) if before is not None else None
            if before is not None and after is not None:
                derived.update(per_delivered(before, after, m.load.get("delivered", 0)))
            phases[phase] = {"load": m.load, "server_process": m.server, "derived": derived, "wall_s": m.wall_s}
        same = phases["same_node"]["derived"].get("server_cpu_us_per_delivered")
        cross_cost = phases["cross_node"]["derived"].get("server_cpu_us_per_delivered")
        result = base_result(profile, opts, ep, scale)
        # The headline figures are the cross-node phase's, with both phases' CPU per message beside them.
        result.update(phases["cross_node"])
        result["derived"] = dict(phases["cross_node"]["derived"])
        result["derived"].update(
            same_node_cpu_us_per_delivered=same,
            cross_node_cpu_us_per_delivered=cross_cost,
            cross_over_same=round(cross_cost / same, 3) if same and cross_cost else None,
        )
        result["phases"] = phases
        return result
