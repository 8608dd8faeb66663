"""What a run leaves behind: a summary table on the console, a JSON file and PNG charts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

GOALS = {
    "case1_p99_ms": 10.0,
    "saturate_vs_picows": 3.0,
    "idle_bytes_per_conn": 4096.0,
}


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        text = f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    elif isinstance(v, int):
        text = f"{v:,}"
    else:
        text = str(v)
    return f"{text} {unit}".strip()


CLUSTER_COUNTS = (  # glide.bench.cluster's counts per delivered message, summed over the nodes
    ("store_transactions_per_delivered", "store transactions"),
    ("redis_rounds_per_delivered", "Redis round trips"),
    ("node_messages_received_per_delivered", "messages between nodes"),
    ("wakeups_per_delivered", "node wake-ups"),
    ("machine_cpu_us_per_delivered", "machine CPU µs (nodes, PostgreSQL, Redis, load generator)"),
)


def summary_table(result: dict[str, Any]) -> Table:
    """The figures of one run."""
    load = result.get("load", {})
    lat = load.get("latency", {})
    d = result.get("derived", {})
    srv = result.get("server_process", {})
    t = Table(title=f"glide bench {result['profile']} → {result['server']} (scale {result['scale']:g})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    rows: list[tuple[str, Any, str]] = [
        ("clients logged in", load.get("logged_in"), f"of {load.get('clients', 0):,}"),
        ("messages sent", load.get("sent"), ""),
        ("acknowledged (ack.message)", load.get("acked"), ""),
        ("delivered", load.get("delivered"), f"of {load.get('expected_deliveries', 0):,} expected"),
        ("delivery rate", 100 * load.get("delivery_rate", 0.0), "%"),
        ("duplicated", load.get("duplicates"), ""),
        ("lost (stored, never delivered)", load.get("lost"), ""),
        ("unacknowledged", load.get("unacked"), ""),
        ("receipts (ack.notify)", load.get("receipts"), ""),
        ("errors", load.get("errors"), json.dumps(load.get("errors_by_kind", {})) if load.get("errors") else ""),
        ("delivered / s", d.get("delivered_per_s"), "msg/s"),
        ("latency p50", lat.get("p50_ms"), "ms"),
        ("latency p90", lat.get("p90_ms"), "ms"),
        ("latency p99", lat.get("p99_ms"), "ms"),
        ("latency p99.9", lat.get("p999_ms"), "ms"),
        ("latency max", lat.get("max_ms"), "ms"),
        ("server CPU", srv.get("cpu_s"), "s"),
        ("server CPU / delivered msg", d.get("server_cpu_us_per_delivered"), "µs"),
        ("server peak RSS (whole life)", (srv.get("peak_rss_kb") or 0) / 1024 if srv else None, "MiB"),
        ("server RSS growth / connection", d.get("server_rss_growth_per_conn_kb"), "KiB"),
        ("harness CPU", d.get("harness_cpu_s"), "s"),
        ("load generator CPU / delivered msg", d.get("loadgen_cpu_us_per_delivered"), "µs"),
    ]
    if "bytes_per_conn" in d:
        rows.append(("server memory / connection", d["bytes_per_conn"], "B (RSS delta / N)"))
    if "cross_over_same" in d:
        rows.append(("same-node: server CPU / msg", d["same_node_cpu_us_per_delivered"], "µs"))
        rows.append(("cross-node: server CPU / msg", d["cross_node_cpu_us_per_delivered"], "µs"))
        rows.append(("cross-node / same-node", d["cross_over_same"], "times"))
        phases = result.get("phases", {})
        for key, what in CLUSTER_COUNTS:
            same, cross = (phases.get(p, {}).get("derived", {}).get(key) for p in ("same_node", "cross_node"))
            if same is not None and cross is not None:
                rows.append((f"{what} / msg, same → cross", f"{same:.2f} → {cross:.2f}", ""))
    if "max_held_rate_per_s" in d:
        rows.append(("highest rate that held", d["max_held_rate_per_s"], "msg/s"))
    for name, value, unit in rows:
        t.add_row(name, _fmt(value, unit) if not unit.startswith("of") else f"{_fmt(value)} {unit}")
    if load.get("error") or result.get("error"):
        t.add_row("[red]problem", f"[red]{load.get('error') or result.get('error')}")
    return t


def glide_buckets_table(result: dict[str, Any]) -> Table:
    t = Table(title="latency in GlideIM's buckets")
    t.add_column("ms", justify="right")
    t.add_column("messages", justify="right")
    t.add_column("%", justify="right")
    buckets = result.get("load", {}).get("latency", {}).get("glide_buckets", [])
    total = sum(c for _, c in buckets) or 1
    for label, count in buckets:
        if count:
            t.add_row(label, f"{count:,}", f"{100 * count / total:.2f}")
    return t


def print_summary(console: Console, result: dict[str, Any]) -> None:
    console.print(summary_table(result))
    if result.get("load", {}).get("latency", {}).get("count"):
        console.print(glide_buckets_table(result))
    for step in result.get("steps", []):
        console.print(
            f"  step {step['offered_rate_per_s']:>10,.0f} msg/s offered: "
            f"delivered {step['delivered_per_s']:>10,.0f}/s, "
            f"p99 {step['p99_ms'] or 0:8.1f} ms  {'held' if step['held'] else 'FAILED: ' + step['verdict']}"
        )


def write_json(result: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")
    return path


def charts(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """``throughput.png`` (per-second frames, deliveries, online, errors; server CPU and RSS) and
    ``latency.png`` (log-bucket distribution and GlideIM's buckets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"glide bench {result['profile']} → {result['server']} (scale {result['scale']:g})"
    load = result.get("load", {})
    series = load.get("series", {})
    srv = result.get("server_process", {}).get("series", {})
    paths = []

    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=False)
    t = series.get("t", [])
    ax = axes[0]
    ax.plot(t, series.get("frames_in", []), label="frames in/s")
    ax.plot(t, series.get("frames_out", []), label="frames out/s")
    ax.plot(t, series.get("delivered", []), label="delivered/s")
    ax.plot(t, series.get("sent", []), label="sent/s", linestyle="--")
    ax.set_ylabel("per second")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    ax2 = ax.twinx()
    ax2.plot(t, series.get("online", []), color="grey", alpha=0.5, label="online")
    ax2.set_ylabel("online connections")
    axes[1].bar(t, series.get("errors", []), color="red", width=0.8)
    axes[1].set_ylabel("errors/s")
    if srv:
        axes[2].plot(srv.get("t", []), srv.get("cpu_pct", []), label="server CPU %")
        axes[2].set_ylabel("server CPU %")
        ax3 = axes[2].twinx()
        ax3.plot(srv.get("t", []), [kb / 1024 for kb in srv.get("rss_kb", [])], color="purple", label="RSS")
        ax3.set_ylabel("server RSS (MiB)")
    axes[2].set_xlabel("seconds")
    fig.tight_layout()
    p = out_dir / "throughput.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)

    lat = load.get("latency", {})
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    buckets = [(ms, c) for ms, c in lat.get("buckets", []) if c]
    if buckets:
        lo = max(min(ms for ms, _ in buckets), 0.001)
        hi = max(ms for ms, _ in buckets) * 1.01
        edges = [lo * (hi / lo) ** (i / 40) for i in range(41)] if hi > lo else [lo * 0.9, lo * 1.1]
        a.hist([ms for ms, _ in buckets], bins=edges, weights=[c for _, c in buckets])
        a.set_xscale("log")
        cdf = a.twinx()
        total, seen, xs, ys = sum(c for _, c in buckets), 0, [], []
        for ms, c in buckets:
            seen += c
            xs.append(ms)
            ys.append(100 * seen / total)
        cdf.plot(xs, ys, color="black", linewidth=1)
        cdf.set_ylabel("cumulative %")
        cdf.set_ylim(0, 101)
    a.set_xlabel("latency (ms, log scale)")
    a.set_ylabel("messages")
    summary = f"p50 {lat.get('p50_ms', 0):.2f}  p99 {lat.get('p99_ms', 0):.2f}  max {lat.get('max_ms', 0):.1f} ms"
    a.set_title(summary, fontsize="small")
    glide = lat.get("glide_buckets", [])
    b.bar([label for label, _ in glide], [c for _, c in glide])
    b.set_title("GlideIM's buckets (ms)", fontsize="small")
    b.tick_params(axis="x", rotation=45)
    fig.suptitle(title)
    fig.tight_layout()
    p = out_dir / "latency.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)
    return paths
