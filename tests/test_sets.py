"""Several images from one generate_image call (``count``): tasks with consecutive (or random) seeds,
started under one budget hold and one confirmation, followed with one progress stream, answered
once; a retry attaches to the same set; faults and stops per task."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.types import ElicitRequestParams, ElicitResult, ImageContent, ResourceLink
from PIL import Image

from wiro_seedream_mcp.config import DEFAULT_PREVIEW_SIZE, PREVIEW_SIZE_RANGE, Settings
from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.media import preview

from .conftest import connect, settings_for
from .test_tools import text_of
from .waiting import until_async

pytestmark = pytest.mark.anyio

RUN = "/Run/bytedance/text-to-image-seedream-v3"
QUICK = Timings(queue=0.05, prepare=0.05, generate=0.4, postprocess=0.05)


def settings(server: EmulatorServer, tmp_path: Path, **changes: Any) -> Settings:
    return dataclasses.replace(settings_for(server), state_dir=tmp_path, **changes)


def run_seeds(server: EmulatorServer) -> list[int]:
    return [int(r.json()["seed"]) for r in server.emulator.requests if r.path.endswith(RUN)]


async def test_four_images_come_in_one_answer_that_names_each_seed(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=QUICK)
    steps: list[tuple[float, str]] = []

    async def noted(progress: float, total: float | None, message: str | None) -> None:
        steps.append((progress, message or ""))

    async with connect(settings(server, tmp_path)) as client:
        made = await client.call_tool(
            "generate_image", {"prompt": "a paper boat", "seed": 11, "count": 4}, progress_callback=noted
        )
    assert not made.is_error, text_of(made)
    assert run_seeds(server) == [11, 12, 13, 14]
    data = made.structured_content
    assert data is not None
    variations = data["variations"]
    assert [v["seed"] for v in variations] == [11, 12, 13, 14]
    assert all(v["succeeded"] and v["outputs"] for v in variations)
    assert len({v["taskid"] for v in variations}) == 4
    assert data["taskid"] == variations[0]["taskid"]
    assert data["variationscost"] == pytest.approx(sum(v["totalcost"] for v in variations))
    text = text_of(made)
    for number, seed in enumerate([11, 12, 13, 14], start=1):
        assert f"{number}. seed {seed}: task " in text
    assert "4 of 4 images made" in text
    # Every image's (smaller) preview and its link, and the whole answer well under a megabyte.
    previews = [block for block in made.content if isinstance(block, ImageContent)]
    links = [block for block in made.content if isinstance(block, ResourceLink)]
    assert len(previews) == 4 and len(links) == 4
    assert len(made.model_dump_json(by_alias=True, exclude_none=True)) < 1_000_000
    # One progress stream: always up, saying how many are done, ending with all four.
    values = [value for value, _ in steps]
    assert values == sorted(set(values)) and values[-1] == 100
    assert all(" of 4 done" in message for _, message in steps)
    assert steps[-1][1].startswith("4 of 4 done")


async def test_seed_0_draws_distinct_seeds_and_a_retry_attaches_to_the_same_set(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=QUICK)
    call = {"prompt": "a brass key", "seed": 0, "count": 3}
    async with connect(settings(server, tmp_path)) as client:
        first = await client.call_tool("generate_image", call)
        again = await client.call_tool("generate_image", call)
        other = await client.call_tool("generate_image", {**call, "new_task": True})
    seeds = [v["seed"] for v in first.structured_content["variations"]]
    assert len(set(seeds)) == 3 and 0 not in seeds
    assert run_seeds(server)[:3] == seeds
    # The same call again: that set, nothing paid twice.
    assert [v["taskid"] for v in again.structured_content["variations"]] == [
        v["taskid"] for v in first.structured_content["variations"]
    ]
    assert [v["seed"] for v in again.structured_content["variations"]] == seeds  # named as before
    assert "nothing was paid twice" in text_of(again)
    # new_task: another set, with new seeds.
    assert len(run_seeds(server)) == 6
    assert {v["taskid"] for v in other.structured_content["variations"]}.isdisjoint(
        v["taskid"] for v in first.structured_content["variations"]
    )


async def test_wait_false_returns_every_task_id(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=Timings(queue=0, prepare=0, generate=30, postprocess=1))
    async with connect(settings(server, tmp_path)) as client:
        started = await client.call_tool(
            "generate_image", {"prompt": "a slow tide", "count": 2, "wait": False}
        )
        listed = await client.call_tool("list_tasks", {})
    variations = started.structured_content["variations"]
    assert [v["seed"] for v in variations] == [1, 2]
    assert all(not v["done"] for v in variations)
    text = text_of(started)
    for v in variations:
        assert f'"{v["taskid"]}"' in text  # each named for get_task
    journaled = {t["taskid"] for t in listed.structured_content["tasks"]}
    assert journaled == {v["taskid"] for v in variations}
    assert server.emulator.count("/Task/Kill") == 0


async def test_the_budget_sees_the_whole_set_and_says_how_many_fit(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=QUICK)
    async with connect(settings(server, tmp_path, budget_usd=0.07)) as client:
        refused = await client.call_tool("generate_image", {"prompt": "a kite", "count": 4})
        fits = await client.call_tool("generate_image", {"prompt": "a kite", "count": 2})
    assert refused.is_error
    words = text_of(refused)
    assert "\n" not in words
    assert "these 4 tasks are estimated at $0.12 ($0.0300 each" in words, words
    assert "2 of them fit" in words and "ask for 2" in words
    assert not fits.is_error, text_of(fits)
    assert len(run_seeds(server)) == 2  # the refused set started nothing, not even part of it


async def test_the_per_task_limit_applies_to_each_task_of_a_set(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=QUICK)
    async with connect(settings(server, tmp_path, max_task_usd=0.05)) as client:
        made = await client.call_tool("generate_image", {"prompt": "four cheap ones", "count": 4})
    assert not made.is_error, text_of(made)  # $0.12 in all, $0.03 each: each is within the limit
    assert len(run_seeds(server)) == 4


async def test_one_question_with_the_total_before_a_set(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=QUICK)
    asked: list[str] = []

    async def person(context: object, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"start": True})

    async with connect(
        settings(server, tmp_path, confirm_above=0.0), "legacy", elicitation_callback=person
    ) as client:
        made = await client.call_tool("generate_image", {"prompt": "a teapot", "seed": 5, "count": 4})
        again = await client.call_tool("generate_image", {"prompt": "a teapot", "seed": 5, "count": 4})
    assert not made.is_error and not again.is_error, text_of(made)
    assert len(asked) == 1  # once for the set; the same call again starts nothing, so asks nothing
    assert "Start 4 paid Seedream tasks" in asked[0]
    assert "about $0.12 in all ($0.03 each" in asked[0]
    assert len(run_seeds(server)) == 4


async def test_a_run_refused_midway_starts_no_more_and_a_retry_starts_only_the_rest(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=QUICK, max_active=2)
    call = {"prompt": "three lamps", "seed": 21, "count": 3}
    async with connect(settings(server, tmp_path)) as client:
        partial = await client.call_tool("generate_image", call)
        assert run_seeds(server) == [21, 22, 23]  # the third was refused: the two running were enough
        server.emulator.max_active = None
        rest = await client.call_tool("generate_image", call)
    text = text_of(partial)
    assert text.startswith("A set of 3 images of one prompt (seeds 21, 22).")
    assert "Only 2 of the 3 tasks were started" in text
    assert "Concurrent task limit" in text
    assert [v["seed"] for v in partial.structured_content["variations"]] == [21, 22]
    assert all(v["succeeded"] for v in partial.structured_content["variations"])
    # The same call again: the two made are returned, the missing one started.
    assert run_seeds(server) == [21, 22, 23, 23]
    assert [v["seed"] for v in rest.structured_content["variations"]] == [21, 22, 23]
    assert all(v["succeeded"] for v in rest.structured_content["variations"])


async def test_a_task_that_fails_is_reported_beside_the_images_made(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=QUICK, fail_seeds=[32])
    async with connect(settings(server, tmp_path)) as client:
        made = await client.call_tool("generate_image", {"prompt": "marbles", "seed": 31, "count": 3})
    assert not made.is_error  # two images were made
    variations = made.structured_content["variations"]
    assert [v["succeeded"] for v in variations] == [True, False, True]
    assert variations[1]["error"]
    assert "2 of 3 images made" in text_of(made)
    assert "2. seed 32: task " in text_of(made) and "failed" in text_of(made)


@pytest.mark.parametrize("stop", [True, False], ids=["stop-on-cancel", "cancel-leaves-them"])
async def test_a_persons_stop_stops_every_task_of_the_set_and_any_other_end_none(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path, stop: bool
) -> None:
    server = emulator_factory(timings=Timings(queue=0, prepare=0, generate=60, postprocess=1))
    async with connect(settings(server, tmp_path, stop_on_cancel=stop), mode="legacy") as client:
        async with anyio.create_task_group() as group:

            async def call() -> None:
                await client.call_tool("generate_image", {"prompt": "stopped", "count": 3})

            group.start_soon(call)
            await until_async(
                lambda: (
                    sum(server.emulator.task_status(t) == "task_start" for t in list(server.emulator.tasks))
                    == 3
                )
            )
            group.cancel_scope.cancel()
        if stop:
            await until_async(lambda: server.emulator.count("/Task/Kill") == 3)
        with anyio.fail_after(15):  # every task journaled, whatever happened to the call
            while len((await client.call_tool("list_tasks", {})).structured_content["tasks"]) < 3:  # noqa: ASYNC110
                await anyio.sleep(0.05)
    stopped = {task.stopped for task in server.emulator.tasks.values()}
    assert stopped == ({"kill"} if stop else {None})
    assert len(run_seeds(server)) == 3


def running(server: EmulatorServer) -> int:
    return sum(server.emulator.task_status(t) == "task_start" for t in list(server.emulator.tasks))


async def test_estimate_cost_takes_a_count(emulator: EmulatorServer) -> None:
    async with connect(settings_for(emulator)) as client:
        estimated = await client.call_tool("estimate_cost", {"count": 4})
    data = estimated.structured_content
    assert data["count"] == 4
    assert data["totalusd"] == pytest.approx(4 * data["usd"])
    assert "4 images" in text_of(estimated)
    assert json.dumps(data)


def test_four_previews_of_the_hardest_picture_at_a_sets_size_stay_far_under_a_megabyte() -> None:
    """Random noise is what compresses worst; a set's previews are half the configured size."""
    noise = Image.frombytes("RGB", (1024, 1024), os.urandom(1024 * 1024 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG")
    single, _ = preview(out.getvalue(), DEFAULT_PREVIEW_SIZE)
    smaller, mime = preview(out.getvalue(), max(PREVIEW_SIZE_RANGE[0], DEFAULT_PREVIEW_SIZE // 2))
    assert mime == "image/jpeg"
    assert 4 * len(smaller) < 250_000 < 4 * len(single)  # four full-size ones would not be


async def test_a_wait_that_ends_before_the_images_counts_no_task_as_done(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=Timings(queue=0, prepare=0, generate=30, postprocess=1))
    steps: list[str] = []

    async def noted(progress: float, total: float | None, message: str | None) -> None:
        steps.append(message or "")

    async with connect(settings(server, tmp_path, wait_timeout=0.5)) as client:
        call = {"prompt": "not yet", "count": 2}
        pending = await client.call_tool("generate_image", call, progress_callback=noted)
    assert [v["done"] for v in pending.structured_content["variations"]] == [False, False]
    assert steps and all(step.startswith("0 of 2 done") for step in steps), steps


async def test_a_set_the_confirmation_found_is_not_looked_up_again(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=Timings(queue=0, prepare=0, generate=30, postprocess=1))
    call = {"prompt": "asked about once", "count": 2, "wait": False}
    async with connect(settings(server, tmp_path, confirm_above=1.0)) as client:  # $0.06 asks nothing
        first = await client.call_tool("generate_image", call)
        before = server.emulator.count("/Task/Detail")
        again = await client.call_tool("generate_image", call)
    assert [v["taskid"] for v in again.structured_content["variations"]] == [
        v["taskid"] for v in first.structured_content["variations"]
    ]
    assert server.emulator.count("/Task/Detail") - before == 2  # each running task once, not twice
    assert len(run_seeds(server)) == 2
