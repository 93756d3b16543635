"""Seedream images from an openai-agents agent, through its MCPServerStdio adapter.

    uv run --group openai-agents python examples/openai_agents.py          # tools called directly
    uv run --group openai-agents python examples/openai_agents.py --agent  # an agent (OPENAI_API_KEY)

openai-agents gives up on a call after 5 s by default (client_session_timeout_seconds); an image
takes longer, so the limit is set above the server's wait. At 5 s the call would fail, but
the paid task runs on and the same call again returns it. Strict schemas work as they are.
"""

from __future__ import annotations

import argparse
import asyncio

import _server
from agents import Agent, Runner
from agents.mcp import MCPServerStdio, MCPUtil


def seedream() -> MCPServerStdio:
    command, args = _server.command()
    return MCPServerStdio(
        name="seedream",
        params={"command": command, "args": args, "env": _server.environment()},
        client_session_timeout_seconds=_server.WAIT + _server.MARGIN,
        cache_tools_list=True,
    )


async def direct() -> int:
    async with seedream() as server:
        tools = await server.list_tools()
        print("tools:", ", ".join(tool.name for tool in tools))
        strict = [MCPUtil.to_function_tool(tool, server, convert_schemas_to_strict=True) for tool in tools]
        print("strict schemas:", all(tool.strict_json_schema for tool in strict))
        result = await server.call_tool("generate_image", {"prompt": _server.PROMPT, "size": "1024x1024"})
        data = result.structured_content or {}
        print("task:", data.get("taskid"), data.get("status"))
        for output in data.get("outputs", []):
            print("image:", output["url"])
        return 0 if data.get("succeeded") else 1


async def agent() -> int:
    async with seedream() as server:
        painter = Agent(
            name="painter",
            instructions="Make the image the user asks for with generate_image, then give its link.",
            mcp_servers=[server],
            mcp_config={"convert_schemas_to_strict": True},
        )
        result = await Runner.run(painter, f"Make an image: {_server.PROMPT}")
        print(result.final_output)
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", action="store_true", help="run an agent (needs OPENAI_API_KEY)")
    args = parser.parse_args()
    print("server:", _server.where())
    return asyncio.run(agent() if args.agent else direct())


if __name__ == "__main__":
    raise SystemExit(main())
