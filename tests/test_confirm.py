"""WIRO_CONFIRM: the person says yes (through the client's elicitation) before a paid task starts."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.types import ElicitRequestParams, ElicitResult

from wiro_seedream_mcp.app import build_server
from wiro_seedream_mcp.config import ConfigError, Settings
from wiro_seedream_mcp.emulator import EmulatorServer

from .conftest import settings_for
from .test_tools import text_of

pytestmark = pytest.mark.anyio

RUN = "/Run/bytedance/text-to-image-seedream-v3"


class Person:
    """A client's elicitation callback: records each question and gives one answer."""

    def __init__(self, action: str, start: bool = True) -> None:
        self.action, self.start = action, start
        self.asked: list[ElicitRequestParams] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params)
        content = {"start": self.start} if self.action == "accept" else None
        return ElicitResult(action=self.action, content=content)


async def _generate(settings: Settings, mode: str, person: Person | None, **arguments: Any) -> Any:
    async with Client(build_server(settings), mode=mode, elicitation_callback=person) as client:
        return await client.call_tool("generate_image", {"prompt": "a lighthouse at dusk", **arguments})


def confirming(server: EmulatorServer, confirm: float | None) -> Settings:
    return dataclasses.replace(settings_for(server), confirm_above=confirm)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_person_accepts_and_gets_the_image(emulator: EmulatorServer, mode: str) -> None:
    person = Person("accept")
    made = await _generate(confirming(emulator, 0.0), mode, person)
    assert made.structured_content["succeeded"] is True, text_of(made)
    [question] = person.asked
    assert "Start a paid Seedream task?" in question.message
    assert "a lighthouse at dusk" in question.message and "size 1024x1024" in question.message
    assert "about $0.03 (Wiro's price: $0.03 per request)" in question.message
    assert emulator.emulator.count(RUN) == 1


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize(
    ("person", "words"),
    [
        (Person("decline"), "The person declined the confirmation"),
        (Person("cancel"), "The person cancelled the confirmation"),
        (Person("accept", start=False), "The person did not confirm the task"),
    ],
)
async def test_a_person_who_says_no_pays_nothing(
    emulator: EmulatorServer, mode: str, person: Person, words: str
) -> None:
    answer = await _generate(confirming(emulator, 0.0), mode, person)
    assert answer.is_error is True
    assert words in text_of(answer) and "not started and nothing was paid" in text_of(answer)
    assert emulator.emulator.count(RUN) == 0


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_client_that_cannot_ask_is_refused_with_the_setting_to_change(
    emulator: EmulatorServer, mode: str
) -> None:
    answer = await _generate(confirming(emulator, 0.0), mode, None)
    assert answer.is_error is True
    assert "this client cannot ask" in text_of(answer) and "Set WIRO_CONFIRM=never" in text_of(answer)
    assert emulator.emulator.count(RUN) == 0


@pytest.mark.parametrize(("threshold", "asked"), [(1.0, False), (0.01, True)])
async def test_an_amount_asks_only_above_it(emulator: EmulatorServer, threshold: float, asked: bool) -> None:
    person = Person("accept")
    made = await _generate(confirming(emulator, threshold), "auto", person)
    assert made.structured_content["succeeded"] is True
    assert bool(person.asked) is asked


async def test_never_asks_nobody(emulator: EmulatorServer) -> None:
    person = Person("decline")
    made = await _generate(confirming(emulator, None), "auto", person)
    assert made.structured_content["succeeded"] is True
    assert person.asked == []


async def test_invalid_input_is_refused_before_anyone_is_asked(emulator: EmulatorServer) -> None:
    person = Person("accept")
    answer = await _generate(confirming(emulator, 0.0), "auto", person, prompt="\u200b")
    assert answer.is_error is True
    assert person.asked == []
    assert emulator.emulator.count(RUN) == 0


@pytest.mark.parametrize(("value", "parsed"), [("never", None), ("always", 0.0), ("0.25", 0.25)])
def test_confirm_setting(value: str, parsed: float | None) -> None:
    assert Settings.from_env({"WIRO_CONFIRM": value}).confirm_above == parsed


def test_a_confirm_setting_that_is_not_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="WIRO_CONFIRM must be 'never', 'always' or an amount"):
        Settings.from_env({"WIRO_CONFIRM": "sometimes"})


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_task_stopped_elsewhere_is_not_returned_again_and_a_new_one_is_asked_for(
    emulator_factory: Any, mode: str, tmp_path: Any
) -> None:
    """Same inputs again would return the task already started; once it was stopped on Wiro's
    side (the journal does not know), a new paid task starts only after the person says yes."""
    from wiro_seedream_mcp.emulator import Timings

    server = emulator_factory(timings=Timings(queue=0, prepare=0, generate=60, postprocess=1))
    settings = dataclasses.replace(confirming(server, 0.0), state_dir=tmp_path)  # one journal for all
    person = Person("accept")
    first = await _generate(settings, mode, person, wait=False)
    looked = server.emulator.count("/Task/Detail")
    again = await _generate(settings, mode, None, wait=False)  # returned again: nothing to ask
    assert again.structured_content["taskid"] == first.structured_content["taskid"]
    # Wiro was asked once whether the task still runs (by the confirmation), not again by the tool.
    assert server.emulator.count("/Task/Detail") == looked + 1
    taskid = first.structured_content["taskid"]
    server.emulator.kill({"taskid": taskid}, server.base_url, server.emulator.project.api_key)
    # A client that cannot ask gets no new task at all.
    refused = await _generate(settings, mode, None, wait=False)
    assert refused.is_error and "WIRO_CONFIRM" in text_of(refused)
    assert server.emulator.count(RUN) == 1
    second = await _generate(settings, mode, person, wait=False)
    assert len(person.asked) == 2
    assert second.structured_content["taskid"] != taskid
    assert server.emulator.count(RUN) == 2
