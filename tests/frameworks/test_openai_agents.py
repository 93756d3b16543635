"""openai-agents' MCPServerStdio against the emulator: its 5 s limit never costs an image, and its
strict schema conversion of all six tools, fed every property, gets an answer from each."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.wiro.seedream import RUN_PATH

from ..conftest import API_KEY, API_SECRET, TOOL_NAMES
from .conftest import need, server_env

pytestmark = pytest.mark.anyio

# Outlasts the client's limit below, and stays short for a test.
SLOW = Timings(queue=0, prepare=0, generate=4, postprocess=0.1)
INPUTS = {"prompt": "an orange kite over green hills", "seed": 77}


def _server(emulator: EmulatorServer, state: Path, limit: float) -> Any:
    need("agents", "openai-agents")
    from agents.mcp import MCPServerStdio

    env = {
        "PATH": os.environ.get("PATH", ""),
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_API_BASE_URL": emulator.base_url,
        "WIRO_STATE_DIR": str(state),
        "WIRO_PREVIEW": "off",
    }
    return MCPServerStdio(
        name="seedream",
        params={"command": sys.executable, "args": ["-m", "wiro_seedream_mcp"], "env": env},
        client_session_timeout_seconds=limit,
    )


async def test_the_default_time_limit_leaves_the_task_running_and_the_retry_gets_it(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=SLOW)
    async with _server(server, tmp_path, limit=2) as agents_server:
        with pytest.raises(Exception, match=r"[Tt]imed out"):
            await agents_server.call_tool("generate_image", INPUTS)
        [taskid] = server.emulator.tasks
    # The agent tries again, this time with a limit long enough (here, a fresh server process).
    async with _server(server, tmp_path, limit=30) as agents_server:
        retry = await agents_server.call_tool("generate_image", INPUTS)
    assert not retry.is_error
    assert retry.structured_content["taskid"] == taskid
    assert retry.structured_content["succeeded"] is True
    assert server.emulator.count(RUN_PATH) == 1
    assert server.emulator.count("/Task/Kill") == server.emulator.count("/Task/Cancel") == 0


def _every_property(schema: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """What a strict model sends: every property, null where it has nothing to say."""
    assert schema["required"] == list(schema["properties"]), "strict mode requires every property"
    assert schema["additionalProperties"] is False
    return {name: given.get(name) for name in schema["properties"]}


async def test_strict_conversion_of_every_tool_fed_every_property(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=Timings(queue=0, prepare=0, generate=60, postprocess=0.1))
    async with _server(server, tmp_path, limit=30) as agents_server:
        from agents.mcp import MCPUtil

        tools = await agents_server.list_tools()
        strict = {
            tool.name: MCPUtil.to_function_tool(tool, agents_server, convert_schemas_to_strict=True)
            for tool in tools
        }
        assert list(strict) == TOOL_NAMES
        assert all(tool.strict_json_schema for tool in strict.values())
        schemas = {name: tool.params_json_schema for name, tool in strict.items()}

        async def call(name: str, **given: Any) -> dict[str, Any]:
            result = await agents_server.call_tool(name, _every_property(schemas[name], given))
            assert not result.is_error, (name, result.content)
            data: dict[str, Any] = result.structured_content
            return data

        running = await call("generate_image", prompt="a kite", wait=False)
        taskid = running["taskid"]
        assert (await call("get_task", taskid=taskid))["taskid"] == taskid
        assert [t["taskid"] for t in (await call("list_tasks"))["tasks"]] == [taskid]
        assert (await call("estimate_cost", size="720x1280"))["usd"] == 0.03
        assert (await call("kill_task", taskid=taskid))["taskid"] == taskid
        server.emulator.timings = Timings(queue=60, prepare=1, generate=1, postprocess=1)
        queued = await call("generate_image", prompt="another kite", wait=False)
        assert (await call("cancel_task", taskid=queued["taskid"]))["taskid"] == queued["taskid"]
    assert server.emulator.tasks[taskid].stopped == "kill"
    assert server.emulator.tasks[queued["taskid"]].stopped == "cancel"


async def test_over_http_the_default_limit_drops_the_request_and_the_retry_gets_the_image(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    """openai-agents' MCPServerStreamableHttp with every default: a 5 s limit, after which the
    client drops the request with no cancel notice. The paid task runs on, the retry attaches."""
    need("agents", "openai-agents")
    from agents.mcp import MCPServerStreamableHttp

    from ..http.conftest import HttpServer

    server = emulator_factory(timings=Timings(queue=0, prepare=0, generate=7, postprocess=0.1))
    env = server_env(server, tmp_path, WIRO_HTTP_AUTH="none", WIRO_LOG_LEVEL="INFO")
    http = HttpServer(env, tmp_path / "server.log").start()
    try:
        async with MCPServerStreamableHttp(name="seedream", params={"url": http.url}) as agents_server:
            with pytest.raises(Exception, match=r"[Tt]imed out"):
                await agents_server.call_tool("generate_image", INPUTS)
            [taskid] = server.emulator.tasks
            retry = await agents_server.call_tool("generate_image", INPUTS)
    finally:
        http.stop()
    assert not retry.is_error
    assert retry.structured_content["taskid"] == taskid
    assert retry.structured_content["succeeded"] is True
    assert retry.structured_content["reused"] is not None
    # The image reaches the framework's result: its link, as a resource link and in the text.
    url = retry.structured_content["outputs"][0]["url"]
    assert any(url in str(block) for block in retry.content)
    assert server.emulator.count(RUN_PATH) == 1
    assert server.emulator.count("/Task/Kill") == server.emulator.count("/Task/Cancel") == 0
    assert f"task {taskid}" in http.logged() and "keeps running on Wiro" in http.logged()
