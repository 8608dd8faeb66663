"""The ``notify.contact`` event: what the two sides of a contact change learn over their sockets.

``{"type": <TYPE_*>, "from": <acting uid>, "to": <other uid>, "comment": "...", "at": <ms>}``: every online
device of both users gets it (the actor's other devices stay in step), encoded once for all of them.
"""

from __future__ import annotations

import time

from glide._native import Outgoing
from glide.gateway.hub import LocalHub

ACTION = "notify.contact"
TYPE_REQUEST = "request"  # from asked to to
TYPE_ACCEPTED = "accepted"  # from accepted to's request (or the two requests met): they are contacts
TYPE_REJECTED = "rejected"  # from rejected to's request
TYPE_DELETED = "deleted"  # from deleted the contact with to (both directions)


def contact_event(hub: LocalHub, kind: str, actor: int, other: int, comment: str = "") -> int:
    """Push one event to both users' devices; returns how many devices got it."""
    data = {"type": kind, "from": actor, "to": other, "comment": comment, "at": time.time_ns() // 1_000_000}
    return hub.deliver_many((actor, other), Outgoing(ACTION, data))
