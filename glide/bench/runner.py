"""One profile against one server: start it, create users, sample its CPU and memory, run the load, collect."""

from __future__ import annotations

import contextlib
import itertools
import math
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from glide.bench import procstat, users
from glide.bench.loadgen import LoadConfig, run_load
from glide.bench.profiles import Profile
from glide.bench.servers import BASELINES, ServerProcess, start_server

FD_MARGIN = 512
PER_SOURCE_IP = 25_000  # connections per 127.0.0.x source address (ephemeral ports are 32768-60999)


@dataclass
class Options:
    """How to run: which server, how clients log in, where results go."""

    server: str = "glide"
    targets: list[str] = field(default_factory=list)
    api: str | None = None
    users_mode: str = "register"
    signin: bool = False
    jwt_secret: str | None = None
    secret_key: str | None = None
    uid_start: int = 1
    server_pids: list[int] = field(default_factory=list)
    store: str | None = None
    redis: str | None = None
    group_id: str | None = None
    out_dir: Path = field(default_factory=lambda: Path("bench-results"))
    seed: int | None = None
    grace_s: float = 10.0
    source_ips: list[str] = field(default_factory=list)
    baselines_dir: str | None = None
    server_args: list[str] = field(default_factory=list)
    concurrency: int = 32
    max_duration_s: float | None = None
    max_steps: int = 14
    quiet: bool = False


@dataclass
class Endpoint:
    """The server clients talk to: a child process of ours, or an external one (``--server none``); several
    nodes of one cluster when ``ws_urls`` has more than one (client ``i`` connects to ``ws_urls[i % n]``)."""

    kind: str
    ws_urls: list[str]
    api_url: str | None
    pids: list[int]
    jwt_secret: str | None
    data_dir: Path | None = None
    process: ServerProcess | None = None

    @property
    def ws_url(self) -> str:
        return self.ws_urls[0]

    @property
    def pid(self) -> int | None:
        return self.pids[0] if self.pids else None


@contextlib.contextmanager
def endpoint(opts: Options, workdir: Path) -> Iterator[Endpoint]:
    """Starts the server under test (or describes the external one) and stops it afterwards."""
    if opts.server == "none":
        if not opts.targets:
            raise SystemExit("glide bench: --server none needs --target ws://host:port/ws")
        yield Endpoint("external", opts.targets, opts.api, opts.server_pids, opts.jwt_secret)
        return
    if len(opts.targets) > 1:
        raise SystemExit("glide bench: several --target need --server none (or the cluster profile)")
    proc = start_server(opts.server, workdir, extra=opts.server_args, baselines=opts.baselines_dir)
    try:
        secret = proc.jwt_secret
        if proc.data_dir is not None and not opts.signin:
            secret = users.jwt_secret_of(proc.data_dir)
        yield Endpoint(opts.server, [proc.ws_url], proc.api_url, [proc.pid], secret, proc.data_dir, proc)
    finally:
        proc.stop()


def accounts(ep: Endpoint, n: int, opts: Options, console: Console) -> list[users.Account]:
    """``n`` clients that can log in to ``ep``."""
    uids = list(range(opts.uid_start, opts.uid_start + n))
    if opts.secret_key:
        return users.mint_credentials(opts.secret_key, uids)
    if ep.kind in BASELINES and ep.jwt_secret:
        return users.tokens_for(ep.jwt_secret, uids)
    if ep.api_url:
        with _progress(console, opts.quiet) as progress:
            task = progress.add_task(f"users ({opts.users_mode} over HTTP)", total=n, status="")
            return users.provision_via_api(
                ep.api_url,
                n,
                mode=opts.users_mode,
                jwt_secret=None if opts.signin else ep.jwt_secret,
                concurrency=opts.concurrency,
                progress=lambda done: progress.update(task, completed=done),
            )
    if ep.jwt_secret:
        return users.tokens_for(ep.jwt_secret, uids)
    raise SystemExit("glide bench: cannot log clients in: give --api, --jwt-secret or --secret-key")


