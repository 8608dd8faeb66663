"""JSON Schema building blocks for route declarations (request bodies and ``Data``), used by the OpenAPI
document. They describe what the parsers in :mod:`glide.api.envelope` accept: ids as numbers or numeric
strings, keys in any case (so extra keys are never refused)."""

from __future__ import annotations

from typing import Any

from glide.api.envelope import MAX_LIST, MAX_UID

Schema = dict[str, Any]

INT64: Schema = {"type": "integer", "minimum": -MAX_UID - 1, "maximum": MAX_UID}
UID: Schema = {
    "description": "a user id: a positive integer, or the same as a decimal string",
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": MAX_UID},
        {"type": "string", "pattern": r"^\s*[0-9]{1,19}\s*$"},
    ],
}
UIDS: Schema = {
    "description": f"user ids (a single id counts as a list of one), at most {MAX_LIST}",
    "oneOf": [{"type": "array", "items": UID, "maxItems": MAX_LIST}, UID],
}
ID_OUT: Schema = {"type": "integer"}
STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
NULL: Schema = {"type": "null"}
EMPTY: Schema = {"type": "string", "maxLength": 0, "description": 'always ""'}


def integer(low: int = 0, high: int = MAX_UID, description: str = "") -> Schema:
    """An integer field as :meth:`Body.integer` reads it: a number or a numeric string."""
    s: Schema = {
        "oneOf": [
            {"type": "integer", "minimum": low, "maximum": high},
            {"type": "string", "pattern": r"^\s*-?[0-9]{1,19}\s*$"},
        ]
    }
    if description:
        s["description"] = description
    return s


def text(max_len: int = 256, min_len: int = 0, description: str = "") -> Schema:
    s: Schema = {"type": "string", "maxLength": max_len}
    if min_len:
        s["minLength"] = min_len
    if description:
        s["description"] = description
    return s


def obj(required: tuple[str, ...] = (), /, **properties: Schema) -> Schema:
    """An object; property names are matched case-insensitively by the server, other keys ignored."""
    s: Schema = {"type": "object", "properties": properties}
    if required:
        s["required"] = list(required)
    return s


def out(**properties: Schema) -> Schema:
    """A response object whose every listed property is present."""
    return {"type": "object", "properties": properties, "required": list(properties)}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def nullable(s: Schema) -> Schema:
    return {"anyOf": [s, NULL]}
