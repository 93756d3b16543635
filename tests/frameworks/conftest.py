"""What the framework tests share: skipping (or, in CI, failing) when a framework's dependency
group is not installed, and running an example script as a person would."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wiro_seedream_mcp.emulator import EmulatorServer

from ..conftest import API_KEY, API_SECRET
from ..nodetools import unavailable

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LANGCHAIN = EXAMPLES / "langchain"
LANGCHAIN_PYTHON = LANGCHAIN / ".venv" / "bin" / "python"
AUTOGEN = EXAMPLES / "autogen"
AUTOGEN_PYTHON = AUTOGEN / ".venv" / "bin" / "python"


def need(module: str, group: str) -> None:
    """Skip (fail in CI) unless ``module`` of the dependency group ``group`` is installed."""
    if not installed(module):
        unavailable(f"{module} not installed: `uv sync --group {group}` (CI installs every group)")


def installed(module: str) -> bool:
    """Whether ``module`` can be imported. ``find_spec("a.b")`` imports ``a`` first and raises when
    ``a`` itself is missing (``google.adk`` without ``google``), so each parent is looked up in turn."""
    parts = module.split(".")
    for end in range(1, len(parts) + 1):
        try:
            if importlib.util.find_spec(".".join(parts[:end])) is None:
                return False
        except ModuleNotFoundError:
            return False
    return True


def need_langchain() -> Path:
    """The Python of the langchain example's own environment (it needs the MCP SDK 1.x)."""
    if not LANGCHAIN_PYTHON.exists():
        unavailable("the langchain example's environment is missing: `uv sync --project examples/langchain`")
    return LANGCHAIN_PYTHON


def need_autogen() -> Path:
    """The Python of the autogen example's own environment (autogen-ext needs the MCP SDK 1.x)."""
    if not AUTOGEN_PYTHON.exists():
        unavailable("the autogen example's environment is missing: `uv sync --project examples/autogen`")
    return AUTOGEN_PYTHON


def run_script(python: Path | str, script: Path, env: dict[str, str], *args: str) -> str:
    """Run ``script`` to its end (at most two minutes); its output, or a failure showing it."""
    done = subprocess.run(
        [str(python), str(script), *args],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"{script.name} exited {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}")
    return done.stdout


def server_env(emulator: EmulatorServer, folder: Path, **extra: str) -> dict[str, str]:
    """What a framework's adapter starts the server with in these tests: the basics, the
    emulator's project for Wiro, and a journal and home of the test's own."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(folder),
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_API_BASE_URL": emulator.base_url,
        "WIRO_STATE_DIR": str(folder / "state"),
        **extra,
    }


def base_env(**extra: str) -> dict[str, str]:
    """The environment an example gets: this machine's basics, no Wiro key (so the emulator), a
    journal of the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIRO_API_")}
    env.pop("WIRO_OUTPUT_DIR", None)
    env |= extra
    return env


PYTHON = sys.executable
