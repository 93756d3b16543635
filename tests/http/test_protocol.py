"""The protocol's optional parts from outside, with the SDK's own client over both transports (the
server in a child process): log lines at the level the client set, task updates by subscription
for a task no call follows, completions of the caller's task ids, and an unknown prompt's error."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    LoggingMessageNotificationParams,
    ResourceTemplateReference,
    ResourceUpdatedNotification,
    TextResourceContents,
)

from wiro_seedream_mcp.emulator import EmulatorServer, Timings

from ..conftest import API_KEY, API_SECRET, stdio_server
from ..waiting import until_async
from .conftest import HttpServer, remote

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.child_process,
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]


def more_than(heard: list[str], seen: int) -> bool:
    return len(heard) > seen


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_log_lines_task_updates_completions_and_prompt_errors_reach_a_real_client(
    transport: str,
    serve: Callable[..., HttpServer],
    http_emulator: Callable[..., EmulatorServer],
    tmp_path: Path,
) -> None:
    emulator = http_emulator(Timings(queue=0.2, prepare=0.1, generate=1.0, postprocess=0.1))
    lines: list[tuple[str, str]] = []
    heard: list[str] = []

    async def logged(params: LoggingMessageNotificationParams) -> None:
        lines.append((params.level, str(params.data)))

    async def on_message(message: object) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            heard.append(str(message.params.uri))

    options: dict[str, Any] = {"mode": "legacy", "logging_callback": logged, "message_handler": on_message}

    @asynccontextmanager
    async def client() -> AsyncIterator[Client]:
        if transport == "stdio":
            async with Client(stdio_server(emulator, tmp_path), **options) as session:
                yield session
        else:
            server = serve(emulator, WIRO_API_KEY=API_KEY, WIRO_API_SECRET=API_SECRET)
            async with remote(server.url, **options) as session:
                yield session

    async with client() as session:
        await session.set_logging_level("info")
        started = await session.call_tool("generate_image", {"prompt": "seen from outside", "wait": False})
        assert started.structured_content is not None
        taskid = started.structured_content["taskid"]
        uri = f"wiro://tasks/{taskid}"
        await session.subscribe_resource(uri)

        async def done() -> bool:
            read = await session.read_resource(uri)
            [content] = read.contents
            assert isinstance(content, TextResourceContents)
            return bool(json.loads(content.text)["done"])

        with anyio.fail_after(20):
            while True:
                seen = len(heard)  # before looking: an update that comes meanwhile is not missed
                if await done():
                    break
                await until_async(functools.partial(more_than, heard, seen))
        task = ResourceTemplateReference(uri="wiro://tasks/{taskid}")
        offered = await session.complete(task, {"name": "taskid", "value": taskid[:-1]})
        assert taskid in offered.completion.values
        with pytest.raises(MCPError) as raised:
            await session.get_prompt("no_such_prompt")
    assert raised.value.error.code == INVALID_PARAMS
    assert "no_such_prompt" in raised.value.error.message
    assert heard and set(heard) == {uri}
    said = [line for _, line in lines]
    assert f"task {taskid}: started (1024x1024)" in said
    assert all(level != "debug" for level, _ in lines)  # nothing under the level set
    assert API_KEY not in " ".join(said) and API_SECRET not in " ".join(said)
