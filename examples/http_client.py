"""The server over streamable HTTP, the way a hosted agent or a team's endpoint reaches it.

Starts ``wiro-seedream-mcp serve --http`` on a free loopback port and calls it with the MCP SDK's
own streamable-HTTP client. The first call has a 5 s limit, what several agent frameworks use by
default, shorter than an image takes: the client gives up, and the paid task keeps running on the
server (only a person stops a paid task). The retry, with the same inputs and a longer limit,
gets that same task and its image: one task, one image, nothing paid twice.

    uv run python examples/http_client.py

Without ``WIRO_API_KEY`` the server runs on its built-in emulator (no key, nothing paid), with
each image taking about 8 s; with it set, one paid task on Wiro.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

import anyio
import httpx2 as httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

# What several frameworks give a call by default (openai-agents, Google ADK, AutoGen).
FRAMEWORK_LIMIT = 5.0
PROMPT = {"prompt": "A red paper lantern over a calm night lake, photorealistic", "seed": 7}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(port: int) -> subprocess.Popen[bytes]:
    emulated = not os.environ.get("WIRO_API_KEY")
    args = [sys.executable, "-m", "wiro_seedream_mcp", "serve", "--http", "--port", str(port)]
    if emulated:
        args += ["--emulator", "--emulator-speed", "0.5"]  # an image takes about 8 s
    env = {
        **os.environ,
        "WIRO_HTTP_AUTH": "none",
        "WIRO_LOG_LEVEL": os.environ.get("WIRO_LOG_LEVEL", "WARNING"),
    }
    server = subprocess.Popen(args, env=env)  # noqa: S603 - this Python, this package
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=1) as http:
        while time.monotonic() < deadline:
            try:
                if http.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    return server
            except httpx.TransportError:
                time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server did not start")


async def main(url: str) -> int:
    async with Client(streamable_http_client(url)) as client:
        began = time.monotonic()
        try:
            await client.call_tool("generate_image", PROMPT, read_timeout_seconds=FRAMEWORK_LIMIT)
            print("the first call finished within the framework's limit")
        except MCPError as exc:
            print(f"the first call gave up after {time.monotonic() - began:.0f} s ({exc}); its task runs on")
        retry = await client.call_tool("generate_image", PROMPT, read_timeout_seconds=120)
        listed = await client.call_tool("list_tasks", {})
    data: dict[str, Any] = retry.structured_content or {}
    tasks = (listed.structured_content or {}).get("tasks", [])
    print(f"the retry returned task {data.get('taskid')} (succeeded: {data.get('succeeded')})")
    if data.get("reused"):
        print(f"  the same task as the first call, started {data['reused']['secondsago']} s earlier")
    for output in data.get("outputs", []):
        print(f"  image: {output['url']}")
    print(f"tasks started: {len(tasks)}")
    return 0 if data.get("succeeded") and len(tasks) == 1 else 1


if __name__ == "__main__":
    port = free_port()
    server = start_server(port)
    try:
        code = anyio.run(main, f"http://127.0.0.1:{port}/mcp")
    finally:
        server.terminate()
        server.wait(timeout=20)
    sys.exit(code)
