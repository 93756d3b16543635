"""A price before the task: Wiro's price list read and turned into an estimate, the journal's
average when Wiro cannot say, and the estimate in every generate_image answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from wiro_seedream_mcp.emulator import EmulatorServer, Project
from wiro_seedream_mcp.journal import Journal
from wiro_seedream_mcp.pricing import (
    FROM_JOURNAL,
    FROM_WIRO,
    RETRY_AFTER_FAILURE,
    TYPICAL_SECONDS,
    UNKNOWN,
    PriceBook,
    from_price_list,
)
from wiro_seedream_mcp.wiro.errors import WiroAuthError, WiroConnectionError
from wiro_seedream_mcp.wiro.models import Task, ToolRecord
from wiro_seedream_mcp.wiro.seedream import SeedreamInputs

from .conftest import connect, settings_for
from .test_tools import text_of

pytestmark = pytest.mark.anyio


def _tool(prices: list[dict[str, Any]] | str, **more: str) -> ToolRecord:
    raw = prices if isinstance(prices, str) else json.dumps(prices)
    return ToolRecord.model_validate({"dynamicprice": raw, **more})


@pytest.mark.parametrize(
    ("prices", "size", "usd", "words"),
    [
        ([{"price": 0.03, "priceMethod": "cpr"}], "1024x1024", 0.03, "$0.03 per request"),
        ([{"price": 0.04, "priceMethod": "cpo"}], "1024x1024", 0.04, "$0.04 per image"),
        (
            [{"price": 2e-8, "priceMethod": "cp-pixel"}],
            "1280x720",
            1280 * 720 * 2e-8,
            "$0.02 per million pixels",
        ),
        ([{"price": 0.002, "priceMethod": "cps"}], "1024x1024", 0.002 * TYPICAL_SECONDS, "$0.002 per second"),
        (
            [
                {"price": 0.03, "priceMethod": "cpr"},
                {"price": 0.05, "priceMethod": "cpr", "inputs": {"size": "1512x648"}},
            ],
            "1512x648",
            0.05,
            "$0.05 per request",
        ),
        (
            [
                {"price": 0.05, "priceMethod": "cpr", "inputs": {"size": "1512x648"}},
                {"price": 0.03, "priceMethod": "cpr"},
            ],
            "1024x1024",
            0.03,
            "$0.03 per request",
        ),
    ],
)
def test_the_price_list_gives_the_estimate(
    prices: list[dict[str, Any]], size: str, usd: float, words: str
) -> None:
    found = from_price_list(_tool(prices), SeedreamInputs(prompt="x", size=size))
    assert found is not None
    assert found.usd == pytest.approx(usd)
    assert found.source == FROM_WIRO
    assert words in found.basis


def test_without_a_price_list_wiros_own_estimate_then_its_per_second_price() -> None:
    inputs = SeedreamInputs(prompt="x")
    approx = from_price_list(_tool("", approximatelycost="0.031", cps="0.001"), inputs)
    assert (
        approx is not None and approx.usd == pytest.approx(0.031) and "about $0.031 per run" in approx.basis
    )
    per_second = from_price_list(_tool("not json", cps="0.001"), inputs)
    assert per_second is not None and per_second.usd == pytest.approx(0.001 * TYPICAL_SECONDS)
    assert from_price_list(_tool([{"priceMethod": "cpr"}, "junk"]), inputs) is None  # type: ignore[list-item]


async def test_the_price_is_read_once_and_a_failed_read_is_not_retried_at_once(tmp_path: Path) -> None:
    now = [0.0]
    answers: list[ToolRecord | Exception] = [
        WiroConnectionError("down", sent=False),
        _tool([{"price": 0.03, "priceMethod": "cpr"}]),
    ]
    calls: list[int] = []

    async def lookup() -> ToolRecord:
        calls.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    book = PriceBook(lookup, Journal(tmp_path), clock=lambda: now[0])
    inputs = SeedreamInputs(prompt="x")
    assert (await book.estimate(inputs, "me")).source == UNKNOWN
    assert (await book.estimate(inputs, "me")).source == UNKNOWN
    assert len(calls) == 1, "a failed lookup is retried only after a while"
    now[0] += RETRY_AFTER_FAILURE + 1
    assert (await book.estimate(inputs, "me")).usd == pytest.approx(0.03)
    assert (await book.estimate(inputs, "me")).usd == pytest.approx(0.03)
    assert len(calls) == 2, "a price read is kept"
    book.journal.close()


async def test_one_callers_refused_credentials_never_hide_the_price_from_the_next(tmp_path: Path) -> None:
    """The price is the model's, not the caller's: a lookup refused for one caller's made-up key
    is not remembered as "no price" for everyone (a budgeted server would refuse every task)."""
    answers: list[ToolRecord | Exception] = [
        WiroAuthError("Project authorization is not valid.", code=0),
        _tool([{"price": 0.03, "priceMethod": "cpr"}]),
    ]

    async def lookup() -> ToolRecord:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    book = PriceBook(lookup, Journal(tmp_path), clock=lambda: 0.0)
    inputs = SeedreamInputs(prompt="x")
    assert (await book.estimate(inputs, "stranger")).source == UNKNOWN
    assert (await book.estimate(inputs, "owner")).usd == pytest.approx(0.03)
    assert answers == []
    book.journal.close()


async def test_without_wiros_price_the_journal_average_of_this_keys_tasks(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    # A cost of 0 is one Wiro has not reported yet, not a free image: it is not averaged in.
    rows = (("1", "0.02", "me"), ("2", "0.04", "me"), ("3", "9", "someone-else"), ("5", "0", "me"))
    for taskid, cost, owner in rows:
        await journal.accepted(taskid, "t", {"prompt": "x"}, owner=owner)
        done = {"id": taskid, "status": "task_postprocess_end", "pexit": "0", "totalcost": cost}
        await journal.update(Task.model_validate(done))
    await journal.accepted("4", "t", {"prompt": "x"}, owner="me")  # still running: no cost yet
    found = await PriceBook(None, journal).estimate(SeedreamInputs(prompt="x"), "me")
    assert found.source == FROM_JOURNAL
    assert found.usd == pytest.approx(0.03)
    assert "last 2 finished task(s)" in found.basis
    journal.close()


async def test_estimate_cost_asks_wiro_and_starts_nothing(emulator: EmulatorServer) -> None:
    async with connect(settings_for(emulator)) as client:
        answer = await client.call_tool("estimate_cost", {"size": "1280x720"})
    assert answer.structured_content == {
        "usd": 0.03,
        "source": FROM_WIRO,
        "basis": "Wiro's price: $0.03 per request",
        "count": 1,
        "totalusd": 0.03,
    }
    assert "A 1280x720 image is expected to cost $0.03" in text_of(answer)
    assert emulator.emulator.tasks == {}
    assert emulator.emulator.count("/Tool/Detail") == 1


@pytest.mark.parametrize(
    "prices",
    [
        ({"price": 0.03, "priceMethod": "cpr"},),
        ({"price": 1.5e-8, "priceMethod": "cp-pixel"},),
        (
            {"price": 0.03, "priceMethod": "cpr"},
            {"price": 0.07, "priceMethod": "cpr", "inputs": {"size": "1152x864"}},
        ),
    ],
)
async def test_every_result_states_the_estimate_beside_the_real_cost(
    emulator_factory: Callable[..., EmulatorServer], prices: tuple[dict[str, Any], ...]
) -> None:
    server = emulator_factory(project=Project(prices=prices))
    async with connect(settings_for(server)) as client:
        started = await client.call_tool(
            "generate_image", {"prompt": "a fox", "size": "1152x864", "wait": False}
        )
        done = await client.call_tool(
            "generate_image", {"prompt": "a fox", "size": "1152x864", "new_task": True}
        )
    estimate = started.structured_content["estimate"]
    assert estimate["source"] == FROM_WIRO
    assert f"Estimated cost: ${estimate['usd']:.4g}" in text_of(started)
    data = done.structured_content
    assert data["succeeded"] is True
    # The emulator charges by the price list it publishes: the estimate is what was charged.
    assert data["estimate"]["usd"] == pytest.approx(data["totalcost"])
    assert f"(estimated ${data['estimate']['usd']:.4g})" in text_of(done)
    assert Decimal(str(data["totalcost"])) > 0
    assert server.emulator.count("/Tool/Detail") == 1, "the price is read once per process"


async def test_a_price_wiro_will_not_give_does_not_stop_the_image(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory()
    server.emulator.inject("/Tool/Detail", "503", times=100)
    async with connect(settings_for(server)) as client:
        made = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert made.structured_content["succeeded"] is True
    assert made.structured_content["estimate"]["source"] == UNKNOWN
    assert server.emulator.count("/Run/bytedance/text-to-image-seedream-v3") == 1
