"""Haystack's MCPTool (mcp-haystack) with its defaults: a 30 s limit per call, enforced with
``asyncio.wait_for`` (the cancel the server gets says "caller cancelled", not a time-out). The
paid task runs on, and the call again gets that task and its image: one Run, nothing stopped."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.wiro.seedream import RUN_PATH

from .conftest import need, server_env

INPUTS = {"prompt": "a lighthouse made of glass", "seed": 61}
# Longer than MCPTool's default 30 s, so the first call runs out of time.
PAST_THE_LIMIT = Timings(queue=0, prepare=0, generate=33, postprocess=0.1)


def test_the_default_limit_costs_no_image(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    need("haystack_integrations.tools.mcp", "haystack")
    from haystack_integrations.tools.mcp import MCPTool, StdioServerInfo

    server = emulator_factory(timings=PAST_THE_LIMIT)
    env: dict[str, Any] = server_env(server, tmp_path, WIRO_PREVIEW="off")
    info = StdioServerInfo(command=sys.executable, args=["-m", "wiro_seedream_mcp"], env=env)
    tool = MCPTool(name="generate_image", server_info=info)
    try:
        with pytest.raises(Exception, match=r"(?i)timeout|timed out"):
            tool.invoke(**INPUTS)
        [taskid] = server.emulator.tasks
        answer = tool.invoke(**INPUTS)
    finally:
        tool.close()
    text = str(answer)
    assert f"Task {taskid} finished" in text, text
    assert f"{server.origin}/cdn/" in text
    assert server.emulator.count(RUN_PATH) == 1
    assert server.emulator.count("/Task/Kill") == server.emulator.count("/Task/Cancel") == 0
    assert server.emulator.tasks[taskid].stopped is None
