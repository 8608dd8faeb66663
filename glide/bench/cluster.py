"""``cluster``: the price of a cross-node message. The same 1:1 chat load runs twice on two nodes of one cluster:
first with every client on the first node (each message stays on its node), then with the clients spread over
both and every sender's peer on the other node (each message crosses nodes through Redis). Server CPU per
delivered message is summed over both nodes in each phase; ``cross_over_same`` is their ratio."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from glide.bench.profiles import Profile
from glide.bench.runner import Endpoint, Options, accounts, base_result, check_fds, derive, load_config, measure
from glide.bench.servers import GLIDES, start_server

NODES = 2
PHASES = ("same_node", "cross_node")


@contextlib.contextmanager
def cluster_endpoint(opts: Options, workdir: Path) -> Iterator[Endpoint]:
    """Two glide nodes started here on ``--store`` and ``--redis``, or the external nodes given by ``--target``."""
    if opts.server == "none":
        if len(opts.targets) < NODES:
            raise ValueError("cluster: give --target once per node (at least two) with --server none")
        yield Endpoint("external", opts.targets, opts.api, opts.server_pids, opts.jwt_secret)
        return
    if opts.server not in GLIDES:
        raise ValueError(f"cluster: the nodes are glide ({', '.join(GLIDES)}) or external (--server none)")
    if not (opts.store and opts.redis):
        raise ValueError("cluster: the nodes share a store and a Redis: give --store postgresql://… --redis redis://…")
    # Every node must accept the tokens and credentials the others issue.
    jwt_secret = secrets.token_hex(32)
    shared = [f"--store={opts.store}", f"--redis={opts.redis}", f"--jwt-secret={jwt_secret}"]
    shared += [f"--secret-key={secrets.token_hex(32)}", f"--admin-token={secrets.token_hex(32)}"]
    with contextlib.ExitStack() as stack:
        nodes = [
            stack.enter_context(start_server(opts.server, workdir / f"node{i}", extra=[*shared, *opts.server_args]))
            for i in range(NODES)
        ]
        yield Endpoint(
            opts.server,
            [n.ws_url for n in nodes],
            nodes[0].api_url,
            [n.pid for n in nodes],
            None if opts.signin else jwt_secret,
        )


def run_cluster(profile: Profile, opts: Options, console: Console, scale: float) -> dict[str, Any]:
    """Same-node phase, then cross-node phase, on the same nodes and users."""
    check_fds(profile.clients)
    with tempfile.TemporaryDirectory(prefix="glide-bench-") as tmp, cluster_endpoint(opts, Path(tmp)) as ep:
        accts = accounts(ep, profile.clients, opts, console)
        phases: dict[str, dict[str, Any]] = {}
        for phase in PHASES:
            cross = phase == "cross_node"
            view = ep if cross else dataclasses.replace(ep, ws_urls=ep.ws_urls[:1])
            cfg = load_config(profile, view, accts, opts)
            if cross:
                cfg["cross_node"] = True
            label = f"{profile.name} {phase.replace('_', '-')} → {len(ep.ws_urls)} nodes of {ep.kind}"
            m = measure(cfg, ep.pids, console, opts.quiet, label)
            phases[phase] = {
                "load": m.load,
                "server_process": m.server,
                "derived": derive(m, profile.clients),
                "wall_s": m.wall_s,
            }
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
