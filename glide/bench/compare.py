"""``glide bench compare PROFILE``: the same profile against glide and each baseline in turn, as ratios."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from glide.bench.profiles import Profile
from glide.bench.runner import Options
from glide.bench.servers import BASELINES, COMPARED, GLIDES, ServerStartError

DEFAULT_SERVERS = COMPARED

# (key in derived/latency, label, True when higher is better)
METRICS: dict[str, list[tuple[str, str, bool]]] = {
    "chat": [
        ("delivery_rate", "delivery rate", True),
        ("delivered_per_s", "delivered msg/s", True),
        ("p50_ms", "p50 latency ms", False),
        ("p99_ms", "p99 latency ms", False),
        ("server_cpu_us_per_delivered", "server CPU µs / delivered msg", False),
        ("server_rss_growth_per_conn_kb", "server RSS growth KiB / connection", False),
        ("harness_cpu_s", "harness CPU s", False),
        ("loadgen_cpu_us_per_delivered", "load generator CPU µs / delivered msg", False),
    ],
    "saturate": [
        ("max_held_rate_per_s", "highest rate held (msg/s, p99 ≤ bound)", True),
        ("delivered_per_s", "delivered msg/s at that rate", True),
        ("p99_ms", "p99 ms at that rate", False),
        ("server_cpu_us_per_delivered", "server CPU µs / delivered msg", False),
    ],
    "idle": [
        ("bytes_per_conn", "server memory B / connection", False),
        ("server_peak_rss_kb", "server peak RSS KiB", False),
    ],
}


def metric(result: dict[str, Any], key: str) -> float | None:
    d = result.get("derived", {})
    v = d[key] if key in d else result.get("load", {}).get("latency", {}).get(key)
    return float(v) if isinstance(v, int | float) else None


def ratios(results: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, float | None]]:
    """``glide ÷ baseline`` for every metric, for each glide variant against each baseline that ran."""
    out: dict[str, dict[str, float | None]] = {}
    for mine in GLIDES:
        for base in BASELINES:
            if mine not in results or base not in results:
                continue
            row: dict[str, float | None] = {}
            for key, _, _ in METRICS[kind]:
                a, b = metric(results[mine], key), metric(results[base], key)
                row[key] = round(a / b, 3) if a is not None and b else None
            out[f"{mine} / {base}"] = row
    return out


def table(results: dict[str, dict[str, Any]], kind: str, profile: str) -> Table:
    t = Table(title=f"glide bench compare {profile}")
    t.add_column("metric")
    for name in results:
        t.add_column(name, justify="right")
    ratio = ratios(results, kind)
    for name in ratio:
        t.add_column(name, justify="right", style="cyan")
    for key, label, higher in METRICS[kind]:
        cells = []
        for r in results.values():
            v = metric(r, key)
            cells.append("-" if v is None else f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}")
        for row in ratio.values():
            v = row.get(key)
            cells.append("-" if v is None else f"{v:.2f}x")
        t.add_row(f"{label} ({'higher' if higher else 'lower'} is better)", *cells)
    for name, r in results.items():
        if r.get("error"):
            t.add_row("[red]problem", f"{name}: {r['error']}")
    return t


def run_compare(
    profile: Profile,
    opts: Options,
    console: Console,
    scale: float,
    servers: list[str],
    run_one: Callable[[Profile, Options, Console, float], dict[str, Any]],
) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {}
    for server in servers:
        console.rule(f"{profile.name} → {server}")
        try:
            results[server] = run_one(profile, dataclasses.replace(opts, server=server), console, scale)
        except ServerStartError as e:
            first = str(e).strip().splitlines()
            results[server] = {"server": server, "error": f"did not start: {first[-1] if first else e}"}
            console.print(f"[red]{server} did not start[/red]: {e}")
    kind = profile.kind if profile.kind in METRICS else "chat"
    return {"profile": profile.name, "scale": scale, "kind": kind, "results": results, "ratios": ratios(results, kind)}
