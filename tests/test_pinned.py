"""Behaviours where a quiet bug costs money or data, each pinned by a test that fails when it breaks
(found unguarded by mutation runs)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from mcp.types import ImageContent, ResourceLink

from wiro_seedream_mcp.delivery import Delivery
from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.follow import TaskFollower
from wiro_seedream_mcp.journal import Journal
from wiro_seedream_mcp.results import task_result
from wiro_seedream_mcp.wiro.client import RetryPolicy
from wiro_seedream_mcp.wiro.errors import WiroConnectionError, WiroRunUnknownError
from wiro_seedream_mcp.wiro.models import Task, TaskStatus
from wiro_seedream_mcp.wiro.seedream import SeedreamInputs

from .conftest import connect, settings_for
from .mockwiro import mock_client
from .waiting import until_async

pytestmark = pytest.mark.anyio

RUNNING = Timings(queue=0, prepare=0, generate=60, postprocess=1)
QUEUED = Timings(queue=60, prepare=1, generate=1, postprocess=1)
TASK = {"id": "9", "socketaccesstoken": "t", "status": "task_start"}


# 1 -------------------------------------------------------------------------------------------


async def test_a_run_answer_lost_to_a_read_time_out_may_have_started_a_task() -> None:
    sent: list[str] = []

    def lost(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        raise httpx.ReadTimeout("no answer", request=request)

    with pytest.raises(WiroRunUnknownError):
        await mock_client(lost, []).run(SeedreamInputs(prompt="x"))
    assert len(sent) == 1, "a Run whose request was sent is never sent again"

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    # Never connected: nothing reached Wiro, so no task can exist (and it is not "unknown").
    with pytest.raises(WiroConnectionError) as caught:
        await mock_client(refused, []).run(SeedreamInputs(prompt="x"))
    assert not isinstance(caught.value, WiroRunUnknownError)


# 2 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["detail", "kill", "cancel"])
async def test_an_hour_long_retry_after_is_capped(call: str) -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"retry-after": "3600"}, text="slow down"),
            httpx.Response(200, json={"result": True, "errors": [], "tasklist": [TASK]}),
        ]
    )
    sleeps: list[float] = []
    client = mock_client(lambda request: next(answers), sleeps)
    task = await getattr(client, call)(taskid="9")
    assert task.id == "9"
    assert sleeps == [RetryPolicy().max_retry_after]
    assert RetryPolicy().max_retry_after <= 20


# 3 -------------------------------------------------------------------------------------------


async def test_a_later_look_records_the_end_and_saves_once(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=Timings(queue=0.05, prepare=0.05, generate=0.2, postprocess=0.05))
    settings = dataclasses.replace(settings_for(server), output_dir=tmp_path / "images")
    async with connect(settings) as client:
        started = await client.call_tool("generate_image", {"prompt": "a heron", "wait": False})
        taskid = started.structured_content["taskid"]
        await until_async(lambda: server.emulator.task_status(taskid) == TaskStatus.POSTPROCESS_END)
        first = await client.call_tool("get_task", {"taskid": taskid})
        listed = await client.call_tool("list_tasks", {})
        again = await client.call_tool("get_task", {"taskid": taskid})
    assert first.structured_content["succeeded"] is True
    [row] = listed.structured_content["tasks"]
    assert (row["taskid"], row["status"], row["done"]) == (taskid, TaskStatus.POSTPROCESS_END, True)
    assert len(list((tmp_path / "images").iterdir())) == 1, "the second look saved a duplicate"
    assert again.structured_content["outputs"] == first.structured_content["outputs"]


# 4 -------------------------------------------------------------------------------------------


async def test_a_task_killed_elsewhere_while_waiting_is_not_a_success(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(timings=RUNNING)
    async with connect(settings_for(server)) as client, anyio.create_task_group() as tg:
        answers: list[Any] = []

        async def generate() -> None:
            answers.append(await client.call_tool("generate_image", {"prompt": "to be killed"}))

        tg.start_soon(generate)
        await until_async(
            lambda: any(
                server.emulator.task_status(t) == TaskStatus.START for t in list(server.emulator.tasks)
            )
        )
        [taskid] = server.emulator.tasks
        async with connect(settings_for(server)) as elsewhere:
            await elsewhere.call_tool("kill_task", {"taskid": taskid})
    [answer] = answers
    assert answer.is_error is True
    assert answer.structured_content["status"] == TaskStatus.CANCEL
    assert answer.structured_content["succeeded"] is False
    assert "cancelled before it produced an image" in answer.content[0].text


# 5 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("timings", "tool"), [(RUNNING, "kill_task"), (QUEUED, "cancel_task")])
async def test_the_journal_records_a_stopped_task(
    emulator_factory: Callable[..., EmulatorServer], timings: Timings, tool: str
) -> None:
    server = emulator_factory(timings=timings)
    async with connect(settings_for(server)) as client:
        started = await client.call_tool("generate_image", {"prompt": "to stop", "wait": False})
        taskid = started.structured_content["taskid"]
        if timings is RUNNING:
            await until_async(lambda: server.emulator.task_status(taskid) == TaskStatus.START)
        await client.call_tool(tool, {"taskid": taskid})
        listed = await client.call_tool("list_tasks", {})
    [row] = listed.structured_content["tasks"]
    assert (row["status"], row["done"]) == (TaskStatus.CANCEL, True)


# 6 -------------------------------------------------------------------------------------------


async def test_a_failed_task_read_back_from_the_journal_is_still_failed() -> None:
    journal = Journal(None)
    failed = Task.model_validate(
        {
            "id": "31",
            "socketaccesstoken": "t",
            "status": "task_postprocess_end",
            "pexit": "1",
            "debugerror": "boom",
        }
    )
    await journal.accepted("31", "t", {"prompt": "x"})
    await journal.update(failed)
    entry = await journal.get("31")
    assert entry is not None
    back = entry.as_task()
    assert back.failed is True
    assert back.succeeded is False
    assert "boom" in back.failure_reason()


async def test_get_task_falls_back_to_a_failed_record_as_failed(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory()
    async with connect(settings_for(server)) as client:
        made = await client.call_tool("generate_image", {"prompt": "fails [emulator:fail]"})
        taskid = made.structured_content["taskid"]
        server.emulator.inject("/Task/Detail", "503", times=10)
        looked = await client.call_tool("get_task", {"taskid": taskid})
    data = looked.structured_content
    assert data["taskid"] == taskid
    assert data["succeeded"] is False
    assert data["error"]
    assert looked.is_error is True


# 7 -------------------------------------------------------------------------------------------


async def test_a_stale_status_never_moves_progress_back() -> None:
    reported: list[float] = []

    async def progress(value: float, message: str) -> None:
        reported.append(value)

    follower = TaskFollower(mock_client(lambda r: httpx.Response(500), []), "9", on_progress=progress)
    for status in (TaskStatus.START, TaskStatus.QUEUE, TaskStatus.ACCEPT, TaskStatus.END, TaskStatus.START):
        await follower.note(status)
    assert follower.status == TaskStatus.END
    assert reported == sorted(reported)
    assert len(reported) == 2  # task_start, then task_end; the stale ones said nothing


# 8 -------------------------------------------------------------------------------------------


async def test_a_failed_task_with_outputs_is_neither_saved_nor_previewed(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    settings = dataclasses.replace(settings_for(emulator), output_dir=tmp_path / "images")
    failed = Task.model_validate(
        {
            "id": "41",
            "socketaccesstoken": "t",
            "status": "task_postprocess_end",
            "pexit": "1",
            "debugerror": "the model crashed",
            "outputs": [
                {"name": "0.png", "contenttype": "image/png", "url": f"{emulator.origin}/cdn/x/0.png"}
            ],
        }
    )
    async with httpx.AsyncClient() as http:
        delivered = await Delivery(http, settings, Journal(None)).deliver(failed, None)
    assert delivered == {}
    assert not (tmp_path / "images").exists()
    assert [r for r in emulator.emulator.requests if "/cdn/" in r.path] == []
    result = task_result(failed, delivered=delivered)
    assert result.is_error is True
    assert not [b for b in result.content if isinstance(b, ImageContent)]
    assert all(not str(b.uri).startswith("file:") for b in result.content if isinstance(b, ResourceLink))
