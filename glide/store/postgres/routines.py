"""SQL functions the store calls: made when the store opens if the database lacks them (``migrate``), named by
a digest of their definition, PL/pgSQL so that their statements stay parsed for the session, and, for the
statements whose plan does not depend on the length of their lists, planned once per connection."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

# A routine's settings for a statement planned once per connection: a generic plan, made with sequential
# scans off so that it looks rows up by index whatever the tables' sizes when it is made (see engine.SERVER_SETTINGS).
# Only for statements whose best plan does not depend on the length of their lists: a generic plan cannot know
# it (SQL_STORE_CHATS, planned so, joined the CTEs of a batch of thousands of chats row by row).
PLANNED_ONCE = (("plan_cache_mode", "force_generic_plan"), ("enable_seqscan", "off"))


@dataclass(frozen=True)
class Routine:
    """A SQL function that statements call, made when the store opens if the database lacks it. Its name
    ends in a digest of its definition: a changed definition is a new function (never replaced under a node
    still calling the old one), and nodes of two versions each find their own."""

    name: str
    create: str
    query: str  # the statement whose rows it returns (what its plan is made for)
    call: str  # the statement that calls it with parameters $1, $2, ... (its own, in order)


def routine(
    stem: str, params: str, returns: str, statements: Sequence[str], *, settings: Sequence[tuple[str, str]] = ()
) -> Routine:
    """A PL/pgSQL function running ``statements`` in order (all but the last are SELECTs whose rows are
    dropped) and returning the last one's rows. PL/pgSQL keeps each statement parsed for the session (a
    ``LANGUAGE sql`` function parses its body again at every call: +240 µs of the server's CPU per call for
    SQL_STORE_CHATS). It is VOLATILE (the default), so each statement reads with a fresh snapshot: one that
    follows advisory locks sees every commit of the transactions it waited for, as after BEGIN and the locks.
    Names in the statements mean columns where a column has that name (``#variable_conflict use_column``).
    ``settings``: (name, value) of the server settings the function runs with."""
    *before, last = statements
    if any(not sql.startswith("SELECT ") for sql in before):
        raise ValueError("a routine's statements before the last are SELECTs")
    body = "".join(f"  PERFORM {sql.removeprefix('SELECT ')};\n" for sql in before) + f"  RETURN QUERY {last};\n"
    options = "".join(f" SET {k} = {v}" for k, v in settings)
    digest = hashlib.sha256(f"{params}|{returns}|{options}|{body}".encode()).hexdigest()[:12]
    name = f"{stem}_{digest}"
    create = (
        f"CREATE OR REPLACE FUNCTION {name}({params}) RETURNS {returns} LANGUAGE plpgsql{options} AS $glide$\n"
        f"#variable_conflict use_column\nBEGIN\n{body}END\n$glide$"
    )
    args = ", ".join(f"${i + 1}" for i in range(len(params.split(","))))
    return Routine(name, create, last, f"SELECT * FROM {name}({args})")
