"""A set of images from one call, from outside: ``serve --http`` in a child process, a real client,
the emulator refusing a Run midway and failing one task; each task paid once through all of it."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from wiro_seedream_mcp.emulator import EmulatorServer, Timings

from ..conftest import API_KEY, API_SECRET
from ..waiting import until_async
from .conftest import RUN, HttpServer, remote
from .test_remote import text_of

pytestmark = [pytest.mark.anyio, pytest.mark.child_process]


def seeds_run(emulator: EmulatorServer) -> list[int]:
    return [int(r.json()["seed"]) for r in emulator.emulator.requests if r.path.endswith(RUN)]


async def test_a_set_through_a_refused_run_a_failed_task_a_budget_and_no_wait(
    serve: Callable[..., HttpServer], http_emulator: Callable[..., EmulatorServer]
) -> None:
    timings = Timings(queue=0.05, prepare=0.05, generate=0.3, postprocess=0.05)
    emulator = http_emulator(timings, max_active=2, fail_seeds=[53])
    server = serve(emulator, WIRO_API_KEY=API_KEY, WIRO_API_SECRET=API_SECRET, WIRO_BUDGET_USD="0.15")
    call = {"prompt": "three lanterns", "seed": 51, "count": 3}
    async with remote(server.url) as client:
        partial = await client.call_tool("generate_image", call)
        assert "Only 2 of the 3 tasks were started" in text_of(partial)
        assert [v["seed"] for v in partial.structured_content["variations"]] == [51, 52]
        emulator.emulator.max_active = None
        # The same call again: the two made come back, the missing one is started (and fails).
        rest = await client.call_tool("generate_image", call)
        made = rest.structured_content["variations"]
        assert [(v["seed"], v["succeeded"]) for v in made] == [(51, True), (52, True), (53, False)]
        assert "2 of 3 images made" in text_of(rest)
        # $0.06 spent of $0.15: four more ($0.12) do not fit, three would; none is started.
        refused = await client.call_tool("generate_image", {"prompt": "four more", "count": 4})
        assert refused.is_error and "3 of them fit" in text_of(refused)
        started = await client.call_tool(
            "generate_image", {"prompt": "two, later", "count": 2, "wait": False}
        )
        ids = [v["taskid"] for v in started.structured_content["variations"]]
        assert len(set(ids)) == 2 and all(f'"{taskid}"' in text_of(started) for taskid in ids)
    assert seeds_run(emulator) == [51, 52, 53, 53, 1, 2]  # the first 53 was the Run refused
    assert sorted(int(task.inputs["seed"]) for task in emulator.emulator.tasks.values()) == [1, 2, 51, 52, 53]


@pytest.mark.parametrize("stop_on_cancel", ["on", "off"])
async def test_a_cancelled_set_over_http_follows_the_cancel_rule_for_every_task(
    serve: Callable[..., HttpServer], http_emulator: Callable[..., EmulatorServer], stop_on_cancel: str
) -> None:
    """A person's stop (a cancel, with WIRO_STOP_ON_CANCEL=on) stops every task of the set; any
    other end of the call leaves them all running, and the same call again returns them."""
    emulator = http_emulator(Timings(queue=0, prepare=0, generate=60, postprocess=1))
    server = serve(
        emulator, WIRO_API_KEY=API_KEY, WIRO_API_SECRET=API_SECRET, WIRO_STOP_ON_CANCEL=stop_on_cancel
    )
    call = {"prompt": "three to stop", "count": 3}
    async with remote(server.url, mode="legacy") as client:
        async with anyio.create_task_group() as group:
            group.start_soon(client.call_tool, "generate_image", call)
            await until_async(lambda: started(emulator) == 3)
            group.cancel_scope.cancel()
        if stop_on_cancel == "on":
            await until_async(lambda: emulator.emulator.count("/Task/Kill") == 3)
            assert {task.stopped for task in emulator.emulator.tasks.values()} == {"kill"}
            return
        await until_async(lambda: "keep running on Wiro" in server.logged())
        again = await client.call_tool("generate_image", {**call, "wait": False})
    assert {v["taskid"] for v in again.structured_content["variations"]} == set(emulator.emulator.tasks)
    assert emulator.emulator.count("/Task/Kill") == 0
    assert len(seeds_run(emulator)) == 3


def started(emulator: EmulatorServer) -> int:
    now = emulator.emulator.clock()
    return sum(task.status(now) == "task_start" for task in emulator.emulator.tasks.values())
