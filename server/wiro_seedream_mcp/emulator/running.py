"""Running the emulator: on a thread of its own for tests, demos and ``serve --emulator``, or in
the foreground for the ``emulator`` command."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .app import build_app
from .project import WiroEmulator


@dataclass
class EmulatorServer:
    """The emulator served by uvicorn on a thread of its own, on 127.0.0.1.

    ``with EmulatorServer(WiroEmulator()) as server: server.base_url`` gives a live base URL
    for ``WIRO_API_BASE_URL``; the port is picked by the OS unless one is given.
    """

    emulator: WiroEmulator = field(default_factory=WiroEmulator)
    host: str = "127.0.0.1"
    port: int = 0
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _server: Any = field(default=None, init=False, repr=False)
    _app: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.use(self.emulator)

    def use(self, emulator: WiroEmulator) -> WiroEmulator:
        """Serve ``emulator`` from now on, on the same port (a fresh project for each test)."""
        self.emulator = emulator
        self._app = build_app(emulator)
        return emulator

    async def _asgi(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def start(self) -> EmulatorServer:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi,
            interface="asgi3",
            ws="wsproto",
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="wiro-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Wiro emulator did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_forever(emulator: WiroEmulator, host: str, port: int, sock: Any = None) -> None:
    """Serve in the foreground until interrupted (the ``emulator`` subcommand), on ``sock`` when
    the caller already bound one."""
    import uvicorn

    config = uvicorn.Config(
        build_app(emulator), host=host, port=port, ws="wsproto", log_level="info", lifespan="off"
    )
    uvicorn.Server(config).run(sockets=[sock] if sock is not None else None)
