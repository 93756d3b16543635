"""Run by the langchain example's own Python (MCP SDK 1.x): load this server's tools through
langchain-mcp-adapters, convert them strictly for OpenAI, make one image with every property
sent (nulls for the unused ones), and print what an OpenAI model would be sent, as JSON.

    langchain_check.py SERVER_PYTHON   (the environment says where Wiro is)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from langchain_core.messages import convert_to_openai_messages
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_mcp_adapters.client import MultiServerMCPClient


async def main(server_python: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k.startswith("WIRO_") or k in ("PATH", "HOME")}
    command = {"command": server_python, "args": ["-m", "wiro_seedream_mcp"], "env": env}
    client = MultiServerMCPClient({"seedream": {**command, "transport": "stdio"}})
    tools = {tool.name: tool for tool in await client.get_tools()}
    strict = {name: convert_to_openai_tool(tool, strict=True)["function"] for name, tool in tools.items()}
    schema = strict["generate_image"]["parameters"]
    args = dict.fromkeys(schema["properties"]) | {"prompt": "a paper boat on a puddle"}
    message = await tools["generate_image"].ainvoke(
        {"type": "tool_call", "name": "generate_image", "args": args, "id": "call-1"}
    )
    return {
        "tools": list(tools),
        "strict": {name: function.get("strict") for name, function in strict.items()},
        "required": {name: function["parameters"].get("required", []) for name, function in strict.items()},
        "properties": {name: list(function["parameters"]["properties"]) for name, function in strict.items()},
        "sent": convert_to_openai_messages([message]),
        "artifact": str(getattr(message, "artifact", "")),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
