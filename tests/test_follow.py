"""Following long tasks: progress, socket and polling, cancellation that reaches Wiro,
resumable waits, retries that never double-bill, many tasks at once."""

from __future__ import annotations

import dataclasses
import itertools
import os
import shlex
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from mcp import Client, StdioServerParameters
from pydantic import SecretStr

from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.follow import (
    POLL_SCHEDULE,
    TaskFollower,
    poll_intervals,
    stage,
    stop_task,
)
from wiro_seedream_mcp.wiro.client import RetryPolicy, WiroClient
from wiro_seedream_mcp.wiro.errors import WiroRunUnknownError
from wiro_seedream_mcp.wiro.models import TaskStatus
from wiro_seedream_mcp.wiro.seedream import RUN_PATH, SeedreamInputs
from wiro_seedream_mcp.wiro.signing import WiroAuth

from .conftest import API_KEY, API_SECRET, connect, settings_for
from .mockwiro import mock_client
from .rawstdio import RawServer
from .spawn import server_command
from .waiting import until, until_async

QUEUED = Timings(queue=60, prepare=1, generate=1, postprocess=1)
RUNNING = Timings(queue=0, prepare=0, generate=60, postprocess=1)
# Long enough for every stage to be seen, short enough for a test.
WALK = Timings(queue=0.05, prepare=0.05, generate=0.8, postprocess=0.05)


# -- the pieces ------------------------------------------------------------------------------


def test_poll_schedule_never_exceeds_one_call_a_second() -> None:
    intervals = list(itertools.islice(poll_intervals(), 200))
    assert all(step >= 1.0 for step in intervals)
    assert intervals[0] == 1.0
    assert intervals == sorted(intervals), "the schedule only slows down"
    assert intervals[-1] > intervals[0]
    elapsed = 0.0
    for count, step in enumerate(intervals, start=1):
        elapsed += step
        assert count <= elapsed
    assert POLL_SCHEDULE[0][1] <= 1.0


def test_stages_move_forward_through_the_lifecycle() -> None:
    values = [stage(status) for status in TaskStatus.LIFECYCLE]
    numbers = [v[0] for v in values if v is not None]
    assert numbers == sorted(numbers)
    assert numbers[-1] == 100
    assert stage(TaskStatus.OUTPUT, 40) == (46.0, "generating 40%")
    assert stage("task_unheard_of") is None


@pytest.mark.anyio
async def test_socket_task_error_frame_is_not_the_end() -> None:
    client = WiroClient(httpx.AsyncClient(), base_url="http://127.0.0.1:9/v1", auth=WiroAuth(SecretStr("k")))
    follower = TaskFollower(client, "1")
    assert await follower._on_frame({"type": "task_error", "message": "a log line on stderr"}) is True
    assert follower.status == TaskStatus.QUEUE
    assert await follower._on_frame({"type": "task_output", "message": {"percentage": "30"}}) is True
    assert follower.status == TaskStatus.OUTPUT
    assert await follower._on_frame({"type": "task_postprocess_end", "message": []}) is False


# -- progress ------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("socket", [True, False], ids=["socket", "polling"])
async def test_progress_in_order_with_a_token(
    emulator_factory: Callable[..., EmulatorServer], socket: bool
) -> None:
    server = emulator_factory(
        timings=WALK if socket else Timings(queue=1.2, prepare=0.5, generate=1.0, postprocess=0.1)
    )
    events: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        events.append((progress, total, message))

    async with connect(settings_for(server, socket=socket)) as client:
        result = await client.call_tool("generate_image", {"prompt": "fox"}, progress_callback=on_progress)
    assert not result.is_error
    values = [value for value, _, _ in events]
    assert values == sorted(values), "progress went backwards"
    assert len(set(values)) == len(values), "a stage was reported twice"
    assert all(total == 100 for _, total, _ in events)
    messages = [message for _, _, message in events]
    assert messages[0] == "queued"
    assert messages[-1] == "done"
    assert values[-1] == 100
    if socket:
        assert "starting" in messages
        assert "saving" in messages
        generating = [m for m in messages if m and m.startswith("generating ")]
        assert len(generating) >= 3, messages
        assert server.emulator.socket_sessions == 1
    else:
        assert server.emulator.socket_sessions == 0


