"""What one user may learn about another: never an e-mail (not as the account of someone who registered
with an e-mail only, not in contact or blacklist views), and no other user's sessions."""

from __future__ import annotations

import httpx
from helpers_api import PASSWORD

from glide.server import Server


async def register(http: httpx.AsyncClient, **body: str) -> tuple[int, str]:
    r = await http.post("/api/auth/register", json={"password": PASSWORD, **body})
    assert r.json()["Code"] == 100, r.text
    uid = r.json()["Data"]["uid"]
    login = body.get("email") or body["account"]
    r = await http.post("/api/auth/signin", json={"account": login, "password": PASSWORD})
    return uid, r.json()["Data"]["token"]


async def post(http: httpx.AsyncClient, token: str, path: str, body: object = None) -> object:
    r = await http.post(f"/api/{path}", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.json()["Code"] == 100, r.text
    return r.json()["Data"]


async def test_an_email_is_shown_to_its_owner_only(server: Server, http_api: httpx.AsyncClient) -> None:
    secret_uid, secret = await register(http_api, email="Carol.Private@example.org")
    mailish_uid, _ = await register(http_api, account="dave@example.net")  # an account that is an address
    plain_uid, plain = await register(http_api, account="erin")
    guest = (await http_api.post("/api/auth/guest", json={})).json()["Data"]["token"]

    for viewer in (plain, guest):
        infos = await post(http_api, viewer, "user/info", {"uid": [secret_uid, mailish_uid, plain_uid]})
        assert isinstance(infos, list)
        by_uid = {i["uid"]: i for i in infos}
        assert by_uid[secret_uid]["account"] == "" and by_uid[mailish_uid]["account"] == ""
        assert by_uid[plain_uid]["account"] == "erin"
        assert "example" not in str(infos)
    # The owner sees its own.
    own = await post(http_api, secret, "user/info", {"uid": [secret_uid]})
    assert own == [
        {"uid": secret_uid, "nick_name": "Carol.Private", "account": "Carol.Private@example.org", "avatar": ""}
    ]
    assert (await post(http_api, secret, "user/profile"))["email"] == "Carol.Private@example.org"  # type: ignore[index]

    # Contacts and the blacklist show nobody's e-mail either.
    await post(http_api, plain, "contacts/add", {"uid": secret_uid})  # made at once, both ways (GlideIM's)
    listed = await post(http_api, plain, "contacts/list")
    assert secret_uid in [c["uid"] for c in listed] and "example" not in str(listed)  # type: ignore[union-attr]
    await post(http_api, plain, "session/blacklist/add", {"relative_ids": [secret_uid]})
    assert "example" not in str(await post(http_api, plain, "session/blacklist"))
