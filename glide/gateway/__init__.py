"""The gateway: the asyncio driver, the session hub and connection liveness."""
