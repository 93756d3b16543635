"""Run by the autogen example's own Python (MCP SDK 1.x: autogen-ext 0.7.5, semantic-kernel 1.45):
call this server's generate_image through each framework's MCP adapter with its defaults, and
print what the framework handed back, as JSON.

* AutoGen's ``mcp_server_tools``: one server process per call, closed at its 5 s limit;
* AutoGen's ``McpWorkbench``: one session, 5 s, results turned into AutoGen's content types;
* Semantic Kernel's ``MCPStdioPlugin``: no limit, results turned into SK's content types.

    sdk1_check.py SERVER_PYTHON   (the environment says where Wiro is)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from autogen_core import CancellationToken
from autogen_ext.tools.mcp import McpWorkbench, StdioServerParams, mcp_server_tools
from semantic_kernel.connectors.mcp import MCPStdioPlugin

T = TypeVar("T")


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith("WIRO_") or k in ("PATH", "HOME")}
    return {**env, **extra}


def params(server_python: str, **extra: str) -> StdioServerParams:
    return StdioServerParams(command=server_python, args=["-m", "wiro_seedream_mcp"], env=server_env(**extra))


def out_of_time(exc: BaseException) -> bool:
    """Whether ``exc`` is the 5 s limit running out. The limit covers the server's start too, which
    on a loaded machine can take that long; SDK 1.x then often shows a ``BrokenResourceError``
    instead (the late answer arrives after the client stopped reading: python-sdk#1960)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(out_of_time(inner) for inner in exc.exceptions)
    return "Timed out" in str(exc) or type(exc).__name__ == "BrokenResourceError"


async def again_until_in_time(call: Callable[[], Awaitable[T]], tries: int = 3) -> tuple[T, int]:
    """What a person does when the limit ran out: the same call again (it pays nothing more)."""
    for attempt in range(1, tries + 1):
        try:
            return await call(), attempt
        except BaseException as exc:
            if attempt == tries or not out_of_time(exc):
                raise
    raise AssertionError("unreachable")


async def tools_path(server_python: str) -> dict[str, Any]:
    listed, list_tries = await again_until_in_time(lambda: mcp_server_tools(params(server_python)))
    tools = {tool.name: tool for tool in listed}
    inputs = {"prompt": "a tin robot watering tulips", "seed": 101}
    first: str
    try:
        await tools["generate_image"].run_json(inputs, CancellationToken())
        first = "answered"
    except BaseException as exc:
        first = f"{type(exc).__name__}: {exc}"
    again, again_tries = await again_until_in_time(
        lambda: tools["generate_image"].run_json(inputs, CancellationToken())
    )
    texts = [item.text for item in again if getattr(item, "type", "") == "text"]
    return {"tools": list(tools), "first": first, "again": texts, "tries": [list_tries, again_tries]}


async def workbench_path(server_python: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for seed, links in ((202, "on"), (203, "off")):
        inputs = {"prompt": "a tin robot reading a map", "seed": seed}
        async with McpWorkbench(params(server_python, WIRO_RESOURCE_LINKS=links)) as bench:
            first = await bench.call_tool("generate_image", inputs)
            for _ in range(3):  # the same call again while the limit runs out (it pays nothing more)
                again = await bench.call_tool("generate_image", inputs)
                if "Timed out" not in again.to_text():
                    break
        found[links] = {
            "first": {"is_error": first.is_error, "text": first.to_text()},
            "again": {"is_error": again.is_error, "text": again.to_text()},
        }
    return found


async def kernel_path(server_python: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for seed, links in ((301, "on"), (302, "off")):
        plugin = MCPStdioPlugin(
            name="seedream",
            command=server_python,
            args=["-m", "wiro_seedream_mcp"],
            env=server_env(WIRO_RESOURCE_LINKS=links),
        )
        async with plugin:
            try:
                contents = await plugin.call_tool("generate_image", prompt="a tin robot painting", seed=seed)
                found[links] = {"ok": True, "text": "\n".join(str(item) for item in contents)}
            except Exception as exc:
                found[links] = {"ok": False, "text": f"{type(exc).__name__}: {exc} {exc.__cause__!r}"}
    return found


async def main(server_python: str) -> dict[str, Any]:
    return {
        "tools": await tools_path(server_python),
        "workbench": await workbench_path(server_python),
        "kernel": await kernel_path(server_python),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
