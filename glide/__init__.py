"""glide: a GlideIM-compatible instant-messaging server — a Python business core over a Rust wire core.

Run a node with ``glide serve``; embed one in an asyncio application with :class:`Server`.
"""

from glide.config import Config
from glide.errors import GlideError
from glide.server import Server

__all__ = ["Config", "GlideError", "Server"]
__version__ = "0.1.0"
