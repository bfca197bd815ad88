"""The core: what happens to a post, as plain values and calls, with no I/O.

The hub (streams to subscribers, encode once, byte-bounded outlets), the wire frames, the
close codes and content rendering. It imports nothing of the project outside itself and
none of asyncio, Starlette, SQLAlchemy/SQLModel, Redis, uvicorn, websockets, httpx or
Jinja2 (import-linter holds this in `make lint`), so it is tested by calling it.
"""
