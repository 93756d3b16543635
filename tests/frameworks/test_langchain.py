"""langchain-mcp-adapters (in the langchain example's own environment, MCP SDK 1.x) against
the emulator: strict schemas for all six tools, and nothing a model cannot open (a saved file's
file:// link) offered to it as an image once the result is converted to OpenAI messages."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from wiro_seedream_mcp.emulator import EmulatorServer
from wiro_seedream_mcp.wiro.seedream import RUN_PATH

from ..conftest import API_KEY, API_SECRET, TOOL_NAMES
from .conftest import need_langchain, run_script

CHECK = Path(__file__).with_name("langchain_check.py")


def test_converted_result_offers_no_local_file_as_an_image(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    python = need_langchain()
    server = emulator_factory()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_API_BASE_URL": server.base_url,
        "WIRO_STATE_DIR": str(tmp_path / "state"),
        "WIRO_OUTPUT_DIR": str(tmp_path / "images"),
    }
    report = json.loads(run_script(python, CHECK, env, sys.executable))
    assert report["tools"] == TOOL_NAMES
    assert all(report["strict"].values())
    assert report["required"] == report["properties"], "strict mode requires every property"

    [saved] = list((tmp_path / "images").iterdir())
    [message] = report["sent"]
    parts = message["content"]
    images = [part["image_url"]["url"] for part in parts if part["type"] == "image_url"]
    texts = "\n".join(part["text"] for part in parts if part["type"] == "text")
    assert f"Saved to {saved}" in texts
    assert any(url.startswith(server.origin) for url in images), images
    assert not any(url.startswith("file:") for url in images), images
    assert "file://" not in json.dumps(report)
    assert server.emulator.count(RUN_PATH) == 1
