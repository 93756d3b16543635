"""Two replicas of ``serve --http`` behind a round-robin front behave as one server: each request may
reach either, and the journal they share (a SQLite file on one machine, or PostgreSQL) carries
tasks, budgets and reuse across them; shared request-state keys carry a confirmation."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientRequestContext
from mcp.types import ElicitRequestParams, ElicitResult

from wiro_seedream_mcp.emulator import EmulatorServer
from wiro_seedream_mcp.wiro.seedream import RUN_PATH

from ..postgres import CuttableLink, fresh_database
from ..waiting import until_async
from .conftest import OTHER_KEY, OTHER_SECRET, RUN, HttpServer, own_key, remote
from .front import RoundRobin
from .test_remote import text_of

pytestmark = [pytest.mark.anyio, pytest.mark.child_process]

Serve = Callable[..., HttpServer]


@pytest.fixture(params=["sqlite", "postgres"])
async def journal_env(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    """What the replicas share: the same SQLite folder, or one PostgreSQL database."""
    if request.param == "sqlite":
        yield {}
        return
    async with fresh_database() as url:
        yield {"WIRO_JOURNAL_URL": url}


@contextmanager
def replicas(serve: Serve, emulator: EmulatorServer, *args: str, **env: str) -> Iterator[RoundRobin]:
    first = serve(emulator, "--stateless", *args, WIRO_HTTP_AUTH="key", **env)
    second = serve(emulator, "--stateless", *args, WIRO_HTTP_AUTH="key", **env)
    with RoundRobin([first.origin, second.origin]) as front:
        yield front


class Yes:
    """A person who says yes to starting the task."""

    def __init__(self) -> None:
        self.asked = 0

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.asked += 1
        return ElicitResult(action="accept", content={"start": True})


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tasks_budgets_and_reuse_hold_across_replicas(
    serve: Serve, http_emulator: Callable[..., EmulatorServer], journal_env: dict[str, str], mode: str
) -> None:
    emulator = http_emulator()
    with replicas(serve, emulator, WIRO_BUDGET_USD="0.05", **journal_env) as front:
        url = f"{front.url}/mcp"
        async with remote(url, own_key(), mode=mode) as alice:
            made = await alice.call_tool("generate_image", {"prompt": "a lantern", "seed": 11})
            assert made.structured_content["succeeded"] is True, text_of(made)
            taskid = made.structured_content["taskid"]
            # The same inputs again, wherever the call lands: that task, not a second one.
            again = await alice.call_tool("generate_image", {"prompt": "a lantern", "seed": 11})
            assert again.structured_content["taskid"] == taskid
            listed = await alice.call_tool("list_tasks", {})
            assert [t["taskid"] for t in listed.structured_content["tasks"]] == [taskid]
            looked = await alice.call_tool("get_task", {"taskid": taskid})
            assert looked.structured_content["succeeded"] is True
            # $0.03 spent of $0.05: the next task is refused, whichever replica is asked.
            refused = await alice.call_tool("generate_image", {"prompt": "another lantern", "seed": 12})
            assert refused.is_error
            assert "WIRO_BUDGET_USD is $0.0500 a day" in text_of(refused)
        async with remote(url, own_key(OTHER_KEY, OTHER_SECRET), mode=mode) as bob:
            assert (await bob.call_tool("list_tasks", {})).structured_content["tasks"] == []
            assert (await bob.call_tool("get_task", {"taskid": taskid})).is_error
    assert emulator.emulator.count(RUN) == 1
    assert min(front.sent) > 0, front.sent  # both replicas answered


async def test_a_confirmation_crosses_replicas_with_shared_request_state_keys(
    serve: Serve, http_emulator: Callable[..., EmulatorServer], journal_env: dict[str, str]
) -> None:
    emulator = http_emulator()
    keys = secrets.token_urlsafe(32)
    with replicas(serve, emulator, WIRO_CONFIRM="always", WIRO_HTTP_STATE_KEYS=keys, **journal_env) as front:
        person = Yes()
        async with remote(f"{front.url}/mcp", own_key(), elicitation_callback=person) as alice:
            made = await alice.call_tool("generate_image", {"prompt": "a kite"})
    assert made.structured_content["succeeded"] is True, text_of(made)
    assert person.asked == 1
    assert emulator.emulator.count(RUN) == 1


async def test_without_shared_keys_a_confirmation_that_lands_elsewhere_starts_nothing(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    emulator = http_emulator()
    with replicas(serve, emulator, WIRO_CONFIRM="always") as front:
        person = Yes()
        async with remote(f"{front.url}/mcp", own_key(), elicitation_callback=person) as alice:
            outcome: Any
            try:
                outcome = await alice.call_tool("generate_image", {"prompt": "a kite"})
            except Exception as exc:  # the SDK refuses the answer's state: an error, either way
                outcome = exc
    assert isinstance(outcome, Exception) or outcome.is_error
    assert emulator.emulator.count(RUN) == 0


async def test_a_database_gone_while_wiro_runs_the_task_loses_neither_its_owner_nor_its_cost(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    """PostgreSQL drops every connection after the budget's hold and before Run answers: the call
    still answers, saying its journal writes are kept; once the database is back, the owner's
    list_tasks has the task, and the budget (two tasks' worth) counts it: the third is refused."""
    emulator = http_emulator()
    async with fresh_database() as url:
        link = CuttableLink(url)
        try:
            server = serve(
                emulator, WIRO_HTTP_AUTH="key", WIRO_JOURNAL_URL=link.url(url), WIRO_BUDGET_USD="0.06"
            )
            emulator.emulator.inject(RUN_PATH, "slow", delay=1.0)
            async with remote(server.url, own_key()) as alice, anyio.create_task_group() as tg:
                answers: list[Any] = []

                async def first() -> None:
                    answers.append(await alice.call_tool("generate_image", {"prompt": "one", "wait": False}))

                tg.start_soon(first)
                await until_async(lambda: len(emulator.emulator.tasks) == 1)  # Run took effect
                link.cut()
                await until_async(lambda: bool(answers))
            [made] = answers
            assert not made.is_error, text_of(made)
            [taskid] = emulator.emulator.tasks
            assert made.structured_content["taskid"] == taskid
            assert any("write(s) are kept on this server" in w for w in made.structured_content["warnings"])
            link.mend()
            async with remote(server.url, own_key()) as alice:
                listed = await alice.call_tool("list_tasks", {})
                assert [t["taskid"] for t in listed.structured_content["tasks"]] == [taskid], text_of(listed)
                second = await alice.call_tool("generate_image", {"prompt": "two", "wait": False})
                assert not second.is_error, text_of(second)
                third = await alice.call_tool("generate_image", {"prompt": "three", "wait": False})
                assert third.is_error
                assert "WIRO_BUDGET_USD" in text_of(third)
            async with remote(server.url, own_key(OTHER_KEY, OTHER_SECRET)) as bob:
                assert (await bob.call_tool("list_tasks", {})).structured_content["tasks"] == []
        finally:
            link.close()
    assert emulator.emulator.count(RUN) == 2
