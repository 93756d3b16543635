"""Shared fixtures: a live emulator on 127.0.0.1 and MCP clients connected to the server."""

# ruff: noqa: E402  (the collector is switched off before the imports)

from __future__ import annotations

import gc

# The imports below and the test modules' own define the MCP SDK's two thousand models: with the
# collector off while they are made and those objects frozen after (pytest_collection_finish),
# each worker starts sooner and no later collection walks them again (as the server does).
gc.disable()

import json
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from pydantic import SecretStr

from wiro_seedream_mcp.app import build_server
from wiro_seedream_mcp.config import ANSWER_MARGIN, Settings, default_socket_url
from wiro_seedream_mcp.emulator import EmulatorServer, Project, Timings, WiroEmulator

from .spawn import stdio_params

FIXTURES = Path(__file__).parent / "fixtures"

# The tools the server lists, in order.
TOOL_NAMES = ["generate_image", "get_task", "kill_task", "cancel_task", "list_tasks", "estimate_cost"]
API_KEY = "test-key-0123456789"
API_SECRET = "test-secret-abcdefghij"


def pytest_sessionstart(session: pytest.Session) -> None:
    if session.config.pluginmanager.hasplugin("dsession"):  # xdist's controller collects nothing
        gc.enable()


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.freeze()
    gc.enable()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: three times the cores, at least 6. Most tests wait (on emulated jobs, child processes,
    deadlines) rather than compute, so a 2-core machine runs 6 of them at once well."""
    return max(6, 3 * (os.cpu_count() or 1))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Servers started by a test keep their task journal here, not in the user's data folder: a
    journal of its own for each test, as a new user has (tasks of one test are not another's)."""
    folder = tmp_path_factory.mktemp("state")
    before = os.environ.get("WIRO_STATE_DIR")
    os.environ["WIRO_STATE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("WIRO_STATE_DIR", None)
    else:
        os.environ["WIRO_STATE_DIR"] = before


def page_example(name: str) -> dict[str, Any]:
    """A response example from the reference page, as the page prints it.

    The page lost the backslashes inside one string value (``"categories": "["tool",...]"``);
    that one spot is re-escaped before parsing, and nothing else is touched.
    """
    text = (FIXTURES / f"{name}.page.txt").read_text()
    repaired = re.sub(
        r'"categories": "(\[.*?\])"',
        lambda m: '"categories": ' + json.dumps(m.group(1)),
        text,
    )
    parsed: dict[str, Any] = json.loads(repaired)
    return parsed


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    """One live emulator on 127.0.0.1 for the whole run; each test gets a fresh project on it."""
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def emulator_factory(emulator_server: EmulatorServer) -> Callable[..., EmulatorServer]:
    """Give the live emulator a fresh project with the given timings and options."""

    def start(
        timings: Timings | None = None,
        project: Project | None = None,
        **options: Any,
    ) -> EmulatorServer:
        emulator_server.use(
            WiroEmulator(
                project or Project(api_key=API_KEY, api_secret=API_SECRET),
                timings or Timings.instant(),
                **options,
            )
        )
        return emulator_server

    return start


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    """A signature-project emulator with millisecond timings."""
    return emulator_factory()


def settings_for(
    server: EmulatorServer,
    *,
    wait_timeout: float = 10.0,
    secret: bool = True,
    socket: bool = True,
    answer_margin: float = ANSWER_MARGIN,
) -> Settings:
    return Settings(
        answer_margin=answer_margin,
        api_key=SecretStr(server.emulator.project.api_key),
        api_secret=SecretStr(server.emulator.project.api_secret or "") if secret else None,
        base_url=server.base_url,
        wait_timeout=wait_timeout,
        socket_url=default_socket_url(server.base_url) if socket else None,
    )


# What a host that renders MCP Apps advertises.
APPS_CLIENT = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})


@asynccontextmanager
async def connect(
    settings: Settings, mode: str = "auto", *, apps: bool = False, **options: Any
) -> AsyncIterator[Client]:
    """An MCP client session with the server, in memory; ``apps`` = one that renders MCP Apps."""
    extensions = [APPS_CLIENT] if apps else None
    async with Client(build_server(settings), mode=mode, extensions=extensions, **options) as client:
        yield client


def stdio_server(emulator: EmulatorServer, state_dir: Path, **env: str) -> StdioServerParameters:
    """The server as a host starts it over stdio (``python -m wiro_seedream_mcp``, or forked as
    ``tests/spawn.py`` says), on the emulator's project, with a journal of its own and no
    preview, plus ``env``."""
    environ = {
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_API_BASE_URL": emulator.base_url,
        "WIRO_STATE_DIR": str(state_dir),
        "WIRO_PREVIEW": "off",
        **env,
    }
    return stdio_params(environ, "serve")
