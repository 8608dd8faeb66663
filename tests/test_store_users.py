"""User store semantics on every backend: logins, duplicates, lookups, profile updates, token revocation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from glide.errors import AlreadyExists, BadRequest, UserNotFound
from glide.store import Store


async def make_user(store: Store, account: str, email: str | None = None) -> int:
    user = await store.users.create_user(account=account, email=email, nickname=account, avatar="", password_hash="h")
    return user.uid


async def test_user_round_trip_and_logins(store: Store) -> None:
    user = await store.users.create_user(
        account="Bob",
        email="Bob@Example.com",
        nickname="Bobby 🐱",
        avatar="https://x/a.png",
        password_hash="$argon2id$x",
    )
    assert user.uid == 1 and not user.guest and user.created_at > 0
    assert len(user.message_deliver_secret) == 32 and user.message_deliver_secret.isalnum()
    assert await store.users.user(1) == user
    assert await store.users.user_by_login("bob") == user
    assert await store.users.user_by_login(" BOB@example.COM ") == user
    assert await store.users.user_by_login("nobody") is None
    assert await store.users.user_by_login("") is None
    assert await store.users.user_by_login("\udc00") is None
    assert await store.users.user(999) is None
    assert await store.users.user(-1) is None and await store.users.user(2**70) is None
    guest = await store.users.create_user(
        account="guest_1", email=None, nickname="g", avatar="", password_hash="!", guest=True
    )
    assert guest.guest and guest.email is None and (await store.users.user(guest.uid)) == guest
    assert guest.message_deliver_secret != user.message_deliver_secret


async def test_duplicate_logins_are_refused(store: Store) -> None:
    await make_user(store, "alice", "alice@example.com")
    with pytest.raises(AlreadyExists, match="account"):
        await make_user(store, "ALICE")
    with pytest.raises(AlreadyExists, match="email"):
        await make_user(store, "alice2", "Alice@Example.com")
    # an account may not take someone's e-mail either: a login must name one user
    with pytest.raises(AlreadyExists):
        await make_user(store, "alice@example.com")
    assert len(await store.users.users(list(range(1, 10)))) == 1  # nothing half-created
    assert await make_user(store, "carol") == 2  # refused registrations consumed no uid


async def test_concurrent_registration_of_one_account(store: Store) -> None:
    results = await asyncio.gather(*(make_user(store, "same") for _ in range(20)), return_exceptions=True)
    assert sum(isinstance(r, int) for r in results) == 1
    assert all(isinstance(r, AlreadyExists) for r in results if not isinstance(r, int))


async def test_users_lookup_and_profile_update(store: Store) -> None:
    uids = [await make_user(store, f"user{i}") for i in range(3)]
    found = await store.users.users([uids[2], 999, uids[0], uids[2], -5, 2**80])
    assert [u.uid for u in found] == [uids[2], uids[0]]
    many = await store.users.users(list(range(1, 1500)))  # more than one IN (...) chunk on SQLite
    assert [u.uid for u in many] == uids
    assert await store.users.users([]) == []
    await store.users.update_profile(uids[0], nickname="New")
    await store.users.update_profile(uids[0], avatar="https://a")
    await store.users.update_profile(uids[0])
    user = await store.users.user(uids[0])
    assert user is not None and (user.nickname, user.avatar) == ("New", "https://a")
    with pytest.raises(UserNotFound):
        await store.users.update_profile(999, nickname="x")
    with pytest.raises(UserNotFound):
        await store.users.update_profile(-1, nickname="x")
    with pytest.raises(BadRequest, match="nickname"):
        await store.users.update_profile(uids[0], nickname="bad \ud800")


async def test_bad_user_input_is_rejected_not_half_stored(store: Store) -> None:
    with pytest.raises(BadRequest, match="nickname"):
        await store.users.create_user(account="x", email=None, nickname="\udfff", avatar="", password_hash="h")
    with pytest.raises(BadRequest, match="account"):
        await store.users.create_user(account="  ", email=None, nickname="n", avatar="", password_hash="h")
    assert await store.users.user_by_login("x") is None
    # NUL and U+FDD0 (the PostgreSQL backend's escape character) round-trip everywhere, logins included
    weird = await store.users.create_user(
        account="nul\x00byte", email="a\ufdd0\x00@x", nickname="名前\x00\ufdd00", avatar="\ufdd1", password_hash="h"
    )
    assert (await store.users.user(weird.uid)) == weird
    assert await store.users.user_by_login("NUL\x00BYTE") == weird
    assert await store.users.user_by_login("a\ufdd0\x00@x") == weird
    assert await store.users.user_by_login("a\ufdd00@x") is None  # the escaped form is not a login
    await store.users.update_profile(weird.uid, nickname="\x00", avatar="\ufdd0")
    again = await store.users.user(weird.uid)
    assert again is not None and (again.nickname, again.avatar) == ("\x00", "\ufdd0")


async def test_token_revocation_and_purge(open_test_store: Callable[..., Awaitable[Store]]) -> None:
    clock = [1_000_000]
    store = await open_test_store(clock_ms=lambda: clock[0])
    assert not await store.users.is_token_revoked("a")
    await store.users.revoke_token("a", 2_000_000)
    await store.users.revoke_token("a", 1_500_000)  # re-revoking never shortens
    assert await store.users.is_token_revoked("a")
    clock[0] = 3_000_000  # "a" would have expired by now: purged on the next revocation
    await store.users.revoke_token("b", 9_000_000)
    assert not await store.users.is_token_revoked("a")
    assert await store.users.is_token_revoked("b")
    await store.users.revoke_token("nul\x00jti", 9_000_000)
    assert await store.users.is_token_revoked("nul\x00jti") and not await store.users.is_token_revoked("nul")
    with pytest.raises(BadRequest, match="jti"):
        await store.users.revoke_token("\ud800", 1)
