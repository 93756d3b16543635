"""Seedream images from FastMCP's client (fastmcp 4), the client many Python agents build on.

    uv run --group fastmcp python examples/fastmcp_client.py

Lists the tools, makes one image with progress printed as it arrives, and reads the task list.
FastMCP's client sets no time limit per call by default; this one sets it above the server's
wait. Were a limit to run out, the paid task would run on and the same call again return it.
"""

from __future__ import annotations

import asyncio

import _server
from fastmcp import Client
from fastmcp.client.transports import StdioTransport


async def progress(value: float, total: float | None, message: str | None) -> None:
    print(f"progress: {value:g}/{total or 100:g} {message or ''}")


async def run() -> int:
    command, args = _server.command()
    transport = StdioTransport(command=command, args=args, env=_server.environment())
    async with Client(transport, timeout=_server.WAIT + _server.MARGIN) as client:
        tools = await client.list_tools()
        print("tools:", ", ".join(tool.name for tool in tools))
        result = await client.call_tool(
            "generate_image", {"prompt": _server.PROMPT, "size": "1280x720"}, progress_handler=progress
        )
        data = result.structured_content or {}
        print("task:", data.get("taskid"), data.get("status"))
        for output in data.get("outputs", []):
            print("image:", output["url"])
        listing = await client.call_tool("list_tasks", {"limit": 5})
        print("recent tasks:", len((listing.structured_content or {}).get("tasks", [])))
        return 0 if data.get("succeeded") else 1


def main() -> int:
    print("server:", _server.where())
    return asyncio.run(run())


if __name__ == "__main__":
    raise SystemExit(main())