@pytest.mark.child_process
def test_progress_only_with_a_token(emulator: EmulatorServer) -> None:
    """Raw JSON-RPC: a call without a progress token gets no progress notification at all."""
    env = {
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_API_BASE_URL": emulator.base_url,
    }
    server = RawServer(env)
    try:
        server.initialize()
        plain = server.send("tools/call", {"name": "generate_image", "arguments": {"prompt": "no token"}})
        assert server.response(plain)["result"]["isError"] is False
        assert server.notifications("notifications/progress") == []
        tokened = server.send(
            "tools/call",
            {"name": "generate_image", "arguments": {"prompt": "token"}, "_meta": {"progressToken": "tok-1"}},
        )
        assert server.response(tokened)["result"]["isError"] is False
    finally:
        server.close()
    progress = [n["params"] for n in server.notifications("notifications/progress")]
    assert progress, "no progress was sent for a call with a token"
    assert {p["progressToken"] for p in progress} == {"tok-1"}
    assert [p["progress"] for p in progress] == sorted(p["progress"] for p in progress)
    assert progress[-1]["message"] == "done"


# -- cancellation --------------------------------------------------------------------------


async def _cancel_midway(client: Client, server: EmulatorServer, status: str) -> None:
    async with anyio.create_task_group() as tg:

        async def call() -> None:
            await client.call_tool("generate_image", {"prompt": "to be stopped"})

        tg.start_soon(call)
        await until_async(
            lambda: any(server.emulator.task_status(t) == status for t in list(server.emulator.tasks))
        )
        tg.cancel_scope.cancel()


KEPT = "the task keeps running on Wiro and is journaled"
# Where a cancel finds the task, and the stop that would fit there.
STAGES = pytest.mark.parametrize(
    ("timings", "seen", "endpoint"),
    [(QUEUED, "task_queue", "/Task/Cancel"), (RUNNING, "task_start", "/Task/Kill")],
    ids=["queued-cancel", "running-kill"],
)


@pytest.mark.anyio
@STAGES
async def test_a_cancelled_call_leaves_its_paid_task_running_and_the_retry_attaches(
    emulator_factory: Callable[..., EmulatorServer],
    caplog: pytest.LogCaptureFixture,
    timings: Timings,
    seen: str,
    endpoint: str,
) -> None:
    """Only a person stops a paid task: a cancelled call (whatever its reason) leaves it running,
    and the same call again returns it instead of paying for another."""
    server = emulator_factory(timings=timings)
    async with connect(settings_for(server), mode="legacy") as client:
        await _cancel_midway(client, server, seen)
        await until_async(lambda: KEPT in caplog.text)
        [taskid] = server.emulator.tasks
        again = await client.call_tool("generate_image", {"prompt": "to be stopped", "wait": False})
    assert again.structured_content["taskid"] == taskid
    assert server.emulator.count(endpoint) == 0
    assert server.emulator.tasks[taskid].stopped is None
    assert server.emulator.count(RUN_PATH) == 1
    assert f"task {taskid}" in caplog.text and "get_task" in caplog.text


@pytest.mark.anyio
@STAGES
async def test_with_stop_on_cancel_a_cancelled_call_stops_the_task(
    emulator_factory: Callable[..., EmulatorServer], timings: Timings, seen: str, endpoint: str
) -> None:
    """WIRO_STOP_ON_CANCEL=on, for a host whose Stop button cancels the call."""
    server = emulator_factory(timings=timings)
    settings = dataclasses.replace(settings_for(server), stop_on_cancel=True)
    async with connect(settings, mode="legacy") as client:
        await _cancel_midway(client, server, seen)
        await until_async(lambda: server.emulator.count(endpoint) == 1)
    [taskid] = server.emulator.tasks
    assert server.emulator.task_status(taskid) == "task_cancel"
    assert server.emulator.count(RUN_PATH) == 1


