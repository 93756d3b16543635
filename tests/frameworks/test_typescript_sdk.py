"""The TypeScript MCP SDK's client: every tool result passes its outputSchema (the SDK checks
and throws), task ids go as numbers, and the SDK's own request time-out leaves the task running."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.wiro.seedream import RUN_PATH

from ..conftest import API_KEY, API_SECRET, TOOL_NAMES
from ..nodetools import node_tool

SCRIPT = Path(__file__).with_name("ts_client.mjs")


def test_every_result_passes_its_output_schema(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    sdk = node_tool("WIRO_TEST_TS_SDK", "the TypeScript MCP SDK (npm @modelcontextprotocol/sdk)")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed for the TypeScript SDK test")
    server = emulator_factory(timings=Timings(queue=0, prepare=0, generate=2.5, postprocess=0.1))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_API_BASE_URL": server.base_url,
        "WIRO_STATE_DIR": str(tmp_path),
        "WIRO_PREVIEW": "off",
    }
    done = subprocess.run(
        [node, str(SCRIPT), str(sdk), sys.executable],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert [t["name"] for t in report["tools"]] == TOOL_NAMES
    assert all(t["outputSchema"] for t in report["tools"])
    timed_out, made, looked, listed, estimated, started, killed, refused = report["calls"]
    assert timed_out["ok"] is False
    assert "timed out" in timed_out["error"].lower()
    for answer in (made, looked, listed, estimated, started, killed):
        assert answer["ok"] is True, answer  # the SDK found the structured output valid
        assert answer["isError"] is False, answer
    assert made["succeeded"] is True
    assert estimated["source"] == "wiro-price-list"
    assert looked["taskid"] == made["taskid"]
    assert killed["taskid"] == started["taskid"]
    assert refused["ok"] is True
    assert refused["isError"] is True
    # The first call timed out on the SDK's own limit: its task ran on and the retry got it.
    assert server.emulator.count(RUN_PATH) == 2
    assert server.emulator.tasks[made["taskid"]].stopped is None
    assert server.emulator.tasks[started["taskid"]].stopped == "kill"
