"""Spend limits the server enforces before any Run: per task, per day, across processes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import TextResourceContents

from wiro_seedream_mcp.budget import day_start
from wiro_seedream_mcp.config import ConfigError, Settings
from wiro_seedream_mcp.emulator import EmulatorServer, Project, Timings

from .conftest import connect, settings_for, stdio_server
from .test_tools import text_of

pytestmark = pytest.mark.anyio

RUN = "/Run/bytedance/text-to-image-seedream-v3"
SLOW = Timings(queue=0, prepare=0, generate=30, postprocess=1)


def limited(server: EmulatorServer, tmp_path: Path, **limits: Any) -> Settings:
    return dataclasses.replace(settings_for(server), state_dir=tmp_path, **limits)


async def test_the_budget_lets_one_task_through_and_refuses_the_next(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    async with connect(limited(emulator, tmp_path, budget_usd=0.05)) as client:
        first = await client.call_tool("generate_image", {"prompt": "one"})
        second = await client.call_tool("generate_image", {"prompt": "two"})
    assert first.structured_content["succeeded"] is True
    assert second.is_error is True
    refusal = text_of(second)
    assert "\n" not in refusal
    for words in (
        "WIRO_BUDGET_USD is $0.0500 a day",
        "$0.0300 spent today",
        "$0.0200 left",
        "this task is estimated at $0.0300",
        "nothing was started",
        "raise WIRO_BUDGET_USD",
    ):
        assert words in refusal, refusal
    assert emulator.emulator.count(RUN) == 1


async def test_a_running_task_holds_its_estimate(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=SLOW)
    async with connect(limited(server, tmp_path, budget_usd=0.05)) as client:
        running = await client.call_tool("generate_image", {"prompt": "one", "wait": False})
        refused = await client.call_tool("generate_image", {"prompt": "two", "wait": False})
    assert running.structured_content["done"] is False
    assert refused.is_error is True
    assert "$0.0300 held by 1 running or starting task(s)" in text_of(refused)
    assert server.emulator.count(RUN) == 1


async def test_a_failed_task_costs_nothing_and_a_refused_run_holds_nothing(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.emulator.inject(
        RUN,
        "status",
        status=200,
        body={"result": False, "errors": [{"code": 97, "message": "Insufficient balance."}]},
    )
    async with connect(limited(emulator, tmp_path, budget_usd=0.05)) as client:
        refused = await client.call_tool("generate_image", {"prompt": "refused by Wiro"})
        failed = await client.call_tool("generate_image", {"prompt": "[emulator:fail] no image"})
        made = await client.call_tool("generate_image", {"prompt": "still within the budget"})
    assert refused.is_error is True and "Insufficient balance." in text_of(refused)
    assert failed.structured_content["succeeded"] is False
    assert made.structured_content["succeeded"] is True, text_of(made)


async def test_one_task_above_the_per_task_limit_is_refused(emulator: EmulatorServer, tmp_path: Path) -> None:
    async with connect(limited(emulator, tmp_path, max_task_usd=0.01)) as client:
        refused = await client.call_tool("generate_image", {"prompt": "too dear"})
    assert refused.is_error is True
    assert "more than WIRO_MAX_TASK_USD ($0.0100)" in text_of(refused)
    assert emulator.emulator.count(RUN) == 0


async def test_without_a_known_price_a_budget_refuses_rather_than_guess(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(project=Project(prices=()))
    server.emulator.inject("/Tool/Detail", "503", times=100)
    async with connect(limited(server, tmp_path, budget_usd=5.0)) as client:
        refused = await client.call_tool("generate_image", {"prompt": "unknown price"})
    assert refused.is_error is True
    assert text_of(refused).startswith("WIRO_BUDGET_USD is set, but what this task would cost is not known")
    assert "unset WIRO_BUDGET_USD" in text_of(refused)
    assert server.emulator.count(RUN) == 0


async def test_without_a_known_price_the_per_task_limit_names_itself(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(project=Project(prices=()))
    server.emulator.inject("/Tool/Detail", "503", times=100)
    async with connect(limited(server, tmp_path, max_task_usd=1.0)) as client:
        refused = await client.call_tool("generate_image", {"prompt": "unknown price"})
    assert text_of(refused).startswith("WIRO_MAX_TASK_USD is set, but what this task would cost is not known")
    assert "unset WIRO_MAX_TASK_USD" in text_of(refused)
    assert server.emulator.count(RUN) == 0


@pytest.mark.child_process
async def test_two_processes_racing_for_the_last_task_start_exactly_one(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=SLOW)
    params = stdio_server(server, tmp_path, WIRO_BUDGET_USD="0.05", WIRO_LOG_LEVEL="WARNING")
    answers: list[Any] = []
    async with Client(params) as one, Client(params) as two:
        ready = [await one.list_tools(), await two.list_tools()]
        assert all(ready)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_call, one, "first", answers)
            tg.start_soon(_call, two, "second", answers)
    assert server.emulator.count(RUN) == 1
    assert sorted(a.is_error for a in answers) == [False, True]


async def _call(client: Client, prompt: str, answers: list[Any]) -> None:
    answers.append(await client.call_tool("generate_image", {"prompt": prompt, "wait": False}))


@pytest.mark.parametrize(("value", "parsed"), [("5", 5.0), ("$0.50", 0.5)])
def test_budget_settings_are_dollars(value: str, parsed: float) -> None:
    assert Settings.from_env({"WIRO_BUDGET_USD": value}).budget_usd == parsed


@pytest.mark.parametrize("value", ["0", "-1", "five", "nan"])
def test_a_budget_that_is_not_an_amount_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="WIRO_MAX_TASK_USD must be an amount of US dollars above 0"):
        Settings.from_env({"WIRO_MAX_TASK_USD": value})


def test_the_day_starts_at_local_midnight() -> None:
    start = day_start(1_780_000_000.0)
    assert start <= 1_780_000_000.0 < start + 86_400 + 3_600
    assert day_start(start) == start


async def test_the_spend_is_reported_in_the_listing_and_per_day(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    async with connect(limited(emulator, tmp_path, budget_usd=5.0)) as client:
        made = await client.call_tool("generate_image", {"prompt": "one"})
        await client.call_tool("generate_image", {"prompt": "[emulator:fail] costs nothing"})
        listed = await client.call_tool("list_tasks", {})
        [spend_json] = (await client.read_resource("wiro://spend")).contents
        [tasks_json] = (await client.read_resource("wiro://tasks")).contents
    cost = made.structured_content["totalcost"]
    assert listed.structured_content["spent_today"] == pytest.approx(cost)
    assert listed.structured_content["spent_this_month"] == pytest.approx(cost)
    assert f"${cost:.4g} today" in text_of(listed)
    assert isinstance(spend_json, TextResourceContents) and isinstance(tasks_json, TextResourceContents)
    spend = json.loads(spend_json.text)
    assert spend["today"] == pytest.approx(cost)
    assert spend["days"] == [{"day": spend["days"][0]["day"], "usd": pytest.approx(cost), "tasks": 2}]
    assert (spend["budget_usd"], spend["max_task_usd"], spend["confirm"]) == (5.0, None, "never")
    assert json.loads(tasks_json.text)["spent_today"] == pytest.approx(cost)