def create_group(ep: Endpoint, members: list[users.Account]) -> str:
    """A group holding every member, created over glide's HTTP API by the first member."""
    if not ep.api_url or not members or members[0].token is None:
        raise users.ProvisionError("fanout needs the HTTP API (group/create) and token logins")
    api = ep.api_url.rstrip("/")
    owner = {"Authorization": f"Bearer {members[0].token}"}
    with httpx.Client(timeout=60) as client:
        reply = client.post(f"{api}/group/create", json={"name": "bench fanout"}, headers=owner)
        data = users.api_data(reply, "group/create")
        gid = str(data.get("Gid") or data.get("gid"))
        rest = [int(m.uid) for m in members[1:]]
        for i in range(0, len(rest), 200):
            batch = {"gid": int(gid), "uid": rest[i : i + 200]}
            reply = client.post(f"{api}/group/members/invite", json=batch, headers=owner)
            users.api_data(reply, "group/members/invite")
    return gid


@contextlib.contextmanager
def _progress(console: Console, quiet: bool) -> Iterator[Progress]:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    progress = Progress(*columns, console=console, disable=quiet, transient=False, refresh_per_second=4)
    with progress:
        yield progress


def _status(s: dict[str, Any]) -> str:
    p99 = s.get("latency", {}).get("p99_ms", 0.0)
    return f"{s['phase']} on {s['online']:,} dlv {s['delivered']:,} p99 {p99:.1f}ms err {s['errors']:,}"


def source_ips(opts: Options, clients: int) -> list[str]:
    """Explicit ``--source-ips``, or enough 127.0.0.x addresses for ``clients`` loopback connections."""
    if opts.source_ips:
        return opts.source_ips
    local = all(t.startswith("ws://127.") for t in opts.targets)
    if clients <= PER_SOURCE_IP or not (local or opts.server != "none"):
        return []
    return [f"127.0.0.{i + 1}" for i in range(math.ceil(clients / PER_SOURCE_IP))]


def check_fds(clients: int) -> int:
    """Raises the file limit for ``clients`` sockets (the server child inherits it); fails clearly if capped."""
    wanted = clients + FD_MARGIN
    got = procstat.raise_fd_limit(wanted)
    if got < wanted:
        raise SystemExit(
            f"glide bench: {clients:,} connections need {wanted:,} file descriptors per process, but the hard "
            f"limit (RLIMIT_NOFILE) here is {got:,}; raise it (ulimit -Hn, as root) or lower --clients/--scale"
        )
    return got


def load_config(
    profile: Profile, ep: Endpoint, accts: list[users.Account], opts: Options, group: str | None = None
) -> LoadConfig:
    """The load generator's config for one run of ``profile``."""
    span_s = profile.clients * profile.connect_interval_ms / 1000
    send_s = profile.messages * profile.interval_ms[1] / 1000
    max_s = opts.max_duration_s or (60 + 3 * (span_s + send_s + profile.hold_s) + opts.grace_s)
    cfg: LoadConfig = {
        "users": [a.load_user() for a in accts],
        "connect_interval_ms": profile.connect_interval_ms,
        "messages": profile.messages,
        "interval_ms": list(profile.interval_ms),
        "grace_ms": int(opts.grace_s * 1000),
        "hold_ms": int(profile.hold_s * 1000),
        "max_duration_ms": int(max_s * 1000),
        "connect_timeout_ms": 30_000,
        "login_timeout_ms": 30_000,
        "source_ips": source_ips(opts, profile.clients),
    }
    if len(ep.ws_urls) > 1:
        cfg["urls"] = ep.ws_urls
    else:
        cfg["url"] = ep.ws_url
    if opts.seed is not None:
        cfg["seed"] = opts.seed
    if group is not None:
        cfg["group"] = group
    if profile.senders is not None:
        cfg["senders"] = profile.senders
    return cfg


