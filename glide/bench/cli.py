"""``glide bench``: the command line (wired into ``glide`` by :func:`add_bench_parser` / :func:`run_bench`)."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glide.bench.profiles import PROFILES, Profile
from glide.bench.servers import COMPARED, SERVERS

if TYPE_CHECKING:
    from rich.console import Console

    from glide.bench.runner import Options

# Only the profiles and server names are imported up front: `glide serve` loads this module to build its
# parser, and the bench's own dependencies (httpx, matplotlib: the `bench` extra) load when a bench runs.

EPILOG = (
    """profiles:
"""
    + "\n".join(f"  {p.name:<9} {p.description}" for p in PROFILES.values())
    + """

examples:
  glide bench case1                          # glide (SQLite store) started here, GlideIM's case 1
  glide bench case1 --scale 0.1 --server picows
  glide bench compare saturate --scale 0.5   # glide, the websockets and picows baselines
  glide bench idle --clients 10000
  glide bench case1 --server none --target ws://127.0.0.1:8083/ws --secret-key secret_key   # GlideIM itself
  glide bench cluster --store postgresql://u:p@host/db --redis redis://host:6379/0   # cross- vs same-node
  glide bench case1 --server none --target ws://a:8080/ws --target ws://b:8080/ws --api http://a:8081/api
"""
)


def add_bench_parser(sub: Any) -> None:
    """Adds the ``bench`` subcommand to ``glide``'s subparsers."""
    p = sub.add_parser(
        "bench",
        help="load-test a GlideIM-protocol server (glide, the baselines, or any --target)",
        description="Simulated GlideIM clients (Rust) with the full two-phase ack flow; delivery, latency, "
        "per-second frames, server CPU and memory; a table, result.json and PNG charts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("profile", choices=[*PROFILES, "compare"], help="a profile, or 'compare PROFILE'")
    p.add_argument("compared", nargs="?", choices=list(PROFILES), help="the profile to compare (after 'compare')")
    g = p.add_argument_group("server under test")
    g.add_argument(
        "--server",
        choices=SERVERS,
        default="glide",
        help="started here as a child process; 'none' = an external server given by --target (default: glide)",
    )
    g.add_argument("--servers", help=f"compare: comma-separated list (default {','.join(COMPARED)})")
    g.add_argument(
        "--target",
        action="append",
        default=[],
        help="ws://host:port/ws of an external server (with --server none); once per node of a cluster, "
        "client i connecting to the (i mod n)-th",
    )
    g.add_argument("--api", help="http://host:port/api of the external server, to register users")
    g.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=[],
        help="pid of the external server, to sample its CPU and memory (once per node: CPU is summed)",
    )
    g.add_argument("--store", help="cluster: the PostgreSQL the started glide nodes share (postgresql://…)")
    g.add_argument("--redis", help="cluster: the Redis the started glide nodes share (redis://host:port/db)")
    g.add_argument("--server-arg", action="append", default=[], help="extra argument for the started server")
    g.add_argument("--baselines-dir", help="where websockets_server.py and picows_server.py are")
    g = p.add_argument_group("login")
    g.add_argument(
        "--users",
        choices=["register", "guest"],
        default="register",
        help="how users are created over the HTTP API (default register)",
    )
    g.add_argument("--signin", action="store_true", help="sign in over HTTP instead of minting tokens locally")
    g.add_argument("--jwt-secret", help="mint api.auth tokens with this HS256 secret (users must exist)")
    g.add_argument("--secret-key", help="log in with GlideIM 'authenticate' credentials minted from this key")
    g.add_argument("--uid-start", type=int, default=1, help="first uid when minting tokens/credentials (default 1)")
    g.add_argument("--group-id", help="fanout: an existing group holding every client (default: create one)")
    g = p.add_argument_group("load")
    g.add_argument("--scale", type=float, default=1.0, help="shrink the profile (clients, messages) by this factor")
    g.add_argument("--clients", type=int, help="override the number of clients")
    g.add_argument("--messages", type=int, help="override messages per client")
    g.add_argument("--interval", help="override the send interval, ms: MIN-MAX")
    g.add_argument("--connect-interval", type=float, help="override the connect pacing, ms")
    g.add_argument("--hold", type=float, help="idle: seconds to hold the connections")
    g.add_argument("--grace", type=float, default=10.0, help="seconds to wait for stragglers after the last send")
    g.add_argument("--source-ips", help="comma-separated local addresses to connect from (default: automatic)")
    g.add_argument("--seed", type=int, help="seed for intervals and peers")
    g.add_argument("--max-duration", type=float, help="hard stop for one load run, seconds")
    g.add_argument("--max-steps", type=int, default=14, help="saturate: at most this many rate steps (default 14)")
    g.add_argument("--concurrency", type=int, default=32, help="concurrent HTTP requests when creating users")
    g = p.add_argument_group("output")
    g.add_argument("--out", help="directory for result.json and the charts (default bench-results/<run>)")
    g.add_argument("--no-charts", action="store_true")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def _profile(args: argparse.Namespace, name: str) -> Profile:
    profile = PROFILES[name].scaled(args.scale)
    changes: dict[str, Any] = {}
    if args.clients is not None:
        changes["clients"] = args.clients
    if args.messages is not None:
        changes["messages"] = args.messages
    if args.interval:
        lo, _, hi = args.interval.partition("-")
        changes["interval_ms"] = (int(lo), int(hi or lo))
    if args.connect_interval is not None:
        changes["connect_interval_ms"] = args.connect_interval
    if args.hold is not None:
        changes["hold_s"] = args.hold
    return dataclasses.replace(profile, **changes) if changes else profile


