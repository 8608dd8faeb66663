"""Run `glide serve` as a real child process and find its ports from what it prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

LINE = re.compile(r"wss?://[^:]+:(\d+)/ws\s+https?://[^:]+:(\d+)/api")


class ServeProcess:
    def __init__(self, data_dir: Path, *extra: str) -> None:
        args = [
            sys.executable,
            "-m",
            "glide.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--ws-port",
            "0",
            "--http-port",
            "0",
            "--data-dir",
            str(data_dir),
            *extra,
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.output: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            if not line:
                raise RuntimeError("glide serve exited:\n" + "".join(self.output))
            self.output.append(line)
            m = LINE.search(line)
            if m:
                self.ws_port, self.http_port = int(m.group(1)), int(m.group(2))
                # Keep reading what it prints, so that a chatty server never blocks on a full pipe.
                self._drainer = threading.Thread(target=self._drain, daemon=True)
                self._drainer.start()
                return
        raise RuntimeError("glide serve did not start")

    def _drain(self) -> None:
        for line in self.proc.stdout or ():
            self.output.append(line)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/ws"

    def api(self, route: str, body: dict[str, object], token: str | None = None) -> dict[str, object]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = httpx.post(f"http://127.0.0.1:{self.http_port}/api/{route}", json=body, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        reply = r.json()
        assert reply["Code"] == 100, reply
        return reply["Data"]  # type: ignore[no-any-return]

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)
        self._drainer.join(10)  # it ends at the end of the output
        return "".join(self.output)