@dataclass
class Measured:
    """A load result with the server's and the harness's resource use around it."""

    load: dict[str, Any]
    server: dict[str, Any]
    harness_cpu_s: float
    wall_s: float


def measure(
    cfg: LoadConfig,
    pids: list[int],
    console: Console,
    quiet: bool,
    label: str,
    on_snapshot: Callable[[dict[str, Any]], None] | None = None,
) -> Measured:
    """Runs one load while sampling the server's processes (CPU, RSS) every second: with several nodes, CPU is
    their sum and memory the first node's (each node's own figures are under ``nodes``)."""
    samplers = [procstat.ProcSampler(pid) for pid in pids]
    for sampler in samplers:
        sampler.start()
    cpu0, t0 = procstat.harness_cpu_s(), time.monotonic()
    total = max(1, len(cfg["users"]) * cfg.get("messages", 0)) if cfg.get("messages") else len(cfg["users"])
    with _progress(console, quiet) as progress:
        task: TaskID = progress.add_task(label, total=total, status="starting")

        def seen(s: dict[str, Any]) -> None:
            done = s["sent"] if cfg.get("messages") else s["online"]
            progress.update(task, completed=done, status=_status(s))
            if on_snapshot is not None:
                on_snapshot(s)

        load = run_load(cfg, seen)
        done = load["sent"] if cfg.get("messages") else load["logged_in"]
        progress.update(task, completed=done, status=_status(load))
    wall, cpu = time.monotonic() - t0, procstat.harness_cpu_s() - cpu0
    server: dict[str, Any] = {}
    for sampler in samplers:
        sampler.stop()
    if samplers and samplers[0].samples:
        s = samplers[0].samples
        nodes = [
            {"pid": x.pid, "cpu_s": round(x.samples[-1].cpu_s - x.samples[0].cpu_s, 3)} for x in samplers if x.samples
        ]
        server = {
            "pid": samplers[0].pid,
            "cpu_s": round(sum(n["cpu_s"] for n in nodes), 3),
            "rss_before_kb": s[0].rss_kb,
            "rss_after_kb": s[-1].rss_kb,
            "rss_max_sampled_kb": max(x.rss_kb for x in s),
            "peak_rss_kb": procstat.peak_rss_kb(samplers[0].pid),
            "series": {
                "t": [round(x.t - s[0].t, 2) for x in s],
                "cpu_pct": [0.0]
                + [round(100 * (b.cpu_s - a.cpu_s) / max(1e-9, b.t - a.t), 1) for a, b in itertools.pairwise(s)],
                "rss_kb": [x.rss_kb for x in s],
            },
        }
        if len(nodes) > 1:
            server["nodes"] = nodes
    return Measured(load, server, round(cpu, 3), round(wall, 3))


def derive(m: Measured, clients: int) -> dict[str, Any]:
    """Ratios that compare across servers."""
    load, server = m.load, m.server
    delivered = load.get("delivered", 0)
    out: dict[str, Any] = {
        "delivered_per_s": round(load.get("delivered_per_s", 0.0), 1),
        "delivery_rate": load.get("delivery_rate", 0.0),
        "harness_cpu_s": m.harness_cpu_s,
        "harness_cpu_us_per_delivered": round(1e6 * m.harness_cpu_s / delivered, 2) if delivered else None,
    }
    loadgen_cpu = load.get("cpu_s")
    if loadgen_cpu is not None:  # the load generator's thread alone (the harness adds Python, progress bars)
        out["loadgen_cpu_s"] = round(loadgen_cpu, 3)
        out["loadgen_cpu_us_per_delivered"] = round(1e6 * loadgen_cpu / delivered, 2) if delivered else None
    if server:
        out["server_cpu_s"] = server["cpu_s"]
        out["server_cpu_us_per_delivered"] = round(1e6 * server["cpu_s"] / delivered, 2) if delivered else None
        out["server_peak_rss_kb"] = server["peak_rss_kb"]
        online = max(1, load.get("logged_in", clients))
        # Growth while the load ran, per connection: the process's own baseline (interpreter, store) and the
        # user provisioning before the run stay out of it, unlike the peak (VmHWM covers the whole life).
        growth = server["rss_max_sampled_kb"] - server["rss_before_kb"]
        out["server_rss_growth_per_conn_kb"] = round(growth / online, 2)
        out["harness_cpu_below_server"] = m.harness_cpu_s < server["cpu_s"]
    return out


