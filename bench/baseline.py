"""The baseline: the smallest fan-out server on ``websockets.broadcast()``.

Subscribers connect to ``/ws`` and send the same ``subscribe`` frame as to Bulletin; they
get a ``subscribed`` answer and then every message. A publisher connects to ``/publish``
and each text message it sends is broadcast verbatim to every subscriber: no storage, no
ordering or resume guarantees, no per-stream routing. It is what a fan-out costs with
the standard library of the field, and the yardstick in ``bench/run.py``.

    python bench/baseline.py --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from loadgen import raise_fd_limit  # this directory is on sys.path when run as a script
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

SUBSCRIBERS: set[ServerConnection] = set()


async def handler(websocket: ServerConnection) -> None:
    assert websocket.request is not None
    try:
        if websocket.request.path == "/publish":
            async for message in websocket:
                broadcast(SUBSCRIBERS, message)
            return
        async for message in websocket:
            frame = json.loads(message)
            if frame.get("type") == "subscribe":
                SUBSCRIBERS.add(websocket)
                await websocket.send(json.dumps(
                    {"type": "subscribed", "stream": frame["stream"], "seq": 0},
                    separators=(",", ":")))
    except ConnectionClosed:
        pass
    finally:
        SUBSCRIBERS.discard(websocket)


async def main(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # The same transport choices as Bulletin: no per-message deflate, pings every 20 s.
    async with serve(handler, host, port, compression=None, ping_interval=20,
                     ping_timeout=20, backlog=2048):
        print(f"baseline listening on {host}:{port}", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop",
                        help="event loop (default uvloop, as uvicorn uses for Bulletin)")
    args = parser.parse_args()
    raise_fd_limit()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(main(args.host, args.port))
    else:
        asyncio.run(main(args.host, args.port))
