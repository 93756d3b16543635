"""AutoGen 0.7.5 and Semantic Kernel 1.45 (in the autogen example's own environment, with the
MCP SDK 1.x their adapters need), each with its defaults. AutoGen's is a 5 s read limit per call,
against an image that takes longer:

* ``mcp_server_tools`` starts a server process per call and closes it at the limit: the paid
  task runs on, and the call again (another process) gets that task and its image;
* ``McpWorkbench`` turns a ``resource_link`` into an error: with ``WIRO_RESOURCE_LINKS=off`` the
  agent gets the image's link as text instead.

Semantic Kernel has no limit, and turns a ``resource_link`` into a ``BinaryContent`` that fails
the call: with ``WIRO_RESOURCE_LINKS=off`` the agent gets the image's link as text.

One Run per distinct request, nothing stopped."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.wiro.seedream import RUN_PATH

from ..conftest import TOOL_NAMES
from .conftest import need_autogen, run_script, server_env

CHECK = Path(__file__).with_name("sdk1_check.py")
# Past AutoGen's 5 s limit, and short for a test.
PAST_THE_LIMIT = Timings(queue=0, prepare=0, generate=7, postprocess=0.1)


def test_autogen_and_semantic_kernel_with_their_defaults_get_every_image_and_pay_once(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    python = need_autogen()
    server = emulator_factory(timings=PAST_THE_LIMIT)
    env = server_env(server, tmp_path, WIRO_PREVIEW="off")
    report = json.loads(run_script(python, CHECK, env, sys.executable).strip().splitlines()[-1])
    tools = report["tools"]
    assert tools["tools"] == TOOL_NAMES
    assert tools["first"] != "answered"  # the 5 s limit ran out
    bench = report["workbench"]
    assert bench["on"]["first"]["is_error"] and bench["off"]["first"]["is_error"]  # the limit again
    # With resource links, McpWorkbench calls the finished image an error; without, it is text.
    assert bench["on"]["again"]["is_error"] is True
    assert "Unknown content type" in bench["on"]["again"]["text"]
    assert bench["off"]["again"]["is_error"] is False
    kernel = report["kernel"]
    assert kernel["on"]["ok"] is False, kernel  # SK rejects the resource_link block
    assert kernel["off"]["ok"] is True, kernel
    assert f"{server.origin}/cdn/" in kernel["off"]["text"]
    # Five distinct requests, five tasks: each first call's task, run on and picked up again.
    assert server.emulator.count(RUN_PATH) == 5
    assert server.emulator.count("/Task/Kill") == server.emulator.count("/Task/Cancel") == 0
    assert all(task.stopped is None for task in server.emulator.tasks.values())
    again = "\n".join(tools["again"])
    assert "finished" in again and f"{server.origin}/cdn/" in again
    assert f"{server.origin}/cdn/" in bench["off"]["again"]["text"]
