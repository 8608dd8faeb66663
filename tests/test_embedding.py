"""The embedding example runs inside the test's own loop: custom action, hooks, server-side pushes."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path

from helpers import Client, make_config, make_user

import glide

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "embed_app.py"


def _load_example():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("embed_app", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["embed_app"] = module
    spec.loader.exec_module(module)
    return module


async def test_embedded_app(tmp_path: Path) -> None:
    example = _load_example()
    stop = asyncio.Event()
    started: asyncio.Future[glide.Server] = asyncio.get_running_loop().create_future()
    app = asyncio.create_task(example.main(make_config(tmp_path), stop, started))
    try:
        server = await asyncio.wait_for(started, 10)
        alice_uid, alice_token = await make_user(server, "alice")
        bob_uid, bob_token = await make_user(server, "bob")
        alice = await Client.connect(server)
        await alice.login(alice_token)
        welcome = await alice.expect("app.welcome")
        assert welcome["data"] == {"online": 1}

        seq = await alice.send("app.roll", {"sides": 20})
        reply = await alice.expect("api.success")
        assert reply["seq"] == seq and 1 <= reply["data"]["value"] <= 20
        seq = await alice.send("app.roll", {"sides": "many"})
        failed = await alice.expect("api.failed")
        assert failed["seq"] == seq and "sides" in failed["data"]

        await alice.chat(bob_uid, "seen by the hook", "h1")
        # The example's own client (glide.client) as bob: welcomed, then a roll through the app's action.
        welcome_data, roll = await example.visit(server.config.ws_url, bob_token)
        assert welcome_data == {"online": 2} and 1 <= roll["value"] <= 20 and roll["sides"] == 20
        bob = await Client.connect(server)
        seq = await bob.send("app.roll", {})
        assert (await bob.expect("notify.unauthenticated"))["seq"] == seq  # login required by default
        await alice.close()
        await bob.close()
        for _ in range(100):
            if not server.gateway.hub.is_online(alice_uid):
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
    bot = await app
    assert bot.messages_seen == 1
    assert bot.online == set()


def test_the_example_runs_as_a_script(tmp_path: Path) -> None:
    """``python examples/embed_app.py`` as the README shows it: the app starts, a guest visits, it ends."""
    r = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "embedded glide on ws://127.0.0.1:" in r.stdout and "welcomed with {'online': 1}, rolled " in r.stdout
