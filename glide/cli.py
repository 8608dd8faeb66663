"""The ``glide`` command: ``glide serve`` runs a node."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import os
import signal
import sys
from collections.abc import Sequence

import glide
from glide import logs
from glide.bench.cli import add_bench_parser, run_bench
from glide.config import TCP_CODECS, Config
from glide.errors import ConfigError


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run a glide node (WebSocket gateway + HTTP API + store)")
    p.add_argument("--config", help="a TOML file; flags and GLIDE_* environment variables override it")
    p.add_argument("--host")
    p.add_argument("--ws-port", type=int)
    p.add_argument("--http-port", type=int)
    p.add_argument("--tcp-port", type=int, help="enable the TCP transport (4-byte length + envelope)")
    p.add_argument("--tcp-codec", choices=list(TCP_CODECS))
    p.add_argument("--data-dir", help="SQLite database and generated secrets (default ./glide-data)")
    p.add_argument("--store", help="storage URL (default: SQLite in the data dir)")
    p.add_argument("--sqlite-sync", choices=["normal", "full"], help="full: fsync every commit (power-loss safe)")
    p.add_argument("--node-id", type=int)
    p.add_argument("--log-level")
    # Every other setting of glide.config.Config as --<name> VALUE (converted and checked like the env vars).
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        if flag not in p._option_string_actions:
            p.add_argument(flag, dest=field.name, metavar="VALUE")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glide", description="glide: a GlideIM-compatible IM server")
    parser.add_argument("--version", action="version", version=f"glide {glide.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    add_bench_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "bench":
        return run_bench(args)
    if args.command == "serve":
        overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config") and v is not None}
        try:
            config = Config.load(args.config, os.environ, overrides)
        except ConfigError as e:
            print(f"glide: {e}", file=sys.stderr)
            return 2
        return serve(config)
    return 2


def _startup_problem(e: ConfigError | OSError, config: Config) -> str:
    """One clear line for what stopped the server from starting."""
    if isinstance(e, ConfigError):
        return str(e)
    what = f" ({e.filename})" if e.filename else ""
    return f"cannot start on {config.host} (ws {config.ws_port}, http {config.http_port}): {e.strerror or e}{what}"


def tune_gc() -> None:
    """A server allocates envelopes, frames and records at a high rate, nearly all acyclic and short-lived:
    CPython's default (a young collection every 700 allocations, each walking every young object) costs it a
    fifth of its time under load. Everything alive after start-up is moved out of the collector's sight, and
    young collections run 10 times less often, older ones as often as with young collections every 35,000
    (cycles still get collected). A young collection holds the loop: with 35,000 it walked 60,000-70,000
    objects (the messages a SQLite node keeps until their epoch is indexed; deallocations of older objects
    count down) in ~10 ms, the largest stalls left under full case1."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(7_000, 100, 20)


def serve(config: Config) -> int:
    logs.configure(config.log_level, config.log_format)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return asyncio.run(_serve(config))
    return uvloop.run(_serve(config))


async def _serve(config: Config) -> int:
    from glide.server import Server

    server = Server(config)
    try:
        await server.start()
    except (ConfigError, OSError) as e:  # a store that cannot be opened, a data dir or node id in use, a port taken
        print(f"glide: {_startup_problem(e, config)}", file=sys.stderr, flush=True)
        await server.stop()
        return 2
    tune_gc()
    print(
        f"glide serving {config.ws_scheme}://{config.host}:{server.ws_port}/ws"
        + f"  {'https' if config.tls_cert else 'http'}://{config.host}:{server.http_port}/api"
        + (f"  tcp{'+tls' if config.tls_cert else ''}://{config.host}:{server.tcp_port}" if server.tcp_port else "")
        + f"  data: {config.data_dir}"
        + (f"  node {server.node_id} of a cluster" if config.redis else ""),
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    lost = asyncio.ensure_future(server.lost_node.wait())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait((lost, stopping), return_when=asyncio.FIRST_COMPLETED)
    lost.cancel()
    stopping.cancel()
    print(
        "glide: shutting down" + (" (another node took this node's id)" if server.lost_node.is_set() else ""),
        flush=True,
    )
    await server.stop()
    return 1 if server.lost_node.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
