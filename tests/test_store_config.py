"""Config: sources and precedence, typed conversion, clear errors, generated secrets."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from glide.config import Config
from glide.errors import ConfigError


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults() -> None:
    c = Config.load(None, {}, {})
    assert (c.host, c.ws_port, c.http_port, c.tcp_port, c.tcp_codec) == ("0.0.0.0", 8080, 8081, None, "json")
    assert c.token_ttl_s == 72 * 3600 and c.guest_token_ttl_s == 7 * 86400
    assert c.credential_ttl_ms == 1_500_000 and c.send_buffer_limit == 1 << 20
    assert c.ws_url == "ws://127.0.0.1:8080/ws"
    assert c.sqlite_path == Path("./glide-data") / "glide.db"


def test_precedence_file_env_overrides(tmp_path: Path) -> None:
    path = write(tmp_path / "g.toml", 'ws_port = 9000\nhttp_port = 9001\nlog_level = "debug"\nnode_id = 2\n')
    env = {"GLIDE_HTTP_PORT": "9101", "GLIDE_NODE_ID": "3", "UNRELATED": "x", "GLIDE_NOT_A_SETTING": "ignored"}
    c = Config.load(path, env, {"node_id": 4, "tcp_port": None})
    assert c.ws_port == 9000  # file
    assert c.http_port == 9101  # env beats file
    assert c.node_id == 4  # override beats env
    assert c.log_level == "debug"
    assert c.tcp_port is None  # a None override means "flag not given"


def test_env_string_conversion() -> None:
    env = {
        "GLIDE_TCP_PORT": "7000",
        "GLIDE_REQUIRE_EMAIL_VERIFICATION": "yes",
        "GLIDE_SINGLE_DEVICE_PER_UID": "0",
        "GLIDE_AUTH_TIMEOUT_S": "2.5",
        "GLIDE_SEND_BUFFER_LIMIT": "2_000_000",
        "GLIDE_TCP_CODEC": "protobuf",
    }
    c = Config.load(None, env, {})
    assert c.tcp_port == 7000 and c.require_email_verification is True and c.single_device_per_uid is False
    assert c.auth_timeout_s == 2.5 and c.send_buffer_limit == 2_000_000 and c.tcp_codec == "protobuf"
    assert Config.load(None, {"GLIDE_TCP_PORT": "off"}, {}).tcp_port is None


@pytest.mark.parametrize(
    ("env", "overrides", "message"),
    [
        ({"GLIDE_WS_PORT": "eighty"}, {}, "environment GLIDE_WS_PORT: expected an integer"),
        ({}, {"ws_port": 70000}, "ws_port: must be a port number"),
        ({}, {"node_id": 16}, "node_id: must be between 0 and 15"),
        ({}, {"tcp_codec": "xml"}, "tcp_codec: expected one of json, protobuf"),
        ({}, {"log_level": "loud"}, "log_level"),
        ({}, {"wsport": 1}, "option wsport: unknown setting"),
        ({}, {"ws_port": True}, "option ws_port: expected an integer"),
        ({}, {"host": 5}, "option host: expected a string"),
        ({"GLIDE_SINGLE_DEVICE_PER_UID": "maybe"}, {}, "expected true or false"),
        ({}, {"token_ttl_s": 0}, "token_ttl_s: must be at least 1"),
        ({}, {"store": "mysql://x"}, "store: expected"),
        ({}, {"store": "sqlite:"}, "store: 'sqlite:' needs a file path"),
        ({}, {"public_ws_url": "http://x"}, "public_ws_url"),
        ({}, {"auth_timeout_s": -1}, "auth_timeout_s"),
        ({}, {"recall_window_s": -5}, "recall_window_s"),
    ],
)
def test_bad_values_are_clear(env: dict[str, str], overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.load(None, env, overrides)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        Config.load(write(tmp_path / "a.toml", "ws_prot = 1\n"), {}, {})
    with pytest.raises(ConfigError, match="invalid TOML"):
        Config.load(write(tmp_path / "b.toml", "ws_port = = 1\n"), {}, {})
    with pytest.raises(ConfigError, match=r"c.toml: ws_port: expected an integer"):
        Config.load(write(tmp_path / "c.toml", 'ws_port = "x"\n'), {}, {})
    with pytest.raises(ConfigError, match="unknown setting"):
        Config.load(write(tmp_path / "d.toml", "[server]\nws_port = 1\n"), {}, {})
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        Config.load(str(tmp_path / "missing.toml"), {}, {})


def test_ws_url_and_sqlite_path() -> None:
    assert Config(host="10.0.0.5", ws_port=9).ws_url == "ws://10.0.0.5:9/ws"
    assert Config(host="::1").ws_url == "ws://[::1]:8080/ws"
    assert Config(public_ws_url="wss://chat.example/ws").ws_url == "wss://chat.example/ws"
    assert Config(store="sqlite:///var/x.db").sqlite_path == Path("/var/x.db")
    assert Config(store="sqlite:rel/x.db").sqlite_path == Path("rel/x.db")
    assert Config(data_dir="/d").sqlite_path == Path("/d/glide.db")


def test_secrets_generated_once_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    a = Config.load(None, {}, {"data_dir": str(data)})
    a.ensure_secrets()
    assert len(a.jwt_secret) >= 32 and len(a.secret_key) >= 32 and a.jwt_secret != a.secret_key
    path = data / "secret.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    b = Config.load(None, {}, {"data_dir": str(data)})
    b.ensure_secrets()  # a restart
    assert (b.jwt_secret, b.secret_key) == (a.jwt_secret, a.secret_key)
    assert list(tmp_path.joinpath("data").iterdir()) == [path]  # no temp files left behind


def test_explicit_secrets_win_and_partial_file_is_completed(tmp_path: Path) -> None:
    c = Config(data_dir=str(tmp_path / "x"), jwt_secret="j" * 40, secret_key="k" * 40, admin_token="a" * 40)
    c.ensure_secrets()
    assert not (tmp_path / "x").exists()  # nothing written when all three are configured
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "secret.json").write_text(json.dumps({"jwt_secret": "from-file"}))
    d = Config(data_dir=str(tmp_path / "y"))
    d.ensure_secrets()
    assert d.jwt_secret == "from-file" and d.secret_key
    stored = json.loads((tmp_path / "y" / "secret.json").read_text())
    assert stored["secret_key"] == d.secret_key and stored["admin_token"] == d.admin_token
    assert len(d.admin_token) >= 40


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"jwt_secret": 5}'])
def test_corrupt_secrets_file(tmp_path: Path, content: str) -> None:
    (tmp_path / "secret.json").write_text(content)
    with pytest.raises(ConfigError, match=r"secret\.json"):
        Config(data_dir=str(tmp_path)).ensure_secrets()
