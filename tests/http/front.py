"""A round-robin front for server replicas, as a load balancer stands before them: every request
(not every connection) goes to the next replica, responses (SSE too) stream back as they come.

Used by the replica tests and by ``bench/replicas.py``; it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx2 as httpx

# httpx's pool looks at every connection it holds each time it places a request: with hundreds of
# streams open, one pool per few dozen of them keeps that cheap.
POOLS = 16
# Hop-by-hop headers a proxy does not pass on.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length", "host"}


class RoundRobin:
    """``with RoundRobin(["http://127.0.0.1:A", "http://127.0.0.1:B"]) as front: front.url``."""

    def __init__(self, backends: Sequence[str]) -> None:
        self.backends = list(backends)
        self._next = itertools.cycle(range(len(self.backends)))
        self.sent = [0] * len(self.backends)
        self.port = 0
        self.fixed_port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._clients: list[httpx.AsyncClient] = []
        self._pick = itertools.cycle(range(POOLS))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._clients = [
                    httpx.AsyncClient(
                        timeout=httpx.Timeout(300.0),
                        # Idle connections are dropped before the replicas would close them.
                        limits=httpx.Limits(
                            max_connections=500, max_keepalive_connections=16, keepalive_expiry=2.0
                        ),
                    )
                    for _ in range(POOLS)
                ]
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
            for client in self._clients:
                await client.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        index = next(self._next)
        self.sent[index] += 1
        target = (
            self.backends[index]
            + scope["path"]
            + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
        )
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.decode().lower() not in _HOP]
        # The replicas see the Host a client used for the front, as behind a real balancer.
        headers.append(("host", f"127.0.0.1:{self.port}"))
        client = self._clients[next(self._pick)]
        request = client.build_request(scope["method"], target, headers=headers, content=body)
        response = await client.send(request, stream=True)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k.encode(), v.encode())
                        for k, v in response.headers.multi_items()
                        if k.lower() not in _HOP
                    ],
                }
            )
            async for chunk in _chunks(response):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    def __enter__(self) -> RoundRobin:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.fixed_port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self, log_level="warning", lifespan="on", access_log=False, backlog=4096, timeout_keep_alive=75
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="round-robin", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the round-robin front did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)


async def _chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    async for chunk in response.aiter_raw():
        if chunk:
            yield chunk


def main() -> None:
    """``python -m tests.http.front PORT BACKEND...``: the front in a process of its own, until
    interrupted; prints how many requests each backend got when it stops."""
    import signal
    import sys

    port, backends = int(sys.argv[1]), sys.argv[2:]
    front = RoundRobin(backends)
    front.fixed_port = port
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with front:
        print(f"ready {front.url}", flush=True)
        stop.wait()
    print(f"sent {' '.join(map(str, front.sent))}", flush=True)


if __name__ == "__main__":
    main()
