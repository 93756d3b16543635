"""Seedream images from a LangGraph agent, through langchain-mcp-adapters.

    cd examples/langchain && uv run python langgraph_agent.py                        # scripted model
    cd examples/langchain && uv run python langgraph_agent.py --model openai:gpt-5   # OPENAI_API_KEY

langchain-mcp-adapters 0.3 needs the MCP SDK 1.x, so this example has an environment of its own
(this folder's pyproject.toml) and starts the server from the project above with `uv run`. It
sets no time limit on calls (the adapter's default). Tools are converted with strict schemas
(every property required, nulls for the unused ones), as OpenAI's strict function calling wants
them.

Without --model the agent runs on a scripted stand-in for the model that calls generate_image
once and answers with the link; the messages a model would be sent are printed, converted to
OpenAI's format, to show what it sees: the text, the preview, and the image link.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage, convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_mcp_adapters.client import MultiServerMCPClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _server


class ScriptedModel(BaseChatModel):
    """Stands in for a model: call generate_image with every property (nulls for the unused ones,
    as a strict model does), then answer with the link it returned."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if not results:
            args = {
                "prompt": _server.PROMPT,
                **dict.fromkeys(("size", "watermark", "guidanceScale", "seed", "callbackUrl")),
                **dict.fromkeys(("wait", "new_task")),
            }
            call = {"name": "generate_image", "args": args, "id": "call-1", "type": "tool_call"}
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content="", tool_calls=[call]))])
        sent = convert_to_openai_messages(results)
        print("the model is sent:", json.dumps(_shorten(sent))[:1500])
        links = [
            part["image_url"]["url"]
            for message in sent
            for part in (message["content"] if isinstance(message["content"], list) else [])
            if part.get("type") == "image_url" and part["image_url"]["url"].startswith("http")
        ]
        text = "Here is your image: " + " ".join(links)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def _shorten(value: Any) -> Any:
    """Base64 previews cut short for printing."""
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    if isinstance(value, str) and value.startswith("data:"):
        return value[:40] + "..."
    return value


async def run(model: str | None) -> int:
    command, args = _server.command()
    client = MultiServerMCPClient(
        {"seedream": {"command": command, "args": args, "env": _server.environment(), "transport": "stdio"}}
    )
    tools = await client.get_tools()
    print("tools:", ", ".join(tool.name for tool in tools))
    strict = [convert_to_openai_tool(tool, strict=True) for tool in tools]
    print("strict schemas:", len(strict))
    agent = create_agent(model or ScriptedModel(), tools)
    state = await agent.ainvoke({"messages": [("user", f"Make an image: {_server.PROMPT}")]})
    answer = str(state["messages"][-1].content)
    print("answer:", answer)
    return 0 if "http" in answer else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a LangChain model name, e.g. openai:gpt-5 (needs its key)")
    args = parser.parse_args()
    print("server:", _server.where())
    return asyncio.run(run(args.model))


if __name__ == "__main__":
    raise SystemExit(main())
