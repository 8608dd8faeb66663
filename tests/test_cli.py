"""The command line as an operator meets it: --version, every setting as a flag, the example config, and one
clear line (no traceback) when the server cannot start."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from serve_process import ServeProcess

import glide
from glide.config import Config

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "glide.toml"


def glide_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "glide.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_version() -> None:
    r = glide_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"glide {glide.__version__}"


def test_every_setting_is_a_flag() -> None:
    text = glide_cli("serve", "--help").stdout
    for field in dataclasses.fields(Config):
        assert "--" + field.name.replace("_", "-") in text, field.name
    assert "{json,protobuf}" in text  # the flag takes what the setting takes


def test_the_example_config_loads() -> None:
    config = Config.load(str(EXAMPLE), {}, {})
    assert config.ws_port == 8080 and config.message_rate == 100.0
    keys = {
        line.split("=")[0].strip()
        for line in EXAMPLE.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert keys <= {f.name for f in dataclasses.fields(Config)}


def test_a_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    node = ServeProcess(tmp_path / "a")
    try:
        r = glide_cli("serve", "--host", "127.0.0.1", "--ws-port", str(node.ws_port), "--http-port", "0",
                      "--data-dir", str(tmp_path / "b"))  # fmt: skip
        assert r.returncode == 2
        assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert "address already in use" in r.stderr.lower()
    finally:
        node.terminate()


def test_an_unusable_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = glide_cli("serve", "--ws-port", "0", "--http-port", "0", "--data-dir", str(blocker / "data"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert str(blocker) in r.stderr
