"""Task updates on the 2026-07-28 wire: ``subscriptions/listen`` with the task's resource, for the
caller's own tasks only (a team's users share one key, so a task id alone proves nothing)."""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio
import pytest
from mcp.client.subscriptions import ResourceUpdated
from mcp.types import TextResourceContents

from wiro_seedream_mcp import subscriptions
from wiro_seedream_mcp.emulator import EmulatorServer, Timings

from .conftest import connect, settings_for
from .test_scoping import calling_as, team_token

pytestmark = pytest.mark.anyio


async def test_a_listener_hears_its_own_task_move_and_no_one_elses(
    emulator_factory: Callable[..., EmulatorServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subscriptions, "EVERY", 0.1)
    server = emulator_factory(timings=Timings(queue=0.2, prepare=0.1, generate=0.5, postprocess=0.1))
    team = settings_for(server)  # one key for the whole team; users are told apart by their token
    with calling_as(team_token("alice")):
        async with connect(team) as alice:
            started = await alice.call_tool("generate_image", {"prompt": "listened to", "wait": False})
            assert started.structured_content is not None
            uri = f"wiro://tasks/{started.structured_content['taskid']}"

            async def done() -> bool:
                read = await alice.read_resource(uri)
                [content] = read.contents
                assert isinstance(content, TextResourceContents)
                return bool(json.loads(content.text)["done"])

            with calling_as(team_token("bob")):
                async with connect(team) as bob, bob.listen(resource_subscriptions=[uri]) as theirs:
                    assert not theirs.honored.resource_subscriptions  # not bob's task: not honoured

            heard: list[str] = []
            async with alice.listen(resource_subscriptions=[uri]) as mine:
                assert mine.honored.resource_subscriptions == [uri]
                with anyio.fail_after(15):
                    async for event in mine:
                        assert isinstance(event, ResourceUpdated)
                        heard.append(event.uri)
                        if await done():
                            break
    assert heard and set(heard) == {uri}
    assert server.emulator.task_status(uri.rsplit("/", 1)[1]) == "task_postprocess_end"
