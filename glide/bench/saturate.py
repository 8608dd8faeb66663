"""``saturate``: raise the offered rate step by step until p99 passes the bound or delivery falls below 100 %;
the result is the highest rate that held (throughput at equal p99 when compared across servers)."""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from glide.bench import procstat
from glide.bench.profiles import Profile, saturate_step
from glide.bench.runner import Options, accounts, base_result, check_fds, derive, endpoint, load_config, measure

BISECT_STEPS = 2
COOL_DOWN_S = 30.0
IDLE_CPU_PCT = 10.0


def verdict(load: dict[str, Any], p99_limit_ms: float) -> tuple[bool, str]:
    """Did this step hold? (every message delivered once, no errors, p99 within the bound)"""
    reasons = []
    if load.get("error"):
        reasons.append(str(load["error"]))
    if load.get("delivery_rate", 0) < 1 or (load.get("lost") or 0) or (load.get("unacked") or 0):
        reasons.append(f"delivery {100 * load.get('delivery_rate', 0):.3f} %")
    if load.get("duplicates"):
        reasons.append(f"{load['duplicates']} duplicates")
    if load.get("errors"):
        reasons.append(f"{load['errors']} errors {load.get('errors_by_kind', {})}")
    p99 = load.get("latency", {}).get("p99_ms", 0.0)
    if p99 > p99_limit_ms:
        reasons.append(f"p99 {p99:.1f} ms > {p99_limit_ms:g} ms")
    return not reasons, "; ".join(reasons) or "held"


def cool_down(pid: int | None) -> None:
    """Waits until the server is idle again (a failed step can leave a backlog behind)."""
    if not pid:
        time.sleep(1.0)
        return
    deadline = time.monotonic() + COOL_DOWN_S
    prev = procstat.read_proc(pid)
    while prev is not None and time.monotonic() < deadline:
        time.sleep(1.0)
        now = procstat.read_proc(pid)
        if now is None:
            return
        if 100 * (now.cpu_s - prev.cpu_s) / max(1e-9, now.t - prev.t) < IDLE_CPU_PCT:
            return
        prev = now


def run_saturate(profile: Profile, opts: Options, console: Console, scale: float) -> dict[str, Any]:
    check_fds(profile.clients)
    with tempfile.TemporaryDirectory(prefix="glide-bench-") as tmp, endpoint(opts, Path(tmp)) as ep:
        accts = accounts(ep, profile.clients, opts, console)
        steps: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        failed_rate: float | None = None

        def step(rate: float) -> bool:
            nonlocal best, failed_rate
            interval, messages = saturate_step(profile, rate)
            shaped = dataclasses.replace(profile, interval_ms=interval, messages=messages)
            cfg = load_config(shaped, ep, accts, opts)
            cfg["grace_ms"] = int(min(opts.grace_s, 5.0) * 1000)
            m = measure(cfg, ep.pids, console, opts.quiet, f"saturate {shaped.offered_rate():,.0f}/s → {ep.kind}")
            ok, why = verdict(m.load, profile.p99_limit_ms)
            record = {
                "offered_rate_per_s": round(shaped.offered_rate(), 1),
                "interval_ms": list(interval),
                "messages_per_client": messages,
                "held": ok,
                "verdict": why,
                "delivered_per_s": round(m.load.get("delivered_per_s", 0.0), 1),
                "p99_ms": m.load.get("latency", {}).get("p99_ms"),
                "p50_ms": m.load.get("latency", {}).get("p50_ms"),
                "delivery_rate": m.load.get("delivery_rate"),
                "errors": m.load.get("errors"),
                "derived": derive(m, profile.clients),
            }
            steps.append(record)
            if not opts.quiet:
                console.print(f"  {'held' if ok else 'FAILED'}: {why}")
            if ok and (best is None or record["offered_rate_per_s"] > best["offered_rate_per_s"]):
                best = record | {"load": m.load, "server_process": m.server}
            if not ok:
                failed_rate = rate if failed_rate is None else min(failed_rate, rate)
            cool_down(ep.pid)
            return ok

        rate = profile.start_rate
        held_rate: float | None = None
        grow_steps = max(1, opts.max_steps - BISECT_STEPS)
        while len(steps) < grow_steps and (held_rate is None or failed_rate is None):
            if step(rate):
                held_rate = rate
                rate *= profile.growth
            elif held_rate is None:
                rate /= profile.growth  # the first rate was already too much: go down until one holds
            else:
                break
        if held_rate is not None and failed_rate is not None:
            for _ in range(min(BISECT_STEPS, opts.max_steps - len(steps))):
                mid = math.sqrt(held_rate * failed_rate)
                if step(mid):
                    held_rate = mid
                else:
                    failed_rate = mid

        result = base_result(profile, opts, ep, scale)
        result["steps"] = steps
        result["p99_limit_ms"] = profile.p99_limit_ms
        if best is not None:
            result["load"] = best.pop("load")
            result["server_process"] = best.pop("server_process")
            result["best"] = best
            result["derived"] = dict(best["derived"], max_held_rate_per_s=best["offered_rate_per_s"])
        else:
            result["derived"] = {"max_held_rate_per_s": 0.0}
            result["error"] = "no rate held"
        return result
