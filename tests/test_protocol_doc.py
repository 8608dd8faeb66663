"""docs/protocol.md stays true: its tables list exactly the socket actions the server handles, and its worked
example (register, sign in, two sockets, a message and both acknowledgements) runs against a live server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from glide.server import Server

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def section(title: str) -> str:
    text = GUIDE.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def first_column(title: str) -> set[str]:
    """The backquoted names in the first column of the section's table."""
    names: set[str] = set()
    for line in section(title).splitlines():
        m = re.match(r"\|\s*(`[^|]+)\|", line)
        if m:
            names.update(re.findall(r"`([^`]+)`", m.group(1)))
    return names


async def test_the_guide_lists_every_action_the_server_handles_and_no_other(server: Server) -> None:
    handled = set(server.dispatcher._actions)  # the registry is what the guide must match
    routes = {a for a in handled if a.startswith("api.") and a != "api.auth"}
    assert routes, "every HTTP route is a socket action api.<route>"
    documented = first_column("Actions a client sends")
    assert documented - {"api.<route>"} == handled - routes
    # and the frames the guide says the server sends are ones the code sends
    sent = first_column("Frames the server sends")
    source = "".join(p.read_text() for p in (Path(__file__).resolve().parent.parent / "glide").rglob("*.py"))
    source += "".join(p.read_text() for p in (GUIDE.parent.parent / "glide_native" / "src").rglob("*.rs"))
    missing = {action for action in sent if f'"{action}"' not in source}
    assert not missing, f"the guide names frames the server never sends: {missing}"


async def test_the_worked_example_runs_against_a_live_server(server: Server) -> None:
    code = re.search(r"## Worked example.*?```python\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    assert code is not None
    scope: dict[str, Any] = {}
    exec(compile(code.group(1), str(GUIDE), "exec"), scope)  # the guide's own example
    api_url = f"http://127.0.0.1:{server.http_port}/api"
    await scope["worked_example"](api_url, f"ws://127.0.0.1:{server.ws_port}/ws")
