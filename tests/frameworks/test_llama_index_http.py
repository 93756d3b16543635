"""LlamaIndex's BasicMCPClient over streamable HTTP with its defaults: a 30 s limit per call and a
session of its own for every call, closed when the limit runs out. The paid task runs on, and the
retry (another session) gets it: one Run, no stop, the image in the tool's output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.wiro.seedream import RUN_PATH

from ..http.conftest import HttpServer
from .conftest import need, server_env

pytestmark = pytest.mark.anyio

INPUTS = {"prompt": "a paper boat on a puddle", "seed": 31}
# Longer than BasicMCPClient's default 30 s, so the first call runs out of time.
PAST_THE_LIMIT = Timings(queue=0, prepare=0, generate=33, postprocess=0.1)


async def test_the_default_limit_and_a_closed_session_cost_no_image(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    need("llama_index.tools.mcp", "llama-index")
    from llama_index.tools.mcp import BasicMCPClient

    server = emulator_factory(timings=PAST_THE_LIMIT)
    env = server_env(server, tmp_path, WIRO_HTTP_AUTH="none", WIRO_WAIT_TIMEOUT="50", WIRO_PREVIEW="off")
    http = HttpServer(env, tmp_path / "server.log").start()
    try:
        with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the adapter raises at its limit
            await BasicMCPClient(http.url).call_tool("generate_image", INPUTS)
        [taskid] = server.emulator.tasks
        retry = await BasicMCPClient(http.url).call_tool("generate_image", INPUTS)
    finally:
        http.stop()
    data = retry.structured_content
    assert data is not None and data["taskid"] == taskid
    assert data["succeeded"] is True
    assert any(data["outputs"][0]["url"] in str(block) for block in retry.content)
    assert server.emulator.count(RUN_PATH) == 1
    assert server.emulator.count("/Task/Kill") == server.emulator.count("/Task/Cancel") == 0
    assert server.emulator.tasks[taskid].stopped is None
