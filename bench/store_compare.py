"""A message-path workload, this tree against an older one, side by side (the ratios of RESULTS.md).

Checks the older revision out into a temporary git worktree, then runs the workload (``store_workload.py``,
the store alone, by default; ``--workload message_path.py``: the whole path without sockets; ``--workload
group_sends.py``: group messages at the store) alternately on both trees (each run a fresh process and a fresh
database), several times per batch size, and prints the medians and the ratio new / old:

    python bench/store_compare.py --old 98fffcd --batches 1,16,128 --runs 5
    python bench/store_compare.py --old 98fffcd --store postgresql://postgres:postgres@127.0.0.1:55432/bench
    python bench/store_compare.py --old 07408ae --workload message_path.py

The older tree is imported with this tree's compiled ``glide._native`` (a newer extension keeps what older
Python code calls).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# (CPU, wall, the PostgreSQL server's CPU or None) in µs per message
Result = tuple[float, float, float | None]


def run(tree: Path, workload: str, batch: int, rounds: int, store: str, users: int) -> Result:
    command = [sys.executable, str(HERE / workload), "--batch", str(batch), "--rounds", str(rounds)]
    command += ["--users", str(users)]
    if store:
        command += ["--store", store]
    out = subprocess.run(command, env={"PYTHONPATH": str(tree)}, capture_output=True, text=True, check=True, cwd=tree)
    result = json.loads(out.stdout)
    server = result.get("server_cpu_us")
    return float(result["cpu_us"]), float(result["wall_median_us"]), None if server is None else float(server)


def reset(store: str) -> None:
    """A PostgreSQL bench database starts empty for every run (a SQLite run makes its own)."""
    if store:
        import asyncio

        import asyncpg

        async def drop() -> None:
            conn = await asyncpg.connect(store)
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            await conn.close()

        asyncio.run(drop())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", required=True, help="the git revision to compare with")
    p.add_argument("--batches", default="1,16,128")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--messages", type=int, default=4000, help="messages per run (rounds = messages / batch)")
    p.add_argument("--users", type=int, default=200, help="senders, each writing to one peer")
    p.add_argument("--store", default="", help="a postgresql:// URL of a database to use (emptied every run)")
    workloads = ["store_workload.py", "message_path.py", "group_sends.py"]
    p.add_argument("--workload", default="store_workload.py", choices=workloads)
    args = p.parse_args()
    native = next((ROOT / "glide").glob("_native*.so"))
    with tempfile.TemporaryDirectory(prefix="glide-old-") as tmp:
        old = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.old], check=True)
        try:
            shutil.copy(native, old / "glide" / native.name)
            what = "the loop thread" if args.workload == "message_path.py" else "all threads"
            print(f"{args.workload}, medians of {args.runs} runs, µs per message: CPU ({what}), wall")
            columns = ("old CPU", "new CPU", "new/old", "old wall", "new wall", "new/old")
            print(f"{'batch':>5} " + " ".join(f"{c:>9}" for c in columns))
            for batch in (int(b) for b in args.batches.split(",")):
                rounds = max(20, args.messages // batch)
                olds, news = [], []
                for _ in range(args.runs):  # interleaved, so both trees see the same machine
                    reset(args.store)
                    olds.append(run(old, args.workload, batch, rounds, args.store, args.users))
                    reset(args.store)
                    news.append(run(ROOT, args.workload, batch, rounds, args.store, args.users))
                oc, nc = statistics.median(r[0] for r in olds), statistics.median(r[0] for r in news)
                ow, nw = statistics.median(r[1] for r in olds), statistics.median(r[1] for r in news)
                line = f"{batch:>5} {oc:>9.1f} {nc:>9.1f} {nc / oc:>9.3f} {ow:>9.1f} {nw:>9.1f} {nw / ow:>9.3f}"
                if all(r[2] is not None for r in olds + news):  # PostgreSQL's own CPU, when it runs here
                    os_, ns = statistics.median(r[2] for r in olds), statistics.median(r[2] for r in news)
                    line += f"  server CPU {os_:.1f} -> {ns:.1f} ({ns / os_:.3f})"
                print(line, flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)


if __name__ == "__main__":
    main()
