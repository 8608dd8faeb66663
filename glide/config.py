"""Server settings: defaults < TOML file < ``GLIDE_<FIELD>`` environment variables < explicit overrides."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import ssl
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glide.errors import ConfigError

ENV_PREFIX = "GLIDE_"
SECRETS_FILE = "secret.json"
SECRET_KEYS = ("jwt_secret", "secret_key", "admin_token")
DB_FILE = "glide.db"
TCP_CODECS = ("json", "protobuf")
DRIVERS = ("native", "asyncio")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NONE = ("", "none", "off", "null")


@dataclass
class Config:
    """Every setting of a node. Build it with :meth:`load`; :meth:`ensure_secrets` fills the two secrets."""

    host: str = "0.0.0.0"
    ws_port: int = 8080
    http_port: int = 8081
    tcp_port: int | None = None
    tcp_codec: str = "json"
    # "native": tokio owns the sockets on its own thread (glide.gateway.native); "asyncio": the sockets are
    # asyncio transports on the running loop (glide.gateway.asyncio_driver), for platforms without the former.
    driver: str = "asyncio"
    data_dir: str = "./glide-data"
    store: str = ""
    sqlite_sync: str = "normal"  # "normal": commits survive kill -9 (WAL); "full": also power loss (fsync each)
    # 0..15, unique among the nodes sharing one database; -1: the first id no live node holds (PostgreSQL
    # leases it; SQLite has one node: 0).
    node_id: int = -1
    # A cluster: nodes sharing one PostgreSQL reach each other's sessions through this Redis
    # ("redis://host:port/db"); empty: this node alone.
    redis: str = ""
    public_ws_url: str = ""
    # TLS on every listener (wss://, https://, TLS over the TCP transport): a PEM certificate chain and its PEM
    # private key; both empty: plain sockets (a proxy in front terminates TLS).
    tls_cert: str = ""
    tls_key: str = ""
    jwt_secret: str = ""
    secret_key: str = ""
    token_ttl_s: int = 72 * 3600
    guest_token_ttl_s: int = 7 * 86400
    credential_ttl_ms: int = 1_500_000
    require_email_verification: bool = False
    # Where auth/verifyCode mails its codes (without smtp_host they go to the server log).
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    auth_timeout_s: float = 10.0
    heartbeat_interval_s: int = 30
    heartbeat_lost_limit: int = 3
    recall_window_s: int = 120  # 0: authors cannot recall (group owners and admins still can)
    max_message_size: int = 65536
    send_buffer_limit: int = 1 << 20
    single_device_per_uid: bool = False
    # contacts/add asks the other user, who approves (contacts/approval), instead of making the contact at
    # once as GlideIM does.
    contact_approval: bool = False
    # The_world_channel: every user is in it, gets who joins and leaves, and may write to it (GlideIM's).
    world_channel: bool = True
    log_level: str = "info"
    log_format: str = "plain"  # or "json": one object per line
    # The operator's bearer token for the admin routes (app/info); generated into secret.json when empty.
    admin_token: str = ""
    # Abuse limits (0 turns one off). Sends: message.chat / .group / .cli envelopes per connection.
    message_rate: float = 100.0
    message_burst: int = 200
    signin_per_minute: int = 30  # sign-in attempts per client address
    signin_failures_per_hour: int = 20  # wrong passwords per account, before its sign-in is refused for a while
    guests_per_minute: int = 10  # guest accounts created per client address
    # HTTP: a client must finish its request head / body within these, and the server holds at most
    # http_max_connections at once (more are answered 503).
    http_header_timeout_s: float = 10.0
    http_body_timeout_s: float = 30.0
    http_max_connections: int = 1000

    @classmethod
    def load(
        cls,
        path: str | None = None,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, object] | None = None,
    ) -> Config:
        """Merge the sources, convert and validate every value.

        ``path``: a TOML file with top-level ``key = value`` pairs named like the fields. ``env``: only
        ``GLIDE_<FIELD_UPPER>`` variables are read (other variables are ignored: the namespace is shared).
        ``overrides``: field name -> value (CLI flags); a ``None`` value means "flag not given".
        Raises :class:`ConfigError` naming the source and the key for unknown keys and bad values.
        """
        fields = _fields()
        values: dict[str, object] = {}
        if path is not None:
            for key, raw in _read_toml(path).items():
                values[key] = _convert(fields, key, raw, f"{path}: {key}")
        for name in fields:
            var = ENV_PREFIX + name.upper()
            if env is not None and var in env:
                values[name] = _convert(fields, name, env[var], f"environment {var}")
        for key, raw in (overrides or {}).items():
            if raw is None:
                continue
            values[key] = _convert(fields, key, raw, f"option {key}")
        config = cls(**values)  # type: ignore[arg-type]
        config.validate()
        return config

    def validate(self) -> None:
        """Check ranges and choices; raises :class:`ConfigError`."""
        for name in ("ws_port", "http_port"):
            _check_port(name, getattr(self, name))
        if self.tcp_port is not None:
            _check_port("tcp_port", self.tcp_port)
        _check_choice("tcp_codec", self.tcp_codec, TCP_CODECS)
        _check_choice("driver", self.driver, DRIVERS)
        _check_choice("log_level", self.log_level, LOG_LEVELS)
        _check_choice("log_format", self.log_format, ("plain", "json"))
        _check_choice("sqlite_sync", self.sqlite_sync, ("normal", "full"))
        if not -1 <= self.node_id <= 15:
            raise ConfigError(f"node_id: must be between 0 and 15 (or -1: leased), got {self.node_id}")
        if self.redis and not self.redis.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"redis: expected redis://host:port/db, got {self.redis!r}")
        if self.redis and not self.store.startswith(("postgresql://", "postgres://")):
            raise ConfigError("redis: the nodes of a cluster share a PostgreSQL store (--store postgresql://…)")
        if not self.data_dir:
            raise ConfigError("data_dir: must not be empty")
        if self.store and not self.store.startswith(("sqlite:", "postgresql://", "postgres://")):
            raise ConfigError(f"store: expected '', 'sqlite:<path>' or 'postgresql://…', got {self.store!r}")
        if self.store.startswith("sqlite:") and str(self.sqlite_path) in ("", "."):
            raise ConfigError("store: 'sqlite:' needs a file path, e.g. sqlite:///var/lib/glide/glide.db")
        if self.public_ws_url and not self.public_ws_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"public_ws_url: expected a ws:// or wss:// URL, got {self.public_ws_url!r}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert, tls_key: give both (a PEM certificate chain and its private key) or neither")
        self.ssl_context()  # a missing file or a key that does not match the certificate stops the start here
        for name in (
            "token_ttl_s",
            "guest_token_ttl_s",
            "credential_ttl_ms",
            "heartbeat_interval_s",
            "max_message_size",
            "send_buffer_limit",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.send_buffer_limit < 2 * self.max_message_size + 128 * 1024:
            # Replays pause at 64 KiB buffered; one more frame must fit before a client counts as too slow.
            raise ConfigError(
                f"send_buffer_limit: must be at least 2 x max_message_size + 128 KiB, got {self.send_buffer_limit}"
            )
        for name in ("heartbeat_lost_limit", "recall_window_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must not be negative, got {getattr(self, name)}")
        for name in (
            "message_rate",
            "message_burst",
            "signin_per_minute",
            "signin_failures_per_hour",
            "guests_per_minute",
            "http_max_connections",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must not be negative (0 turns the limit off), got {getattr(self, name)}")
        for name in ("auth_timeout_s", "http_header_timeout_s", "http_body_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}: must be positive, got {getattr(self, name)}")

    @property
    def sqlite_path(self) -> Path:
        """Where the SQLite database lives: ``store = "sqlite:<path>"`` or ``<data_dir>/glide.db``."""
        if self.store.startswith("sqlite:"):
            rest = self.store.removeprefix("sqlite:")
            # sqlite:///abs/path (URL style) and sqlite:relative/path are both accepted.
            return Path(rest[2:] if rest.startswith("///") else rest)
        return Path(self.data_dir) / DB_FILE

    @property
    def ws_url(self) -> str:
        """The WebSocket URL advertised to clients in login responses (``servers``)."""
        if self.public_ws_url:
            return self.public_ws_url
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"{self.ws_scheme}://{host}:{self.ws_port}/ws"

    @property
    def ws_scheme(self) -> str:
        return "wss" if self.tls_cert else "ws"

    def tls_pem(self) -> tuple[bytes, bytes] | None:
        """The certificate chain and private key as PEM bytes, or ``None`` without TLS."""
        if not self.tls_cert:
            return None
        try:
            return Path(self.tls_cert).read_bytes(), Path(self.tls_key).read_bytes()
        except OSError as e:
            raise ConfigError(f"tls_cert, tls_key: {e.filename}: {e.strerror or e}") from None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server side of TLS (TLS 1.2 and later), or ``None`` without it."""
        if not self.tls_cert:
            return None
        self.tls_pem()  # a missing or unreadable file: its own clear error, before OpenSSL's
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except ssl.SSLError as e:
            raise ConfigError(f"tls_cert, tls_key: not a certificate chain and its private key ({e.reason})") from None
        return context

    def ensure_secrets(self) -> None:
        """Fill empty ``jwt_secret`` / ``secret_key`` / ``admin_token`` from ``<data_dir>/secret.json``, creating
        it if needed.

        The file is created once with mode 0600 and reused on every restart, so tokens and credentials stay
        valid across restarts. Explicitly configured secrets win and are never written to the file.
        """
        if self.jwt_secret and self.secret_key and self.admin_token:
            return
        path = Path(self.data_dir) / SECRETS_FILE
        exists = path.exists()
        stored = _read_secrets(path) if exists else {}
        missing = [k for k in SECRET_KEYS if not stored.get(k)]
        if missing:
            for key in missing:
                stored[key] = secrets.token_urlsafe(32)
            if not _write_secrets(path, stored, replace=exists):
                stored = _read_secrets(path)  # another process created it first: use theirs
        if not self.jwt_secret:
            self.jwt_secret = stored["jwt_secret"]
        if not self.secret_key:
            self.secret_key = stored["secret_key"]
        if not self.admin_token:
            self.admin_token = stored["admin_token"]


