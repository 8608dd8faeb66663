"""A cluster node's two Redis hot paths, redis-py against the lean connections of ``glide.cluster.resp``, side
by side in one process: CPU per flusher round (one ROUND script, as a round of one 1:1 delivery sends it) and
CPU per subscription message arriving alone (a publisher process sends one per millisecond, so that each one
wakes the listener, as at a cluster's usual rates). Medians of ``--runs`` alternating runs:

    python bench/cluster_redis.py --redis redis://127.0.0.1:56379/7
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import uvloop

from glide.cluster import routes
from glide.cluster.resp import Commands
from glide.cluster.subscription import Subscription

CHANNEL = "glide:n:99"
SEGMENT = b"x" * 160  # about one 1:1 delivery's segment


async def per_call(fn: Callable[[], Awaitable[object]], n: int) -> float:
    for _ in range(n // 10):
        await fn()
    start = time.process_time()
    for _ in range(n):
        await fn()
    return (time.process_time() - start) / n * 1e6


async def rounds(url: str, n: int) -> dict[str, float]:
    client = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=10)
    lean = await Commands.open(url, timeout=5)
    command = routes.Routes(client, 1).round([1], ["k1", SEGMENT])

    async def with_redis_py() -> None:
        async with client.pipeline(transaction=False) as pipe:
            pipe.execute_command(*command)
            await pipe.execute()

    async def with_lean() -> None:
        await lean.call([command])

    try:
        return {"redis-py": await per_call(with_redis_py, n), "lean": await per_call(with_lean, n)}
    finally:
        lean.close()
        await client.aclose()


def publisher(url: str, n: int) -> subprocess.Popen[bytes]:
    code = (
        "import redis, sys, time\n"
        f"r = redis.Redis.from_url({url!r})\n"
        "time.sleep(0.3)\n"
        f"for _ in range({n}):\n"
        f"    r.publish({CHANNEL!r}, {SEGMENT!r}); time.sleep(0.001)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code])


async def receive_redis_py(url: str, n: int) -> float:
    client = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=10)
    pubsub = client.pubsub()
    await pubsub.subscribe(CHANNEL)
    proc = publisher(url, n)
    got, start = 0, 0.0
    try:
        async for message in pubsub.listen():
            if message.get("type") == "message":
                got += 1
                if got == 1:
                    start = time.process_time()
                elif got == n:
                    return (time.process_time() - start) / (n - 1) * 1e6
    finally:
        proc.wait()
        await pubsub.aclose()
        await client.aclose()
    raise RuntimeError("the subscription ended early")


async def receive_lean(url: str, n: int) -> float:
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    got, start = 0, 0.0

    def on_message(_: bytes) -> None:
        nonlocal got, start
        got += 1
        if got == 1:
            start = time.process_time()
        elif got == n:
            done.set_result((time.process_time() - start) / (n - 1) * 1e6)

    sub = await Subscription.open(url, [CHANNEL], on_message, timeout=5)
    proc = publisher(url, n)
    try:
        return await done
    finally:
        proc.wait()
        sub.close()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=4000)
    p.add_argument("--messages", type=int, default=2000)
    args = p.parse_args()
    results: dict[str, list[float]] = {}
    for _ in range(args.runs):
        for name, us in (await rounds(args.redis, args.rounds)).items():
            results.setdefault(f"round, {name}", []).append(us)
        results.setdefault("message received, redis-py", []).append(await receive_redis_py(args.redis, args.messages))
        results.setdefault("message received, lean", []).append(await receive_lean(args.redis, args.messages))
    for name, values in results.items():
        print(f"{name:28s} {statistics.median(values):7.1f} µs CPU  (runs: {', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    uvloop.run(main())
