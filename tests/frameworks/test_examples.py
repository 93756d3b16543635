"""Every example in examples/ runs green in its model-free mode, against the built-in emulator
(no key): the framework's real MCP adapter, the server over stdio, one image made."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..conftest import TOOL_NAMES
from .conftest import (
    AUTOGEN,
    EXAMPLES,
    LANGCHAIN,
    PYTHON,
    base_env,
    installed,
    need,
    need_autogen,
    need_langchain,
    run_script,
)

IMAGE = re.compile(r"http://127\.0\.0\.1:\d+/cdn/[0-9a-f-]+/0\.png")

CASES = [
    ("openai_agents.py", "agents", "openai-agents"),
    ("pydantic_ai_agent.py", "pydantic_ai", "pydantic-ai"),
    ("fastmcp_client.py", "fastmcp", "fastmcp"),
    ("llama_index_agent.py", "llama_index.tools.mcp", "llama-index"),
    ("google_adk_agent.py", "google.adk", "google-adk"),
]


@pytest.mark.parametrize(("script", "module", "group"), CASES, ids=[c[2] for c in CASES])
def test_example_runs_without_a_key(script: str, module: str, group: str, tmp_path: Path) -> None:
    need(module, group)
    out = run_script(PYTHON, EXAMPLES / script, base_env(WIRO_STATE_DIR=str(tmp_path)))
    assert "server: the built-in emulator" in out
    assert IMAGE.search(out), out
    if "tools:" in out:
        assert f"tools: {', '.join(TOOL_NAMES)}" in out


def test_langgraph_example_runs_without_a_key(tmp_path: Path) -> None:
    python = need_langchain()
    out = run_script(python, LANGCHAIN / "langgraph_agent.py", base_env(WIRO_STATE_DIR=str(tmp_path)))
    assert "strict schemas: 6" in out
    [answer] = [line for line in out.splitlines() if line.startswith("answer:")]
    assert IMAGE.search(answer), out


def test_the_http_example_outlives_a_five_second_limit_with_one_task(tmp_path: Path) -> None:
    """Over streamable HTTP, a framework's 5 s limit drops the request: the task runs on and the
    retry gets it (the MCP SDK is all this example needs, so it runs on a plain checkout too)."""
    out = run_script(PYTHON, EXAMPLES / "http_client.py", base_env(WIRO_STATE_DIR=str(tmp_path)))
    assert "the first call gave up after 5 s" in out, out
    assert "retry returned task" in out and "succeeded: True" in out
    assert "the same task as the first call" in out
    assert IMAGE.search(out), out
    assert "tasks started: 1" in out


def test_autogen_example_runs_without_a_key(tmp_path: Path) -> None:
    python = need_autogen()
    out = run_script(python, AUTOGEN / "autogen_agent.py", base_env(WIRO_STATE_DIR=str(tmp_path)))
    assert "server: the built-in emulator" in out
    assert f"tools: {', '.join(TOOL_NAMES)}" in out
    [answer] = [line for line in out.splitlines() if line.startswith("answer:")]
    assert "finished" in answer
    assert IMAGE.search(out), out


def test_examples_show_progress_in_order(tmp_path: Path) -> None:
    need("fastmcp", "fastmcp")
    out = run_script(PYTHON, EXAMPLES / "fastmcp_client.py", base_env(WIRO_STATE_DIR=str(tmp_path)))
    values = [float(v) for v in re.findall(r"^progress: ([\d.]+)/100", out, re.MULTILINE)]
    assert len(values) >= 3, out
    assert values == sorted(values)
    assert values[-1] == 100


def test_llama_index_reads_the_result_without_the_preview(tmp_path: Path) -> None:
    """LlamaIndex hands the model the whole result as text; without the preview it stays short."""
    need("llama_index.tools.mcp", "llama-index")
    out = run_script(PYTHON, EXAMPLES / "llama_index_agent.py", base_env(WIRO_STATE_DIR=str(tmp_path)))
    [chars] = re.findall(r"the model reads: (\d+) characters", out)
    assert int(chars) < 4000, out


def test_a_framework_whose_parent_package_is_missing_counts_as_not_installed() -> None:
    # find_spec("google.adk") imports "google" first and raises where there is none.
    assert not installed("wiro_no_such_parent.adk")
    assert not installed("json.no_such_child")
    assert installed("json.decoder")
