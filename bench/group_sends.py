"""Group sends at the store alone: what one group chat message costs it, by messages per tick.

Ten groups of 20 members (200 users); one round stores B messages from random members to their groups with
fresh cliMids, all arriving in one loop tick: what the server's ``message.group`` handler stores for them
(one ``store_group_messages`` call since the sends are batch-shaped; an older tree's store, without it, gets
one ``store_group_message`` call per message, all at once, as that server's handler made them). The figures
are those of ``store_workload.py``: the process's CPU per message (every thread), the wall time per message
and, on a PostgreSQL running on this machine, the CPU of the server's processes serving the store.

    python bench/group_sends.py --batch 16 --rounds 200
    python bench/store_compare.py --old 8fc881c --workload group_sends.py --batches 1,16,128
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from store_workload import USERS, Round, measure_rounds, workload_main

GROUP_SIZE = 20


async def measure(batch: int, rounds: int, *, store_url: str = "", seed: int = 7, users: int = USERS) -> dict[str, Any]:
    """Open a fresh store, make the groups, warm up, run ``rounds`` rounds; µs per message over the rounds."""
    from glide.store.groups import NewGroupMessage

    rng = random.Random(seed)

    async def setup(store: Any) -> Callable[[], Round]:
        uids = []
        for i in range(max(users, GROUP_SIZE)):
            user = await store.users.create_user(
                account=f"bench{i}", email=None, nickname="", avatar="", password_hash=""
            )
            uids.append(user.uid)
        groups: list[tuple[int, list[int]]] = []
        for g in range(len(uids) // GROUP_SIZE):
            owner, *members = uids[g * GROUP_SIZE : (g + 1) * GROUP_SIZE]
            created = await store.groups.create_group(owner=owner, name="g", avatar="", members=members, mid=500 + g)
            groups.append((created.group.gid, [owner, *members]))
        batched = hasattr(store.groups, "store_group_messages")
        mids = iter(range(1_000_001, 1 << 62))

        def next_round() -> Round:
            sends = []
            for mid in (next(mids) for _ in range(batch)):
                gid, members = rng.choice(groups)
                sends.append(NewGroupMessage(mid, f"c{mid}", gid, rng.choice(members), 1, "hello, lunch?", 0))

            async def store_them() -> None:
                if batched:
                    results = await store.groups.store_group_messages(sends)
                else:
                    results = await asyncio.gather(*(store.groups.store_group_message(m) for m in sends))
                assert all(not isinstance(r, BaseException) and not r.duplicate for r in results), results

            return store_them

        return next_round

    return await measure_rounds(store_url, batch, rounds, setup)


if __name__ == "__main__":
    workload_main(measure, __doc__)
