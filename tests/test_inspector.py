"""A client nobody here wrote: the MCP Inspector's CLI mode lists the tools and makes an image."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from wiro_seedream_mcp.emulator import EmulatorServer

from .conftest import API_KEY, API_SECRET, TOOL_NAMES
from .nodetools import node_tool
from .rawstdio import SCRIPT


def inspect(inspector: Path, emulator: EmulatorServer, tmp_path: Path, *method: str) -> dict[str, Any]:
    env_args = []
    for key, value in {
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_API_BASE_URL": emulator.base_url,
        "WIRO_STATE_DIR": str(tmp_path / "state"),
        "WIRO_OUTPUT_DIR": str(tmp_path / "images"),
    }.items():
        env_args += ["-e", f"{key}={value}"]
    out = subprocess.run(
        [str(inspector), "--cli", *env_args, str(SCRIPT), *method],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    start = out.stdout.index("{")  # after the inspector's own banner
    answer: dict[str, Any] = json.loads(out.stdout[start:])
    return answer


def test_inspector_lists_tools_and_generates_an_image(emulator: EmulatorServer, tmp_path: Path) -> None:
    inspector = node_tool("WIRO_TEST_INSPECTOR", "the MCP Inspector (npm @modelcontextprotocol/inspector)")
    listed = inspect(inspector, emulator, tmp_path, "--method", "tools/list")
    assert [tool["name"] for tool in listed["tools"]] == TOOL_NAMES
    called = inspect(
        inspector,
        emulator,
        tmp_path,
        "--method",
        "tools/call",
        "--tool-name",
        "generate_image",
        "--tool-arg",
        "prompt=a lighthouse at dusk",
        "size=1248x832",
    )
    assert called["isError"] is False
    data = called["structuredContent"]
    assert data["succeeded"] is True
    assert Path(data["outputs"][0]["path"]).is_file()
    kinds = [block["type"] for block in called["content"]]
    # The preview, and the link to the image; the saved file is named in the text, not linked.
    assert kinds == ["text", "image", "resource_link"]
    assert called["content"][2]["uri"] == data["outputs"][0]["url"]
    assert f"Saved to {data['outputs'][0]['path']}" in called["content"][0]["text"]
    assert emulator.emulator.tasks[data["taskid"]].inputs["size"] == "1248x832"
