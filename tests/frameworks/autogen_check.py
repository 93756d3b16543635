"""Run by the autogen example's own Python (autogen-ext 0.7.5, MCP SDK 1.x): call this server's
generate_image through AutoGen's two MCP paths with their defaults (a 5 s read limit), each
first past the limit and then again, and print what AutoGen handed back, as JSON.

* ``mcp_server_tools``: one server process per call, closed when the call ends;
* ``McpWorkbench``: one session, results turned into AutoGen's own content types.

    autogen_check.py SERVER_PYTHON   (the environment says where Wiro is)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from autogen_core import CancellationToken
from autogen_ext.tools.mcp import McpWorkbench, StdioServerParams, mcp_server_tools


def params(server_python: str, **extra: str) -> StdioServerParams:
    env = {k: v for k, v in os.environ.items() if k.startswith("WIRO_") or k in ("PATH", "HOME")}
    return StdioServerParams(command=server_python, args=["-m", "wiro_seedream_mcp"], env={**env, **extra})


async def tools_path(server_python: str) -> dict[str, Any]:
    tools = {tool.name: tool for tool in await mcp_server_tools(params(server_python))}
    inputs = {"prompt": "a tin robot watering tulips", "seed": 101}
    first: str
    try:
        await tools["generate_image"].run_json(inputs, CancellationToken())
        first = "answered"
    except BaseException as exc:
        first = f"{type(exc).__name__}: {exc}"
    again = await tools["generate_image"].run_json(inputs, CancellationToken())
    texts = [item.text for item in again if getattr(item, "type", "") == "text"]
    return {"tools": list(tools), "first": first, "again": texts}


async def workbench_path(server_python: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for seed, links in ((202, "on"), (203, "off")):
        inputs = {"prompt": "a tin robot reading a map", "seed": seed}
        async with McpWorkbench(params(server_python, WIRO_RESOURCE_LINKS=links)) as bench:
            first = await bench.call_tool("generate_image", inputs)
            again = await bench.call_tool("generate_image", inputs)
        found[links] = {
            "first": {"is_error": first.is_error, "text": first.to_text()},
            "again": {"is_error": again.is_error, "text": again.to_text()},
        }
    return found


async def main(server_python: str) -> dict[str, Any]:
    return {"tools": await tools_path(server_python), "workbench": await workbench_path(server_python)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
