"""The console script as a host runs it: a subprocess speaking JSON-RPC over real stdio,
against the emulator as a real HTTP server."""

from __future__ import annotations

import json
import os

import pytest
from mcp import Client, StdioServerParameters
from mcp.types import ResourceLink

from wiro_seedream_mcp.emulator import EmulatorServer

from .conftest import API_KEY, API_SECRET, TOOL_NAMES
from .rawstdio import SCRIPT, RawServer


def server_env(emulator: EmulatorServer, **extra: str) -> dict[str, str]:
    return {
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_API_BASE_URL": emulator.base_url,
        "WIRO_WAIT_TIMEOUT": "20",
        "WIRO_STATE_DIR": os.environ["WIRO_STATE_DIR"],
        **extra,
    }


def test_console_script_is_installed() -> None:
    assert SCRIPT.exists(), "the wiro-seedream-mcp console script is missing from the environment"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_generate_over_real_stdio(emulator: EmulatorServer, mode: str) -> None:
    params = StdioServerParameters(command=str(SCRIPT), args=[], env=server_env(emulator))
    async with Client(params, mode=mode) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        result = await client.call_tool("generate_image", {"prompt": "a fox over stdio", "size": "832x1248"})
    assert names == TOOL_NAMES
    assert not result.is_error
    data = result.structured_content
    assert isinstance(data, dict)
    assert data["succeeded"] is True
    [link] = [block for block in result.content if isinstance(block, ResourceLink)]
    assert str(link.uri) == data["outputs"][0]["url"]
    assert emulator.emulator.tasks[data["taskid"]].inputs["size"] == "832x1248"


def test_stdout_is_json_rpc_only_and_secrets_stay_out_of_stderr(emulator: EmulatorServer) -> None:
    """A failing call logs on stderr; stdout carries nothing but JSON-RPC; no secret shows anywhere."""
    wrong_secret = "wrong-secret-should-never-be-printed"
    server = RawServer(server_env(emulator, WIRO_API_SECRET=wrong_secret, WIRO_LOG_LEVEL="DEBUG"), fresh=True)
    try:
        assert server.initialize()["result"]["serverInfo"]["name"] == "wiro-seedream"
        assert len(server.response(server.send("tools/list"))["result"]["tools"]) == 6
        # Lines that are not messages are answered, not dropped, and the server keeps serving.
        server.write_line("this is not json")
        assert server.read()["error"]["code"] == -32700
        server.write_line('[{"jsonrpc": "2.0", "id": 70, "method": "ping"}]')
        batch = server.read()
        assert (batch["id"], batch["error"]["code"]) == (None, -32600)
        assert "batches" in batch["error"]["message"]
        server.write_line('{"id": 71, "method": "ping"}')  # no "jsonrpc"
        assert server.read()["error"] == {
            "code": -32600,
            "message": "Invalid Request: not a JSON-RPC 2.0 message",
        }
        server.write_line("")
        assert server.response(server.send("ping"))["result"] == {}
        call = server.response(
            server.send("tools/call", {"name": "generate_image", "arguments": {"prompt": "x"}})
        )["result"]
        assert call["isError"] is True
        assert "Project authorization is not valid" in call["content"][0]["text"]
    finally:
        code, stderr = server.close()
    assert code == 0, stderr
    for line in server.lines:
        assert json.loads(line)["jsonrpc"] == "2.0"
    assert "generate_image" in stderr  # the failure was logged, on stderr
    for secret in (wrong_secret, API_KEY):
        assert secret not in stderr
        assert all(secret not in line for line in server.lines)


@pytest.mark.child_process
@pytest.mark.parametrize(("level", "shown"), [("INFO", False), ("DEBUG", True)])
def test_http_requests_are_logged_at_debug_only(emulator: EmulatorServer, level: str, shown: bool) -> None:
    """At the default level the host's log gets the server's own lines, not one per HTTP request."""
    server = RawServer(server_env(emulator, WIRO_LOG_LEVEL=level))
    try:
        server.initialize()
        call = server.response(
            server.send("tools/call", {"name": "generate_image", "arguments": {"prompt": "quiet"}})
        )["result"]
        assert call["isError"] is False
    finally:
        code, stderr = server.close()
    assert code == 0, stderr
    assert ("HTTP Request:" in stderr) is shown
    assert "accepted by Wiro" in stderr  # the server's own line for the task