@pytest.mark.child_process
@pytest.mark.anyio
@pytest.mark.parametrize("stop_on_cancel", ["off", "on"])
async def test_a_cancel_over_real_stdio_follows_the_setting(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Any, stop_on_cancel: str
) -> None:
    server = emulator_factory(timings=RUNNING)
    env = {
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_API_BASE_URL": server.base_url,
        "WIRO_STATE_DIR": os.environ["WIRO_STATE_DIR"],
        "WIRO_STOP_ON_CANCEL": stop_on_cancel,
    }
    log = tmp_path / "server.log"
    log.touch()
    # The server's stderr goes to a file the test reads.
    params = StdioServerParameters(
        command="/bin/sh", args=["-c", f'exec {shlex.join(server_command())} 2>>"{log}"'], env=env
    )
    async with Client(params, mode="legacy") as client:
        await _cancel_midway(client, server, "task_start")
        if stop_on_cancel == "on":
            await until_async(lambda: server.emulator.count("/Task/Kill") == 1)
        else:
            await until_async(lambda: KEPT in log.read_text())
    [taskid] = server.emulator.tasks
    if stop_on_cancel == "on":
        assert server.emulator.tasks[taskid].stopped == "kill"
    else:
        assert server.emulator.tasks[taskid].stopped is None
        assert server.emulator.count("/Task/Kill") == 0


@pytest.mark.anyio
@pytest.mark.parametrize("wait", [True, False])
async def test_a_call_cancelled_while_run_is_in_flight_keeps_the_task_it_started(
    emulator_factory: Callable[..., EmulatorServer], caplog: pytest.LogCaptureFixture, wait: bool
) -> None:
    """Wiro has made the task but its answer is still on the way when the call is cancelled:
    the answer is awaited anyway, and the task it names is journaled and left running."""
    server = emulator_factory(timings=QUEUED)
    server.emulator.inject(RUN_PATH, "slow", delay=1.0)
    async with connect(settings_for(server), mode="legacy") as client:
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                await client.call_tool("generate_image", {"prompt": "cancelled early", "wait": wait})

            tg.start_soon(call)
            await until_async(lambda: len(server.emulator.tasks) == 1)  # made, not yet answered
            tg.cancel_scope.cancel()
        [taskid] = server.emulator.tasks
        await until_async(lambda: f"task {taskid}" in caplog.text and KEPT in caplog.text)
        listed = await client.call_tool("list_tasks", {})
    assert taskid in str(listed.structured_content)
    assert server.emulator.count("/Task/Cancel") == 0
    assert server.emulator.count(RUN_PATH) == 1


@pytest.mark.child_process
@pytest.mark.parametrize("timings", [QUEUED, RUNNING], ids=["queued", "running"])
def test_closing_stdin_mid_wait_leaves_the_task_running_and_names_it(
    emulator_factory: Callable[..., EmulatorServer], timings: Timings
) -> None:
    server = emulator_factory(timings=timings)
    raw = RawServer(
        {"WIRO_API_KEY": API_KEY, "WIRO_API_SECRET": API_SECRET, "WIRO_API_BASE_URL": server.base_url}
    )
    raw.initialize()
    raw.send("tools/call", {"name": "generate_image", "arguments": {"prompt": "host quits"}})
    until(lambda: len(server.emulator.tasks) == 1)
    [taskid] = server.emulator.tasks
    until(lambda: server.emulator.socket_sessions == 1)
    code, stderr = raw.close()
    assert code == 0, stderr
    assert server.emulator.tasks[taskid].stopped is None
    assert server.emulator.count("/Task/Kill") + server.emulator.count("/Task/Cancel") == 0
    # The log says which task was left running, and how to pick it up.
    assert f"task {taskid}" in stderr and KEPT in stderr and "get_task" in stderr


