"""The route registry as served: every route over HTTP and (where meaningful) as an ``api.*`` socket action
through the same handler, authorization on each, and the OpenAPI document — generated from the registry and
checked against the live server by schemathesis."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
from helpers import make_config
from im_support import Socket, http_client, person

from glide.api import build_registry
from glide.api.registry import ApiRoute
from glide.server import Server

REGISTRY = list(build_registry())
AUTHENTICATED = [r for r in REGISTRY if r.auth]
SOCKET_ROUTES = [r for r in REGISTRY if r.over_socket]
SCHEMATHESIS_SECONDS = 30
# The CLI from this interpreter's packages (schemathesis is in the `test` extra), whatever is on PATH.
SCHEMATHESIS_CLI = "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'schemathesis'; schemathesis()"


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(server) as client:
        yield client


async def test_every_authenticated_route_refuses_a_missing_or_bad_token(
    server: Server, http: httpx.AsyncClient
) -> None:
    assert len(AUTHENTICATED) > 40
    calls = [
        (route.path, method, headers)
        for route in AUTHENTICATED
        for method in route.methods
        for headers in ({}, {"Authorization": "Bearer not-a-token"})
    ]
    answers = await asyncio.gather(
        *(http.request(method, f"/api/{path}", headers=headers, json={}) for path, method, headers in calls)
    )
    for (path, method, _), r in zip(calls, answers, strict=True):
        body = r.json()
        assert (r.status_code, body["Code"], body["Data"]) == (401, 401, None), (path, method, body)


async def test_every_socket_action_needs_a_login_except_public_ones(server: Server) -> None:
    sock = await Socket.connect(server)
    for i, route in enumerate(SOCKET_ROUTES):
        reply = await sock.reply(await sock.send(route.action, {}, seq=1000 + i))
        if route.auth:
            assert (reply["action"], reply["seq"]) == ("notify.unauthenticated", 1000 + i), route.action
        else:
            assert reply["action"] == "api.success", (route.action, reply)
    # Login routes are HTTP-only: they read headers or exist to get what a socket login needs.
    for path in ("auth.signin", "auth.register", "auth.logout", "auth.token"):
        reply = await sock.call(f"api.{path}", {})
        assert reply["action"] == "notify.unknown.action" and reply["data"] == f"api.{path}"


async def test_socket_actions_run_the_http_handlers(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob = await person(server, http, "alice"), await person(server, http, "bob")
    sock = await alice.online()
    body = {"UID": [bob.uid, str(alice.uid)]}
    over_http = await alice.ok("user/info", body)
    reply = await sock.reply(await sock.send("api.user.info", body, seq=31))
    assert (reply["action"], reply["seq"], reply["data"]) == ("api.success", 31, over_http)
    assert (await sock.call("api.user.profile", None))["data"]["uid"] == alice.uid  # null data = {}
    assert (await sock.call("api.user.profile.auth", None))["data"]["device"] == 1
    for data, mentions in (({"uid": "x"}, "uid[0]"), ([1, 2], "expected a JSON object"), ("text", "JSON object")):
        reply = await sock.reply(await sock.send("api.user.info", data, seq=32))
        assert (reply["action"], reply["seq"]) == ("api.failed", 32) and mentions in reply["data"], reply
    # Writes over the socket are the same writes.
    assert (await sock.call("api.user.profile.update", {"nick_name": "Ally"}))["data"] == ""
    assert (await alice.ok("user/profile"))["nick_name"] == "Ally"
    # The node's session list is for the operator's token, never reachable from a user's socket.
    assert (await sock.call("api.app.info"))["action"] == "notify.unknown.action"


async def test_app_info_and_release(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob = await person(server, http), await person(server, http)
    a_sock, b_sock = await alice.online(), await bob.online()
    assert (await a_sock.chat(bob.uid, "one"))["action"] == "ack.message"
    info = await alice.ok("app/info", method="GET")  # the web SDK's Square page uses GET
    assert (info["Online"], info["MaxOnline"], info["MessageSent"]) == (2, 2, 1)
    assert info["OnlineCli"] == []  # a user sees the counters, not who is online
    admin = {"Authorization": f"Bearer {server.config.admin_token}"}
    info = (await http.get("/api/app/info", headers=admin)).json()["Data"]
    client = info["OnlineCli"][0]
    assert {client["ID"] for client in info["OnlineCli"]} == {f"{alice.uid}_1", f"{bob.uid}_1"}
    # Unix seconds, as GlideIM's web client reads them ("running: N hours")
    assert info["StartAt"] - 1 <= client["ConnectionAt"] <= client["AliveAt"] <= time.time() + 1
    await b_sock.close()
    await asyncio.sleep(0.1)
    info = (await http.post("/api/app/info", headers=admin)).json()["Data"]
    assert (info["Online"], info["MaxOnline"], len(info["OnlineCli"])) == (1, 2, 1)
    r = await http.get("/api/app/info")
    assert r.status_code == 401  # nobody anonymous
    r = await http.get("/api/app/info", headers={"Authorization": "Bearer wrong-admin-token"})
    assert r.status_code == 401
    release = (await http.get("/api/app/release")).json()["Data"]  # public
    assert release["VersionName"] and release["DownloadUrl"].startswith("https://")


async def test_an_application_action_keeps_precedence(tmp_path: Path) -> None:
    srv = Server(make_config(tmp_path))

    @srv.action("api.user.profile")
    async def mine(conn: Any, env: Any) -> str:
        return "the application's"

    await srv.start()
    try:
        async with http_client(srv) as http:
            alice = await person(srv, http)
            sock = await alice.online()
            assert (await sock.call("api.user.profile"))["data"] == "the application's"
            assert (await sock.call("api.user.info", {"uid": alice.uid}))["action"] == "api.success"
    finally:
        await srv.stop()


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(path, method): op for path, item in document["paths"].items() for method, op in item.items()}


async def test_openapi_document_is_the_registry(server: Server, http: httpx.AsyncClient) -> None:
    r = await http.get("/api/openapi.json")
    assert r.status_code == 200
    document = r.json()
    assert document["openapi"].startswith("3.1")
    ops = operations(document)
    expected = {(f"/api/{route.path}", m.lower()): route for route in REGISTRY for m in route.methods}
    assert set(ops) == set(expected)
    for key, op in ops.items():
        route: ApiRoute = expected[key]
        assert op.get("x-socket-action") == (route.action if route.over_socket else None)
        assert bool(op["security"]) == route.auth
        assert "200" in op["responses"] and "400" in op["responses"]
        assert ("401" in op["responses"]) == (route.auth or route.http_handler is not None)
        jsonschema.Draft202012Validator.check_schema(op["responses"]["200"]["content"]["application/json"]["schema"])
        if "requestBody" in op:
            jsonschema.Draft202012Validator.check_schema(op["requestBody"]["content"]["application/json"]["schema"])
    # The answers the flows above got are what the document says they are.
    alice = await person(server, http)
    for path in ("user/profile", "contacts/list", "session/recent", "msg/sync", "session/blacklist"):
        schema = ops[(f"/api/{path}", "post")]["responses"]["200"]["content"]["application/json"]["schema"]
        jsonschema.validate((await alice.post(path, {})).json(), schema)


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    """Fuzz every operation against the live server (SQLite; the flows run on both backends), bounded."""
    srv = Server(make_config(tmp_path))
    await srv.start()
    try:
        async with http_client(srv) as http:
            alice, bob = await person(srv, http), await person(srv, http)
            sock = await alice.online()
            await sock.chat(bob.uid, "something to read")
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                SCHEMATHESIS_CLI,
                "run",
                f"http://127.0.0.1:{srv.http_port}/api/openapi.json",
                "--header",
                f"Authorization: Bearer {alice.token}",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_schema_conformance,response_headers_conformance",
                "--exclude-path",
                "/api/auth/logout",  # it would revoke the token every other operation uses
                "--phases",
                "coverage,fuzzing",
                "--max-examples",
                "15",
                "--max-time",
                str(SCHEMATHESIS_SECONDS),
                "--seed",
                "5",
                "--workers",
                "1",
                "--no-color",
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), SCHEMATHESIS_SECONDS + 60)
            report = out.decode(errors="replace")
            assert proc.returncode == 0, report[-6000:]
            assert "Operations:" in report and "generated" in report
    finally:
        await srv.stop()
