"""``serve --http`` against clients that hold on: idle and half-sent connections, slow bodies,
floods of connections, and one caller opening session after session. The server is a child
process; these are raw sockets and requests on loopback."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest

from wiro_seedream_mcp.emulator import EmulatorServer
from wiro_seedream_mcp.http.guards import OncePerWhile

from .conftest import OTHER_KEY, OTHER_SECRET, HttpServer, own_key

pytestmark = [pytest.mark.child_process]

Serve = Callable[..., HttpServer]


def _closed_by_server(sock: socket.socket, within: float) -> bytes:
    """What the server sent before it closed the connection; fails if it is still open."""
    sock.settimeout(within)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_clients_that_hold_on_are_cut_off_and_a_flood_is_refused(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    server = serve(
        http_emulator(),
        WIRO_HTTP_HEAD_TIMEOUT="2",
        WIRO_HTTP_BODY_TIMEOUT="1",
        WIRO_HTTP_MAX_CONNECTIONS="16",
    )
    silent = socket.create_connection(("127.0.0.1", server.port))
    half = socket.create_connection(("127.0.0.1", server.port))
    half.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
    for sock in (silent, half):
        with sock:
            assert _closed_by_server(sock, within=10) == b""
    # A body that does not come: 408.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b'accept: application/json, text/event-stream\r\ncontent-length: 400\r\n\r\n{"jsonrpc"'
        )
        answer = _first_answer(sock, within=10)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"did not arrive within 1 s" in answer
    # Past the cap, a connection is told so and closed at once; the server still answers after.
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(16)]
    try:
        extra = socket.create_connection(("127.0.0.1", server.port))
        with extra:
            refused = _closed_by_server(extra, within=10)
        assert refused.startswith(b"HTTP/1.1 503 ")
        assert b"too many open connections" in refused
    finally:
        for sock in held:
            sock.close()
    assert httpx.get(f"{server.origin}/healthz", timeout=10).status_code == 200


def test_a_flood_of_one_log_line_is_said_a_few_times_then_counted() -> None:
    quiet = OncePerWhile(burst=3, window=60)
    now = [1000.0]
    quiet.clock = lambda: now[0]

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)

    passed = [quiet.filter(record("socket.accept() out of system resource")) for _ in range(1000)]
    assert passed.count(True) == 3
    assert quiet.filter(record("something else"))  # another line has its own count
    now[0] += 61
    later = record("socket.accept() out of system resource")
    assert quiet.filter(later)
    assert "997 more like it" in later.getMessage()


def _first_answer(sock: socket.socket, within: float) -> bytes:
    sock.settimeout(within)
    received = b""
    while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def _initialize(url: str, bearer: str) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "opener", "version": "1"},
        },
    }
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "authorization": f"Bearer {bearer}",
    }
    return httpx.post(url, content=json.dumps(body), headers=headers, timeout=30)


def test_one_caller_cannot_use_up_the_sessions(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    server = serve(http_emulator(), WIRO_HTTP_AUTH="key", WIRO_HTTP_MAX_SESSIONS="3")
    opened: list[Any] = []
    for _ in range(3):
        answer = _initialize(server.url, own_key())
        assert answer.status_code == 200, answer.text
        opened.append(answer.headers["mcp-session-id"])
    refused = _initialize(server.url, own_key())
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "5"
    assert "3 sessions open" in refused.json()["error_description"]
    # Another caller is not held back by it.
    assert _initialize(server.url, own_key(OTHER_KEY, OTHER_SECRET)).status_code == 200
    # Ending one makes room.
    ended = httpx.delete(
        server.url,
        headers={"mcp-session-id": opened[0], "authorization": f"Bearer {own_key()}"},
        timeout=30,
    )
    assert ended.status_code in (200, 204), ended.text
    assert _initialize(server.url, own_key()).status_code == 200
