"""Fixtures: a real glide node on ephemeral ports in the test's loop, on each store backend.

Every test that uses a store runs once per backend (ids ``[sqlite]`` and ``[postgresql]``): the ``store_url``
fixture is parametrised, and ``server``, ``servers``, ``store`` and ``open_test_store`` depend on it; tests in
modules that build the HTTP API with ``helpers_api.serve_api`` get it too (see pytest_pycollect_makeitem).
Each PostgreSQL test gets a fresh database (tests/pg_support.py). When PostgreSQL is not reachable those
tests fail with a message saying how to start it; they never skip. ``-k sqlite`` / ``-k postgresql`` picks one.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import helpers
import helpers_api
import pytest
from cluster_support import RedisServer
from helpers import make_config
from pg_support import PgDatabases, PgUnavailable

from glide.server import Server
from glide.store import SqliteStore, Store
from glide.store.postgres import PostgresStore
from glide.store.sqlite import engine as sqlite_engine
from glide.store.sqlite import message_log


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--driver",
        choices=("native", "asyncio"),
        default="native",
        help="the socket driver of every server the tests start (scripts/test runs the suite with each)",
    )


def pytest_configure(config: pytest.Config) -> None:
    helpers.TEST_DRIVER = config.getoption("--driver")


def pytest_report_header(config: pytest.Config) -> str:
    return f"glide driver: {config.getoption('--driver')}"


BACKENDS = ("sqlite", "postgresql")
T = TypeVar("T")


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Tests of modules that serve the API through helpers_api.serve_api run on both backends as well."""
    module = getattr(collector, "module", None)
    if (
        inspect.isfunction(obj)
        and name.startswith("test")
        and getattr(module, "serve_api", None) is helpers_api.serve_api
        and "store_url" not in inspect.signature(obj).parameters
    ):
        pytest.mark.usefixtures("store_url")(obj)


def _fail_unless(step: Callable[[], T]) -> T:
    """``step()``, or a test failure (never a skip) saying why PostgreSQL is not usable."""
    try:
        return step()
    except PgUnavailable as e:
        error = str(e)
    pytest.fail(error, pytrace=False)


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    dbs = PgDatabases()
    _fail_unless(dbs.start)
    yield dbs
    dbs.stop()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """'' for SQLite (the default: a file in the test's data dir), else a fresh PostgreSQL database's URL.
    helpers_api.serve_api uses it as its default store while the test runs."""
    if request.param == "sqlite":
        url = ""
        name = None
    else:
        dbs: PgDatabases = request.getfixturevalue("pg_databases")
        name = _fail_unless(dbs.take)
        url = dbs.url(name)
    helpers_api.STORE_URL = url
    yield url
    helpers_api.STORE_URL = ""
    if name is not None:
        dbs.release(name)


@pytest.fixture
def pg_url(pg_databases: PgDatabases) -> Iterator[str]:
    """A fresh PostgreSQL database with glide's schema, for PostgreSQL-only tests."""
    name = _fail_unless(pg_databases.take)
    yield pg_databases.url(name)
    pg_databases.release(name)


@pytest.fixture
def empty_pg_url(pg_databases: PgDatabases) -> Iterator[str]:
    """A fresh PostgreSQL database without glide's schema (migration tests)."""
    name = _fail_unless(pg_databases.empty)
    yield pg_databases.url(name)
    pg_databases.release(name)


@pytest.fixture
async def open_test_store(store_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Store]]]:
    """Open (again) the test's store on its backend, with extra ``open`` keywords (e.g. ``clock_ms``);
    every store opened is closed at teardown."""
    opened: list[Store] = []

    async def open_store(**kwargs: Any) -> Store:
        store: Store
        if store_url:
            store = await PostgresStore.open(store_url, **kwargs)
        else:
            store = await SqliteStore.open(tmp_path / "g.db", **kwargs)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


@pytest.fixture(params=["tail", "indexed"])
def log_epochs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """SQLite's message log either keeps what a test writes in its unindexed tail (the defaults: epochs of
    thousands of rows) or indexes it at once, an epoch after every write (the background worker writing it
    while the next writes commit), so that every read meets indexed rows, a tail and epochs under way (on
    PostgreSQL both are the same)."""
    if request.param == "indexed":
        monkeypatch.setattr(message_log, "EPOCH_ROWS", 1)
        monkeypatch.setattr(message_log, "EPOCH_AGE_S", 0.0)
        monkeypatch.setattr(sqlite_engine, "DEFERRED_S", 0.0)  # and the riders in every tick
    return str(request.param)


@pytest.fixture
async def store(open_test_store: Callable[..., Awaitable[Store]]) -> Store:
    return await open_test_store()


@pytest.fixture
async def server(tmp_path: Path, store_url: str) -> AsyncIterator[Server]:
    srv = Server(make_config(tmp_path, store=store_url))
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def servers(tmp_path: Path, store_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Start servers with custom config or clock; all stopped at teardown. They share the test's store."""
    started: list[Server] = []

    async def start(*, clock: Callable[[], int] | None = None, **overrides: Any) -> Server:
        srv = Server(make_config(tmp_path, **{"store": store_url, **overrides}), **({"clock": clock} if clock else {}))
        await srv.start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        await srv.stop()


@pytest.fixture
async def http_api(server: Server) -> AsyncIterator[Any]:
    """An httpx client on the test server's HTTP API."""
    from im_support import http_client

    async with http_client(server) as client:
        yield client


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private Redis for one test (a cluster test may stop and restart it)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
