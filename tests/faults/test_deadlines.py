"""Row 3 (and 4): every call answers within its deadline, whatever the network does, and says why.

An answer trickled one byte at a time (httpx's time-out is per read, so it never fires) is cut
at the call's own deadline: WIRO_WAIT_TIMEOUT (or get_task's wait) + 8 s. A Detail failure
during a wait reaches the model as Wiro's own reason with the task id, never as an exception
group, and get_task falls back to the journal whenever Wiro fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from mcp.types import CallToolResult

from wiro_seedream_mcp.emulator import EmulatorServer, Timings

from ..conftest import connect, settings_for
from .conftest import text_of

pytestmark = pytest.mark.anyio

WAIT = 1.0
# The margin past the wait, shorter than the 8 s default so that these tests take seconds; the
# deadline tests that run with the default are in test_run_answers.py and test_fuzz.py.
MARGIN = 3.0
# The deadline, with room for a loaded machine: an answer later than this hung.
LATEST = WAIT + MARGIN + 2.0
SLOW = Timings(queue=3, prepare=0.1, generate=0.1, postprocess=0.1)


async def timed(coro: Awaitable[CallToolResult]) -> tuple[CallToolResult, float]:
    began = anyio.current_time()
    result = await coro
    return result, anyio.current_time() - began


async def test_a_trickling_detail_does_not_hold_generate_image(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(timings=SLOW)
    server.emulator.inject("/Task/Detail", "trickle", times=50, delay=1.0)
    async with connect(settings_for(server, wait_timeout=WAIT, socket=False, answer_margin=MARGIN)) as client:
        result, took = await timed(client.call_tool("generate_image", {"prompt": "stalled status"}))
    assert took < LATEST
    data = result.structured_content
    assert data["taskid"] in server.emulator.tasks
    assert "get_task" in data["next"]
    assert any("did not answer a status check in time" in w for w in data["warnings"])


async def test_a_trickling_image_becomes_a_warning_with_its_url(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(timings=Timings.instant())
    server.emulator.inject("/0.png", "trickle", times=5, delay=1.0)
    async with connect(settings_for(server, wait_timeout=WAIT, answer_margin=MARGIN)) as client:
        result, took = await timed(client.call_tool("generate_image", {"prompt": "stalled image"}))
    assert took < LATEST
    data = result.structured_content
    assert data["succeeded"] is True
    url = data["outputs"][0]["url"]
    assert any("time limit" in w and url in w for w in data["warnings"])


async def test_get_task_wait_answers_within_its_wait_plus_the_margin(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(timings=SLOW)
    async with connect(settings_for(server, wait_timeout=WAIT, socket=False, answer_margin=MARGIN)) as client:
        started = await client.call_tool("generate_image", {"prompt": "later", "wait": False})
        taskid = started.structured_content["taskid"]
        server.emulator.inject("/Task/Detail", "trickle", times=50, delay=1.0)
        result, took = await timed(client.call_tool("get_task", {"taskid": taskid, "wait": WAIT}))
    assert took < LATEST
    assert not result.is_error
    data = result.structured_content
    assert data["taskid"] == taskid
    # Wiro did not answer: the journal's record, saying so.
    assert any("could not be asked" in w for w in data["warnings"])


@pytest.mark.parametrize(
    ("fault", "options", "words"),
    [
        (
            "status",
            {
                "status": 401,
                "body": {"result": False, "errors": [{"code": 0, "message": "Signature is not valid"}]},
            },
            "Signature is not valid",
        ),
        ("503", {"times": 50}, "HTTP 503"),
        ("truncated", {"times": 50}, "not JSON"),
        ("wrong-types", {"times": 50}, "documented shape"),
        ("other-task", {"times": 50}, "not the task asked for"),
    ],
    ids=["401", "5xx-forever", "malformed", "wrong-types", "other-task"],
)
async def test_a_detail_failure_during_a_wait_names_wiros_reason_and_the_task(
    emulator_factory: Callable[..., EmulatorServer], fault: str, options: dict[str, Any], words: str
) -> None:
    server = emulator_factory(timings=SLOW)
    async with connect(settings_for(server, wait_timeout=5, socket=False, answer_margin=MARGIN)) as client:
        started = await client.call_tool("generate_image", {"prompt": "checked", "wait": False})
        taskid = started.structured_content["taskid"]
        server.emulator.inject("/Task/Detail", fault, **options)
        waited = await client.call_tool("get_task", {"taskid": taskid, "wait": 2})
        server.emulator.inject("/Task/Detail", fault, **options)
        generated = await client.call_tool("generate_image", {"prompt": "checked while waiting"})
    for result in (waited, generated):
        text = text_of(result)
        assert "TaskGroup" not in text and "sub-exception" not in text
        assert "Error executing tool" not in text
        assert words in text, text
    # get_task falls back to the journal, which has the task.
    assert waited.structured_content["taskid"] == taskid
    assert not waited.is_error
    # generate_image keeps the id of the task it started.
    assert generated.structured_content["taskid"] in server.emulator.tasks


@pytest.mark.parametrize("path", ["/Task/Kill", "/Task/Cancel"])
async def test_a_stop_that_wiro_never_answers_is_reported_in_time(
    emulator_factory: Callable[..., EmulatorServer], path: str
) -> None:
    running = Timings(queue=0, prepare=0, generate=60, postprocess=1)
    server = emulator_factory(timings=SLOW if path.endswith("Cancel") else running)
    async with connect(settings_for(server, answer_margin=MARGIN)) as client:
        started = await client.call_tool("generate_image", {"prompt": "x", "wait": False})
        taskid = started.structured_content["taskid"]
        server.emulator.inject(path, "trickle", times=50, delay=1.0)
        tool = "kill_task" if path.endswith("Kill") else "cancel_task"
        result, took = await timed(client.call_tool(tool, {"taskid": taskid}))
    assert took < MARGIN + 2
    assert result.is_error
    assert "may still run" in text_of(result)


async def test_retry_after_is_capped(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory(timings=SLOW)
    async with connect(settings_for(server, socket=False, answer_margin=MARGIN)) as client:
        started = await client.call_tool("generate_image", {"prompt": "x", "wait": False})
        taskid = started.structured_content["taskid"]
        server.emulator.inject("/Task/Detail", "429", times=1, retry_after="3600")
        result, took = await timed(client.call_tool("get_task", {"taskid": taskid}))
    assert took < MARGIN + 2
    assert result.structured_content["taskid"] == taskid
