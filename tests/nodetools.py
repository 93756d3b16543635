"""Tools from the npm registry that some tests drive (the MCPB CLI, the MCP Inspector).

CI installs them and names them in the environment; elsewhere those tests are skipped, unless
``WIRO_TEST_REQUIRE_NODE_TOOLS`` is set, when a missing tool is a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def node_tool(variable: str, what: str) -> Path:
    value = os.environ.get(variable, "")
    if value and Path(value).exists():
        return Path(value)
    message = f"{what} not available: set {variable} (CI installs it)"
    if os.environ.get("WIRO_TEST_REQUIRE_NODE_TOOLS") or os.environ.get("WIRO_TEST_REQUIRE_ALL"):
        pytest.fail(message)
    pytest.skip(message)


def uv_binary() -> str:
    """The uv running these tests (uv sets UV for what it runs), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv is needed to run the host configurations and could not be found")
    return found


def unavailable(message: str) -> None:
    """Skip a test whose optional tool is missing; in CI (``WIRO_TEST_REQUIRE_ALL``) fail it."""
    if os.environ.get("WIRO_TEST_REQUIRE_ALL"):
        pytest.fail(message)
    pytest.skip(message)
