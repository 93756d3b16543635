"""A fresh PostgreSQL database for a test, on the server ``WIRO_TEST_POSTGRES_URL`` names.

``.ci/run`` starts a throwaway cluster and sets it; without it the tests that need PostgreSQL
skip (or fail, under ``WIRO_TEST_REQUIRE_ALL``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

from .nodetools import unavailable

ENV = "WIRO_TEST_POSTGRES_URL"


def server_url() -> str:
    url = os.environ.get(ENV)
    if not url:
        unavailable(f"no PostgreSQL: set {ENV}=postgresql://user@127.0.0.1:PORT/postgres (CI starts one)")
    assert url is not None
    return url


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """The URL of a new, empty database, dropped afterwards."""
    import asyncpg

    admin = server_url()
    name = f"wiro_test_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    parts = urlsplit(admin)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


class CuttableLink:
    """A TCP relay on 127.0.0.1 in front of the PostgreSQL server: ``cut()`` drops every connection
    and refuses new ones (the database is gone, as far as a client can tell), ``mend()`` lets them
    through again. ``url(database_url)`` is that database through the relay."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, database_url: str) -> str:
        parts = urlsplit(database_url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        netloc_out = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
        return urlunsplit((parts.scheme, netloc_out, parts.path, parts.query, ""))

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def mend(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._cut:
                    client.close()
                    continue
                try:
                    server = socket.create_connection(self._target, timeout=5)
                except OSError:
                    client.close()
                    continue
                server.settimeout(None)
                self._open |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
