"""Groups: membership rules, the group message flow over the socket, and the group API routes.

Importing this package imports nothing else, so storage backends can use ``glide.group.rules`` freely.
"""
