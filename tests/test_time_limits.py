"""A client's own time limit is not the person's wish to stop: the task keeps running, and the
retry that follows (same inputs) gets that task and its image instead of paying for another."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError
from pydantic import SecretStr

from wiro_seedream_mcp.cancels import is_time_limit
from wiro_seedream_mcp.config import ConfigError, Settings
from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.journal import FILE_NAME, Journal
from wiro_seedream_mcp.state import AppState
from wiro_seedream_mcp.tools.common import same_inputs
from wiro_seedream_mcp.wiro.seedream import RUN_PATH, SeedreamInputs

from .conftest import connect, settings_for, stdio_server
from .waiting import until_async

# Long enough to outlast a 1 s client limit, short enough for a test.
SLOW = Timings(queue=0, prepare=0, generate=3, postprocess=0.1)
FIVE_SECONDS_WORTH = {"prompt": "a lighthouse in a storm", "seed": 42}


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("timed out after 5.0s", True),  # the Python SDK's client
        ("McpError: MCP error -32001: Request timed out", True),  # the TypeScript SDK's client
        ("RequestTimeout", True),
        ("request timeout", True),
        ("caller cancelled", False),
        ("user pressed stop", False),
        ("", False),
        (None, False),
    ],
)
def test_time_limit_reasons(reason: str | None, expected: bool) -> None:
    assert is_time_limit(reason) is expected


def test_reuse_window_setting() -> None:
    assert Settings.from_env({}).reuse_window == 600
    assert Settings.from_env({"WIRO_REUSE_WINDOW": "off"}).reuse_window == 0
    assert Settings.from_env({"WIRO_REUSE_WINDOW": "90"}).reuse_window == 90
    for bad in ("-1", "soon", "1e9", "nan"):
        with pytest.raises(ConfigError, match="WIRO_REUSE_WINDOW must be 'off' or a number of seconds"):
            Settings.from_env({"WIRO_REUSE_WINDOW": bad})


@pytest.mark.child_process
@pytest.mark.anyio
async def test_a_client_time_limit_leaves_the_task_running_and_the_retry_gets_it(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=SLOW)
    async with Client(stdio_server(server, tmp_path), mode="legacy") as client:
        with pytest.raises(MCPError, match="timed out"):
            await client.call_tool("generate_image", FIVE_SECONDS_WORTH, read_timeout_seconds=1.0)
        [taskid] = server.emulator.tasks
        retry = await client.call_tool("generate_image", FIVE_SECONDS_WORTH, read_timeout_seconds=30)
    assert retry.is_error is False
    data = retry.structured_content
    assert isinstance(data, dict)
    assert data["taskid"] == taskid
    assert data["succeeded"] is True
    assert data["outputs"][0]["url"]
    text = retry.content[0].text  # type: ignore[union-attr]
    assert "this is that task, not a new one" in text
    assert server.emulator.count(RUN_PATH) == 1
    assert server.emulator.count("/Task/Kill") == 0
    assert server.emulator.count("/Task/Cancel") == 0
    assert server.emulator.tasks[taskid].stopped is None


@pytest.mark.child_process
@pytest.mark.anyio
async def test_a_new_server_process_also_reuses_the_task(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    """Some frameworks start the server anew for each call: the journal carries the task across."""
    server = emulator_factory(timings=SLOW)
    async with Client(stdio_server(server, tmp_path), mode="legacy") as client:
        with pytest.raises(MCPError, match="timed out"):
            await client.call_tool("generate_image", FIVE_SECONDS_WORTH, read_timeout_seconds=1.0)
    async with Client(stdio_server(server, tmp_path), mode="legacy") as client:
        retry = await client.call_tool("generate_image", FIVE_SECONDS_WORTH, read_timeout_seconds=30)
    [taskid] = server.emulator.tasks
    assert retry.structured_content["taskid"] == taskid
    assert retry.structured_content["succeeded"] is True
    assert server.emulator.count(RUN_PATH) == 1


# -- reuse, in memory ----------------------------------------------------------------------------


def _reusing(server: EmulatorServer, **changes: Any) -> Settings:
    return dataclasses.replace(settings_for(server), **changes)


async def _two_calls(settings: Settings, first: dict[str, Any], second: dict[str, Any]) -> list[Any]:
    async with connect(settings) as client:
        one = await client.call_tool("generate_image", first)
        two = await client.call_tool("generate_image", second)
    return [one.structured_content, two.structured_content]


@pytest.mark.anyio
async def test_same_inputs_return_the_finished_task(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory()
    before = datetime.now(UTC).replace(microsecond=0)
    one, two = await _two_calls(_reusing(server), FIVE_SECONDS_WORTH, FIVE_SECONDS_WORTH)
    assert one["taskid"] == two["taskid"]
    assert two["succeeded"] is True
    assert two["outputs"] == one["outputs"]
    assert server.emulator.count(RUN_PATH) == 1
    # A client that reads only structuredContent learns the task was returned again, from when.
    assert one["reused"] is None
    assert before <= datetime.fromisoformat(two["reused"]["startedat"]) <= datetime.now(UTC)
    assert 0 <= two["reused"]["secondsago"] <= 60


@pytest.mark.anyio
async def test_a_started_task_is_followed_by_the_retry(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(timings=Timings(queue=0, prepare=0, generate=0.5, postprocess=0.05))
    one, two = await _two_calls(_reusing(server), {**FIVE_SECONDS_WORTH, "wait": False}, FIVE_SECONDS_WORTH)
    assert one["done"] is False
    assert two["taskid"] == one["taskid"]
    assert two["succeeded"] is True
    assert server.emulator.count(RUN_PATH) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("second", "changes"),
    [
        ({**FIVE_SECONDS_WORTH, "new_task": True}, {}),
        ({**FIVE_SECONDS_WORTH, "seed": 43}, {}),
        ({**FIVE_SECONDS_WORTH, "size": "1280x720"}, {}),
        (FIVE_SECONDS_WORTH, {"reuse_window": 0.0}),
    ],
    ids=["new_task", "other-seed", "other-size", "window-off"],
)
async def test_a_new_task_when_asked_or_when_anything_differs(
    emulator_factory: Callable[..., EmulatorServer], second: dict[str, Any], changes: dict[str, Any]
) -> None:
    server = emulator_factory()
    one, two = await _two_calls(_reusing(server, **changes), FIVE_SECONDS_WORTH, second)
    assert one["taskid"] != two["taskid"]
    assert server.emulator.count(RUN_PATH) == 2


@pytest.mark.anyio
async def test_a_random_seed_always_starts_a_new_task(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory()
    random = {**FIVE_SECONDS_WORTH, "seed": 0}
    one, two = await _two_calls(_reusing(server), random, random)
    assert one["taskid"] != two["taskid"]
    assert server.emulator.count(RUN_PATH) == 2


@pytest.mark.anyio
async def test_a_stopped_task_is_not_reused(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory(timings=Timings(queue=60, prepare=1, generate=1, postprocess=1))
    async with connect(_reusing(server)) as client:
        first = await client.call_tool("generate_image", {**FIVE_SECONDS_WORTH, "wait": False})
        taskid = first.structured_content["taskid"]
        await client.call_tool("cancel_task", {"taskid": taskid})
        await until_async(lambda: server.emulator.task_status(taskid) == "task_cancel")
        second = await client.call_tool("generate_image", {**FIVE_SECONDS_WORTH, "wait": False})
    assert second.structured_content["taskid"] != taskid
    assert server.emulator.count(RUN_PATH) == 2


@pytest.mark.anyio
async def test_another_account_never_gets_the_task(tmp_path: Path) -> None:
    """Tasks are reused only on the key (and API) that started them, even on a shared journal."""
    ours = AppState(settings=Settings(api_key=SecretStr("key-one")), journal=Journal(tmp_path))
    theirs = AppState(settings=Settings(api_key=SecretStr("key-two")), journal=Journal(tmp_path))
    elsewhere = AppState(
        settings=Settings(api_key=SecretStr("key-one"), base_url="http://127.0.0.1:9"), journal=ours.journal
    )
    assert len({ours.owner, theirs.owner, elsewhere.owner}) == 3
    assert "key-one" not in ours.owner
    inputs = SeedreamInputs(prompt="shared journal", seed=7)
    await ours.journal.accepted("1001", "tok", inputs.to_wire(), ours.owner)
    try:
        assert (await same_inputs(ours, inputs)) is not None
        assert await same_inputs(theirs, inputs) is None
        assert await same_inputs(elsewhere, inputs) is None
    finally:
        ours.journal.close()
        theirs.journal.close()


@pytest.mark.anyio
async def test_a_journal_from_before_owners_gains_the_column(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / FILE_NAME) as old:
        old.executescript(
            "CREATE TABLE tasks (taskid TEXT PRIMARY KEY, token TEXT NOT NULL DEFAULT '', parameters "
            "TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL, updated REAL NOT NULL, status TEXT NOT "
            "NULL DEFAULT '', done INTEGER NOT NULL DEFAULT 0, succeeded INTEGER NOT NULL DEFAULT 0, "
            "outputs TEXT NOT NULL DEFAULT '[]', saved TEXT NOT NULL DEFAULT '{}', cost TEXT, error TEXT);"
            "INSERT INTO tasks (taskid, created, updated) VALUES ('77', 1, 1);"
        )
    old.close()
    journal = Journal(tmp_path)
    try:
        await journal.accepted("78", "tok", {"prompt": "p"}, "someone")
        assert [e.taskid for e in await journal.recent()] == ["78", "77"]
        assert [e.taskid for e in await journal.started_since(0, "someone")] == ["78"]
        assert journal.warnings() == []
    finally:
        journal.close()
