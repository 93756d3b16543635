"""Seedream images from LlamaIndex, through llama-index-tools-mcp (BasicMCPClient + McpToolSpec).

    uv run --group llama-index python examples/llama_index_agent.py

BasicMCPClient starts the server anew for every call and gives up after 30 s by default; the
limit is set above the server's wait here (at 30 s the call would fail, but the paid task runs
on and the same call again returns it). LlamaIndex hands the model the whole tool result as
text, so the inline preview (base64) is switched off with WIRO_PREVIEW=off: the link and the
structured result are what the model needs.
"""

from __future__ import annotations

import asyncio
import os

import _server
from llama_index.tools.mcp import BasicMCPClient, McpToolSpec


async def run() -> int:
    os.environ.setdefault("WIRO_PREVIEW", "off")
    command, args = _server.command()
    limit = _server.WAIT + _server.MARGIN
    client = BasicMCPClient(command, args=args, env=_server.environment(), timeout=limit)
    tools = {tool.metadata.name: tool for tool in await McpToolSpec(client).to_tool_list_async()}
    print("tools:", ", ".join(tools))
    output = await tools["generate_image"].acall(prompt=_server.PROMPT, size="864x1152")
    result = output.raw_output
    data = result.structured_content or {}
    print("task:", data.get("taskid"), data.get("status"))
    for item in data.get("outputs", []):
        print("image:", item["url"])
    print("the model reads:", len(output.content), "characters")
    return 0 if data.get("succeeded") else 1


def main() -> int:
    print("server:", _server.where())
    return asyncio.run(run())


if __name__ == "__main__":
    raise SystemExit(main())
