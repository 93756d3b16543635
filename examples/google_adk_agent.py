"""Seedream images from a Google ADK agent, through its McpToolset (google-adk[mcp]).

    uv run --group google-adk python examples/google_adk_agent.py                         # scripted
    uv run --group google-adk python examples/google_adk_agent.py --model gemini-2.5-flash  # Gemini

ADK's StdioConnectionParams.timeout (5 s by default) also bounds every tool call; an image takes
longer, so it is set above the server's wait. At 5 s the call would fail, but the paid task
runs on and the same call again returns it. Without --model the agent runs on a scripted
stand-in for the model that calls generate_image once and answers with the link: the ADK runner,
its MCP toolset and the server all run for real, with no model key.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import AsyncGenerator

import _server
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import InMemoryRunner
from google.adk.tools.mcp_tool import McpToolset, StdioConnectionParams
from google.genai import types
from mcp import StdioServerParameters


class ScriptedModel(BaseLlm):
    """Stands in for a model: call generate_image, then report the link it returned."""

    model: str = "scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        answers = [
            part.function_response.response or {}
            for content in llm_request.contents
            for part in content.parts or []
            if part.function_response is not None
        ]
        if not answers:
            call = types.FunctionCall(name="generate_image", args={"prompt": _server.PROMPT})
            yield LlmResponse(content=types.Content(role="model", parts=[types.Part(function_call=call)]))
            return
        links = re.findall(r"https?://\S+\.png", str(answers[-1]))
        text = "Here is your image: " + (links[0] if links else f"(none: {str(answers[-1])[:300]})")
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=text)]))


def toolset() -> McpToolset:
    command, args = _server.command()
    server = StdioServerParameters(command=command, args=args, env=_server.environment())
    return McpToolset(
        connection_params=StdioConnectionParams(server_params=server, timeout=_server.WAIT + _server.MARGIN)
    )


async def run(model: str | None) -> int:
    tools = toolset()
    try:
        agent = LlmAgent(
            name="painter",
            model=model or ScriptedModel(),
            instruction="Make the image the user asks for with generate_image, then give its link.",
            tools=[tools],
        )
        runner = InMemoryRunner(agent=agent, app_name="seedream-example")
        session = await runner.session_service.create_session(app_name="seedream-example", user_id="me")
        message = types.Content(role="user", parts=[types.Part(text=f"Make an image: {_server.PROMPT}")])
        answer = ""
        async for event in runner.run_async(user_id="me", session_id=session.id, new_message=message):
            for part in (event.content.parts if event.content else None) or []:
                if part.text:
                    answer = part.text
        print("answer:", answer)
        return 0 if "http" in answer else 1
    finally:
        await tools.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a Gemini model name, e.g. gemini-2.5-flash (needs GOOGLE_API_KEY)")
    args = parser.parse_args()
    print("server:", _server.where())
    return asyncio.run(run(args.model))


if __name__ == "__main__":
    raise SystemExit(main())