def _options(args: argparse.Namespace) -> Options:
    from glide.bench.runner import Options

    return Options(
        server=args.server,
        targets=list(args.target),
        api=args.api,
        users_mode=args.users,
        signin=args.signin,
        jwt_secret=args.jwt_secret,
        secret_key=args.secret_key,
        uid_start=args.uid_start,
        server_pids=list(args.server_pid),
        store=args.store,
        redis=args.redis,
        group_id=args.group_id,
        seed=args.seed,
        grace_s=args.grace,
        source_ips=[s.strip() for s in args.source_ips.split(",")] if args.source_ips else [],
        baselines_dir=args.baselines_dir,
        server_args=list(args.server_arg),
        concurrency=args.concurrency,
        max_duration_s=args.max_duration,
        max_steps=args.max_steps,
        quiet=args.quiet,
    )


def run_one(profile: Profile, opts: Options, console: Console, scale: float) -> dict[str, Any]:
    """One profile against ``opts.server``."""
    from glide.bench.cluster import run_cluster
    from glide.bench.runner import run_chat, run_idle
    from glide.bench.saturate import run_saturate

    if profile.kind == "saturate":
        return run_saturate(profile, opts, console, scale)
    if profile.kind == "cluster":
        return run_cluster(profile, opts, console, scale)
    if profile.kind == "idle":
        return run_idle(profile, opts, console, scale)
    return run_chat(profile, opts, console, scale)


def passed(result: dict[str, Any]) -> bool:
    """Every message delivered exactly once and nothing went wrong (what CI checks at a small scale)."""
    if result.get("error"):
        return False
    if "phases" in result:  # cluster: each phase must pass on its own
        return all(passed({"profile": result["profile"], **phase}) for phase in result["phases"].values())
    load = result.get("load", {})
    if load.get("error") or load.get("errors"):
        return False
    if result.get("profile") == "idle":
        return bool(load.get("logged_in")) and load.get("logged_in") == load.get("clients")
    return (
        load.get("delivery_rate") == 1.0
        and not load.get("duplicates")
        and not load.get("lost")
        and not load.get("unacked")
    )


def _out_dir(args: argparse.Namespace, name: str) -> Path:
    if args.out:
        return Path(args.out)
    return Path("bench-results") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_bench(args: argparse.Namespace) -> int:
    """Runs ``glide bench``; exit status 0 when delivery was complete and error-free, 1 when not, 2 on misuse."""
    try:
        from rich.console import Console

        from glide.bench import report
        from glide.bench.compare import run_compare, table
        from glide.bench.servers import ServerStartError
        from glide.bench.users import ProvisionError
    except ImportError as e:
        print(f"glide bench needs the 'bench' extra (pip install 'glide-im[bench]'): {e}")
        return 2
    console = Console()
    if args.profile == "compare" and not args.compared:
        console.print("glide bench compare: which profile? e.g. glide bench compare case1")
        return 2
    if args.profile != "compare" and args.compared:
        console.print(f"glide bench: unexpected argument {args.compared!r}")
        return 2
    try:
        name = args.compared if args.profile == "compare" else args.profile
        profile = _profile(args, name)
        opts = _options(args)
        if args.profile == "compare":
            servers = [s.strip() for s in (args.servers or ",".join(COMPARED)).split(",") if s.strip()]
            out = _out_dir(args, f"compare-{name}")
            comparison = run_compare(profile, opts, console, args.scale, servers, run_one)
            for server, result in comparison["results"].items():
                if "load" in result:
                    report.print_summary(console, result)
                    if not args.no_charts:
                        report.charts(result, out / server)
            console.print(table(comparison["results"], comparison["kind"], name))
            path = report.write_json(comparison, out / "compare.json")
            console.print(f"results: {path}")
            ok = all(passed(r) for r in comparison["results"].values() if "load" in r)
            return 0 if ok else 1
        out = _out_dir(args, f"{name}-{opts.server}")
        result = run_one(profile, opts, console, args.scale)
        report.print_summary(console, result)
        path = report.write_json(result, out / "result.json")
        pngs = [] if args.no_charts else report.charts(result, out)
        console.print(f"results: {path}" + "".join(f"  {p}" for p in pngs))
        return 0 if passed(result) else 1
    except (ServerStartError, ProvisionError, ValueError) as e:
        console.print(f"[red]glide bench: {e}[/red]")
        return 2