# -- waits that never lose a task ----------------------------------------------------------


@pytest.mark.anyio
async def test_timed_out_wait_then_get_task_wait_returns_the_image(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    # Done 2.5 s after Run: far past the 0.2 s wait, even on a loaded machine.
    server = emulator_factory(timings=Timings(queue=2.0, prepare=0.1, generate=0.3, postprocess=0.1))
    async with connect(settings_for(server, wait_timeout=0.2)) as client:
        first = await client.call_tool("generate_image", {"prompt": "patience"})
        data = first.structured_content
        assert isinstance(data, dict)
        assert not first.is_error
        assert data["done"] is False
        assert data["taskid"] in server.emulator.tasks
        assert "wait=0.2" in data["next"]
        later = await client.call_tool("get_task", {"taskid": data["taskid"], "wait": 0.2 + 5})
    assert later.is_error  # the wait is bounded by the configured limit (0.2 s)
    async with connect(settings_for(server, wait_timeout=10)) as client:
        later = await client.call_tool("get_task", {"taskid": data["taskid"], "wait": 10})
    assert not later.is_error
    done = later.structured_content
    assert isinstance(done, dict)
    assert done["succeeded"] is True
    assert done["outputs"][0]["url"].endswith("/0.png")
    assert server.emulator.count(RUN_PATH) == 1


@pytest.mark.anyio
async def test_wait_false_returns_right_after_run(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory(timings=QUEUED)
    async with connect(settings_for(server)) as client:
        with anyio.fail_after(5):
            result = await client.call_tool("generate_image", {"prompt": "later", "wait": False})
    data = result.structured_content
    assert isinstance(data, dict)
    assert data["taskid"] in server.emulator.tasks
    assert data["socketaccesstoken"] == server.emulator.tasks[data["taskid"]].token
    assert data["done"] is False
    assert f'get_task with taskid "{data["taskid"]}"' in data["next"]
    # Run, and nothing after it (the model's price is read once before, for the estimate).
    assert [r.path for r in server.emulator.requests] == ["/v1/Tool/Detail", "/v1" + RUN_PATH]


@pytest.mark.anyio
async def test_without_the_socket_polling_finishes_the_job(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(socket=False)
    started = time.monotonic()
    async with connect(settings_for(server)) as client:
        result = await client.call_tool("generate_image", {"prompt": "no socket"})
    elapsed = time.monotonic() - started
    assert result.structured_content is not None
    assert result.structured_content["succeeded"] is True
    details = server.emulator.count("/Task/Detail")
    assert details <= elapsed + 1


# -- retries without double billing --------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["503", "502-after", "429"])
async def test_run_is_sent_once_whatever_fails(emulator: EmulatorServer, kind: str) -> None:
    emulator.emulator.inject(RUN_PATH, kind, times=5)
    async with connect(settings_for(emulator)) as client:
        result = await client.call_tool("generate_image", {"prompt": "billed once"})
    assert result.is_error
    assert emulator.emulator.count(RUN_PATH) == 1
    assert len(emulator.emulator.tasks) == (1 if kind == "502-after" else 0)
    text = result.content[0].text  # type: ignore[union-attr]
    assert "HTTP" in text
    # A lost answer may hide a started task: the person is told to look before trying again;
    # a 429 (too many requests, not processed) is a plain refusal.
    warned = "a paid task may have started all the same" in text
    assert warned is (kind in ("503", "502-after"))
    assert ("do not call generate_image again" in text) is warned


@pytest.mark.anyio
async def test_detail_kill_cancel_are_retried(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory(timings=QUEUED)
    async with connect(settings_for(server, wait_timeout=0)) as client:
        started = await client.call_tool("generate_image", {"prompt": "x", "wait": False})
        taskid = started.structured_content["taskid"]
        server.emulator.inject("/Task/Detail", "503", times=2)
        server.emulator.inject("/Task/Cancel", "429", times=1)
        looked = await client.call_tool("get_task", {"taskid": taskid})
        cancelled = await client.call_tool("cancel_task", {"taskid": taskid})
    assert not looked.is_error
    assert not cancelled.is_error
    assert server.emulator.count("/Task/Detail") == 3
    assert server.emulator.count("/Task/Cancel") == 2
    assert server.emulator.count(RUN_PATH) == 1


RUN_OK = {"result": True, "errors": [], "taskid": "9", "socketaccesstoken": "t"}


@pytest.mark.anyio
async def test_run_retried_only_when_the_connection_never_opened() -> None:
    calls: list[str] = []
    sleeps: list[float] = []

    def refuse_once(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=RUN_OK)

    receipt = await mock_client(refuse_once, sleeps).run(SeedreamInputs(prompt="x"))
    assert receipt.taskid == "9"
    assert len(calls) == 2
    assert len(sleeps) == 1

    calls.clear()

    def lose_answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ReadError("connection reset after the request was sent", request=request)

    with pytest.raises(WiroRunUnknownError):
        await mock_client(lose_answer, sleeps).run(SeedreamInputs(prompt="x"))
    assert len(calls) == 1


@pytest.mark.anyio
async def test_retry_after_is_honoured_and_retries_get_fresh_nonces() -> None:
    nonces: list[str] = []
    sleeps: list[float] = []

    def busy(request: httpx.Request) -> httpx.Response:
        nonces.append(request.headers["x-nonce"])
        if len(nonces) < 3:
            return httpx.Response(429, headers={"retry-after": "3"}, text="slow down")
        return httpx.Response(200, json={"result": True, "tasklist": [{"id": "9", "status": "task_queue"}]})

    task = await mock_client(busy, sleeps).detail(taskid="9")
    assert task.id == "9"
    assert sleeps == [3.0, 3.0]
    assert len(set(nonces)) == 3


@pytest.mark.anyio
async def test_backoff_is_bounded_and_gives_up() -> None:
    sleeps: list[float] = []
    client = mock_client(lambda request: httpx.Response(502, text="bad gateway"), sleeps)
    with pytest.raises(Exception, match="HTTP 502"):
        await client.detail(taskid="1")
    policy = RetryPolicy()
    assert len(sleeps) == policy.attempts - 1
    assert all(0 <= s <= policy.max_delay for s in sleeps)


@pytest.mark.anyio
async def test_stop_task_falls_back_when_the_task_moved_on(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(timings=QUEUED)
    async with httpx.AsyncClient() as http:
        client = WiroClient(
            http, base_url=server.base_url, auth=WiroAuth(SecretStr(API_KEY), SecretStr(API_SECRET))
        )
        receipt = await client.run(SeedreamInputs(prompt="x"))
        # We believe it runs, but it is still queued: Kill is refused, Cancel does it.
        task = await stop_task(client, receipt.taskid, TaskStatus.START)
    assert task is not None
    assert task.status == "task_cancel"
    assert server.emulator.count("/Task/Kill") == 1
    assert server.emulator.count("/Task/Cancel") == 1


# -- many at once --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_64_concurrent_generations_in_one_session(emulator: EmulatorServer) -> None:
    results: list[Any] = []
    async with connect(settings_for(emulator, wait_timeout=30)) as client:

        async def one(n: int) -> None:
            results.append(await client.call_tool("generate_image", {"prompt": f"fox number {n}", "seed": n}))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for n in range(64):
                    tg.start_soon(one, n)
    assert len(results) == 64
    assert all(not r.is_error and r.structured_content["succeeded"] for r in results)
    assert len({r.structured_content["taskid"] for r in results}) == 64
    records = [r for r in emulator.emulator.requests if r.path.startswith("/v1/")]
    nonces = [r.headers["x-nonce"] for r in records]
    assert len(nonces) == len(set(nonces))
    assert all(r.outcome == "ok" for r in records)
    assert emulator.emulator.count(RUN_PATH) == 64
