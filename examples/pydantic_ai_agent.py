"""Seedream images from a Pydantic AI agent, through its MCPToolset (Pydantic AI 2.x).

    uv run --group pydantic-ai python examples/pydantic_ai_agent.py                      # scripted
    uv run --group pydantic-ai python examples/pydantic_ai_agent.py --model openai:gpt-5  # a real model

Without --model the agent runs on a scripted stand-in for the model (Pydantic AI's FunctionModel)
that calls generate_image once and answers with the image link: the whole agent loop, the toolset
and the server run for real, and no model key is needed. Pydantic AI sets no time limit per
call by default; the toolset's client is given one above the server's wait (were it to run out,
the paid task would run on and the same call again return it), and progress is printed as it arrives.
"""

from __future__ import annotations

import argparse
import asyncio

import _server
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel


async def progress(value: float, total: float | None, message: str | None) -> None:
    print(f"progress: {value:g}/{total or 100:g} {message or ''}")


def toolset() -> MCPToolset:
    command, args = _server.command()
    transport = StdioTransport(command=command, args=args, env=_server.environment())
    client = Client(transport, timeout=_server.WAIT + _server.MARGIN, progress_handler=progress)
    return MCPToolset(client)


def scripted(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Stands in for a model: call generate_image, then report what it returned."""
    returned = [
        part
        for message in messages
        for part in getattr(message, "parts", [])
        if isinstance(part, ToolReturnPart) and part.tool_name == "generate_image"
    ]
    if not returned:
        if "generate_image" not in {tool.name for tool in info.function_tools}:
            return ModelResponse(parts=[TextPart("The Seedream tools are not available.")])
        return ModelResponse(parts=[ToolCallPart("generate_image", {"prompt": _server.PROMPT})])
    # What the model is shown: the result's text, the preview as an image it can look at, and
    # the image's link.
    content = returned[-1].content
    parts = content if isinstance(content, list) else [content]
    shown = [type(part).__name__ for part in parts]
    print("the model is shown:", ", ".join(shown))
    links = [part for part in parts if isinstance(part, str) and part.startswith("http")]
    return ModelResponse(parts=[TextPart("Here is your image: " + " ".join(links))])


async def run(model: str | None) -> int:
    agent = Agent(model or FunctionModel(scripted), toolsets=[toolset()])
    result = await agent.run(f"Make an image: {_server.PROMPT}")
    print("answer:", result.output)
    return 0 if "http" in result.output else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a Pydantic AI model name, e.g. openai:gpt-5 (needs its key)")
    args = parser.parse_args()
    print("server:", _server.where())
    return asyncio.run(run(args.model))


if __name__ == "__main__":
    raise SystemExit(main())
