"""``glide bench`` as the README shows it: in a terminal (a pty, so the live progress display is on), without
--quiet, from a directory that is not the repository. It must finish, print its table and exit 0."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path


def run_in_pty(args: list[str], cwd: Path, timeout_s: float = 240.0) -> tuple[int, str]:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    out = bytearray()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    else:
        proc.kill()
    code = proc.wait(30)
    os.close(leader)
    return code, out.decode("utf-8", "replace")


def test_bench_in_a_terminal_from_elsewhere(tmp_path: Path) -> None:
    code, out = run_in_pty(
        [sys.executable, "-m", "glide.cli", "bench", "case1", "--scale", "0.02", "--out", str(tmp_path / "out")],
        cwd=tmp_path,
    )
    assert "Traceback" not in out, out[-3000:]
    assert code == 0, out[-3000:]
    assert "delivered" in out and "result.json" in out
    assert (tmp_path / "out" / "result.json").exists()
