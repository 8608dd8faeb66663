"""The server under test as a child process: glide (on its default driver, or on a given one) or a baseline."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

SERVERS = ("glide", "glide-native", "glide-asyncio", "websockets", "picows", "none")
BASELINES = ("websockets", "picows")
COMPARED = ("glide", "websockets", "picows")
GLIDES = ("glide", "glide-native", "glide-asyncio")
START_TIMEOUT_S = 60.0
_LINE = re.compile(r"(ws://\S+/ws)(?:\s+(http://\S+/api))?")


class ServerStartError(RuntimeError):
    """The server under test did not come up (its output tail is in the message)."""


def baselines_dir(override: str | None = None) -> Path:
    """``bench/baselines`` of the source tree this package runs from, or ``override``."""
    if override:
        path = Path(override)
    else:
        import glide

        path = Path(glide.__file__).resolve().parent.parent / "bench" / "baselines"
    if not (path / "websockets_server.py").is_file():
        raise ServerStartError(
            f"baseline servers not found in {path}: run from a glide source checkout or pass --baselines-dir"
        )
    return path


@dataclass
class ServerProcess:
    """A started server: its URLs, pid, and how clients log in to it."""

    kind: str
    ws_url: str
    api_url: str | None
    pid: int
    data_dir: Path | None
    jwt_secret: str | None
    log_path: Path
    proc: subprocess.Popen[str] = field(repr=False)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 20 s; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc.poll() is None

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _command(
    kind: str, workdir: Path, host: str, extra: list[str], baselines: str | None
) -> tuple[list[str], str | None]:
    if kind in GLIDES:
        cmd = [sys.executable, "-m", "glide.cli", "serve", "--host", host, "--ws-port", "0", "--http-port", "0"]
        cmd += ["--data-dir", str(workdir / "data"), "--log-level", "warning"]
        # Every simulated client comes from this one address: the per-address sign-in / guest limits are
        # for the internet, not for a load test (the per-connection message rate limit stays on).
        cmd += ["--signin-per-minute", "0", "--guests-per-minute", "0"]
        # The scenarios measure chat (the baselines relay chat only): no world channel, whose presence frames
        # (every login told to everyone online) would add n² frames to a login storm of n clients.
        cmd += ["--world-channel", "false"]
        if kind != "glide":
            cmd += ["--driver", kind.removeprefix("glide-")]
        return cmd + extra, None
    if kind in BASELINES:
        secret = secrets.token_hex(16)
        script = baselines_dir(baselines) / f"{kind}_server.py"
        return [sys.executable, str(script), "--host", host, "--port", "0", "--jwt-secret", secret, *extra], secret
    raise ValueError(f"server: one of {', '.join(SERVERS[:-1])}, got {kind!r}")


def _drain(pipe: IO[str], sink: IO[str]) -> None:
    for line in pipe:
        sink.write(line)
        sink.flush()


def start_server(
    kind: str, workdir: Path, *, host: str = "127.0.0.1", extra: list[str] | None = None, baselines: str | None = None
) -> ServerProcess:
    """Starts ``kind`` with its state and log under ``workdir``; waits for its ``... serving ws://...`` line."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd, secret = _command(kind, workdir, host, list(extra or []), baselines)
    log_path = workdir / "server.log"
    log = open(log_path, "w")  # noqa: SIM115 - stays open for the drain thread, closed with the process
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # cwd: its own directory, so `python -m glide.cli` imports the installed glide, never a source tree that
    # happens to be the current directory (whose glide/ has no compiled extension).
    # process_group: its own process group, so a Ctrl-C at the terminal reaches the bench (which stops the
    # server) and not the server; but the bench's session, not a new one: with the kernel's autogroup
    # scheduling (sched_autogroup_enabled, on by default) each session is one scheduling group, and a server
    # in a session of its own had its threads' CPU time balanced against the bench's as a group: measured
    # here, full case1 against glide-native had a load generator 20 % dearer per message and a p99 several
    # times higher than with the same server started from the bench's session, as an external server
    # (GlideIM's `glideim_go.sh`, or anything started by hand for `--server none`) is.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env, process_group=0, cwd=workdir)
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        log.write(line)
        m = _LINE.search(line)
        if m:
            threading.Thread(target=_drain, args=(proc.stdout, log), daemon=True).start()
            data_dir = workdir / "data" if kind.startswith("glide") else None
            return ServerProcess(kind, m.group(1), m.group(2), proc.pid, data_dir, secret, log_path, proc)
    proc.kill()
    proc.wait(10)
    log.close()
    tail = "".join(seen[-20:]) + log_path.read_text()[-2000:]
    raise ServerStartError(f"{' '.join(cmd)} did not start (exit {proc.returncode}):\n{tail}")