NEVER_RECALLABLE = 1 << 62  # a not_before later than every message: authors cannot recall at all


def recall_not_before_ms(window_s: float, now_ms: int) -> int:
    """The oldest ``created_at`` an author may still recall. A window of 0 turns author recall off rather
    than allowing recalls within the same millisecond (which would depend on timing)."""
    return now_ms - int(window_s * 1000) if window_s > 0 else NEVER_RECALLABLE


def _fields() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def _read_toml(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"config file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path}: invalid TOML: {e}") from None
    return data


def _convert(fields: Mapping[str, Any], key: str, raw: object, where: str) -> object:
    if key not in fields:
        raise ConfigError(f"{where}: unknown setting (known: {', '.join(sorted(fields))})")
    kind = fields[key]
    optional = False
    if isinstance(kind, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        optional, kind = True, args[0]
    if optional and (raw is None or (isinstance(raw, str) and raw.strip().lower() in _NONE)):
        return None
    try:
        return _coerce(kind, raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def _coerce(kind: type, raw: object) -> object:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
            return raw.strip().lower() in _TRUE
        raise ValueError(f"expected true or false, got {raw!r}")
    if kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            try:
                return int(raw.strip().replace("_", ""), 10)
            except ValueError:
                pass
        raise ValueError(f"expected an integer, got {raw!r}")
    if kind is float:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw.strip())
            except ValueError:
                pass
        raise ValueError(f"expected a number, got {raw!r}")
    if isinstance(raw, str):
        return raw
    raise TypeError(f"expected a string, got {raw!r}")


def _check_port(name: str, port: int) -> None:
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name}: must be a port number 0..65535, got {port}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")


def _read_secrets(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the secrets file: {e}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"{path}: expected a JSON object of strings")
    return data


def _write_secrets(path: Path, values: Mapping[str, str], *, replace: bool) -> bool:
    """Write atomically with mode 0600. Without ``replace``, never overwrite: False if the file appeared."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # holds every secret and message
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dict(values), f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # atomic create-if-absent: two nodes starting together agree on one file
        except FileExistsError:
            return False
        return True
    except OSError as e:
        raise ConfigError(f"{path}: cannot write the secrets file: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