def base_result(profile: Profile, opts: Options, ep: Endpoint, scale: float) -> dict[str, Any]:
    return {
        "profile": profile.name,
        "description": profile.description,
        "scale": scale,
        "server": ep.kind,
        "target": ep.ws_url,
        **({"targets": ep.ws_urls} if len(ep.ws_urls) > 1 else {}),
        "params": {
            "clients": profile.clients,
            "messages_per_client": profile.messages,
            "interval_ms": list(profile.interval_ms),
            "connect_interval_ms": profile.connect_interval_ms,
            "hold_s": profile.hold_s,
            "senders": profile.senders,
            "offered_rate_per_s": round(profile.offered_rate(), 1) if profile.messages else 0,
        },
        "machine": procstat.machine(),
        "command": " ".join(shlex.quote(a) for a in ["glide", *sys.argv[1:]]) if sys.argv else "",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_chat(profile: Profile, opts: Options, console: Console, scale: float) -> dict[str, Any]:
    """case1, case2, fanout (and any 1:1 or group profile)."""
    check_fds(profile.clients)
    with tempfile.TemporaryDirectory(prefix="glide-bench-") as tmp, endpoint(opts, Path(tmp)) as ep:
        accts = accounts(ep, profile.clients, opts, console)
        group = None
        if profile.group:
            group = opts.group_id or create_group(ep, accts)
        cfg = load_config(profile, ep, accts, opts, group)
        m = measure(cfg, ep.pids, console, opts.quiet, f"{profile.name} → {ep.kind}")
        result = base_result(profile, opts, ep, scale)
        result.update(load=m.load, server_process=m.server, derived=derive(m, profile.clients), wall_s=m.wall_s)
        if group is not None:
            result["group"] = group
        return result


def run_idle(profile: Profile, opts: Options, console: Console, scale: float) -> dict[str, Any]:
    """N idle logged-in connections; server RSS delta / N while all are connected."""
    check_fds(profile.clients)
    with tempfile.TemporaryDirectory(prefix="glide-bench-") as tmp, endpoint(opts, Path(tmp)) as ep:
        accts = accounts(ep, profile.clients, opts, console)
        time.sleep(1.0)  # let provisioning settle before the "before" reading
        before = procstat.read_proc(ep.pid) if ep.pid else None
        held: list[int] = []

        def during(s: dict[str, Any]) -> None:
            if s["phase"] == "holding" and ep.pid:
                now = procstat.read_proc(ep.pid)
                if now is not None:
                    held.append(now.rss_kb)

        cfg = load_config(profile, ep, accts, opts)
        m = measure(cfg, ep.pids, console, opts.quiet, f"idle → {ep.kind}", during)
        result = base_result(profile, opts, ep, scale)
        derived = derive(m, profile.clients)
        online = m.load.get("logged_in", 0)
        if before is not None and held and online:
            # The last readings of the hold: memory settled with every connection open.
            settled = sorted(held[-5:])[len(held[-5:]) // 2]
            derived["rss_before_kb"] = before.rss_kb
            derived["rss_connected_kb"] = settled
            derived["bytes_per_conn"] = round((settled - before.rss_kb) * 1024 / online, 1)
        result.update(load=m.load, server_process=m.server, derived=derived, wall_s=m.wall_s)
        return result
