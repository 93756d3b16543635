"""How long a host waits for this server, against the floor of a trivial MCPServer, side by side.

Run with ``uv run python bench/startup.py``. Each server is spawned over stdio as a host would,
and timed from spawn to the answer of ``tools/list``; the median of several starts is printed,
with the ratio to the trivial server.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

STARTS = 7

TRIVIAL = """
from mcp.server.mcpserver import MCPServer

server = MCPServer("trivial")


@server.tool()
async def echo(text: str) -> str:
    return text


server.run("stdio")
"""


async def time_start(command: str, args: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    async with Client(StdioServerParameters(command=command, args=args, env=env), mode="legacy") as client:
        await client.list_tools()
        return time.perf_counter() - began


async def main() -> None:
    script = Path(sys.executable).parent / "wiro-seedream-mcp"
    with tempfile.TemporaryDirectory() as state, tempfile.NamedTemporaryFile("w", suffix=".py") as trivial:
        trivial.write(TRIVIAL)
        trivial.flush()
        ours_env = {"WIRO_API_KEY": "k", "WIRO_STATE_DIR": state, "WIRO_LOG_LEVEL": "WARNING"}
        floor, ours = [], []
        for _ in range(STARTS):  # interleaved, so both see the same machine
            floor.append(await time_start(sys.executable, [trivial.name], {}))
            ours.append(await time_start(str(script), [], ours_env))
    low, mine = statistics.median(floor), statistics.median(ours)
    print(f"spawn -> tools/list answered, median of {STARTS} starts")
    print(f"  trivial MCPServer (one tool):  {low:.3f} s")
    print(f"  wiro-seedream-mcp:             {mine:.3f} s")
    print(f"  ratio: {mine / low:.2f}x   (added by this server: {mine - low:+.3f} s)")


if __name__ == "__main__":
    anyio.run(main)
