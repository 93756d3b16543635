"""The journal's interface, the same on both backends: SQLite (the embedded default) and PostgreSQL.

The PostgreSQL runs need a server (``WIRO_TEST_POSTGRES_URL``; CI starts a throwaway cluster);
without one they skip with one line. Two journal objects on one store stand for two processes.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest

from wiro_seedream_mcp.journal import (
    RESERVATION_TTL,
    Journal,
    JournalUnavailableError,
    PostgresJournal,
    TaskJournal,
)
from wiro_seedream_mcp.wiro.models import Task

from .postgres import CuttableLink, fresh_database

pytestmark = pytest.mark.anyio

Opener = Callable[[], TaskJournal]


@pytest.fixture(params=["sqlite", "postgres"])
async def journals(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens journals on one store, as separate processes would; all closed afterwards."""
    async with AsyncExitStack() as stack:
        opened: list[TaskJournal] = []
        if request.param == "sqlite":

            def opener() -> TaskJournal:
                opened.append(Journal(tmp_path))
                return opened[-1]
        else:
            url = await stack.enter_async_context(fresh_database())

            def opener() -> TaskJournal:
                opened.append(PostgresJournal(url))
                return opened[-1]

        try:
            yield opener
        finally:
            for journal in opened:
                await journal.aclose()


def finished(taskid: str, cost: str = "0.03", *, status: str = "task_postprocess_end") -> Task:
    return Task.model_validate(
        {
            "id": taskid,
            "socketaccesstoken": f"tok-{taskid}",
            "status": status,
            "pexit": "0",
            "outputs": [
                {"name": "0.png", "url": f"https://cdn1.wiro.ai/{taskid}/0.png", "contenttype": "image/png"}
            ],
            "totalcost": cost,
        }
    )


async def test_a_task_is_kept_from_acceptance_to_its_image(journals: Opener) -> None:
    journal = journals()
    await journal.accepted("101", "tok-101", {"prompt": "a fox", "size": "1024x1024"}, "alice", estimate=0.03)
    entry = await journal.get("101")
    assert entry is not None
    assert (entry.status, entry.done, entry.owner, entry.parameters["prompt"]) == (
        "task_queue",
        False,
        "alice",
        "a fox",
    )
    await journal.update(finished("101"))
    await journal.saved("101", "0.png", Path("/pictures/101-0.png"))
    again = await journals().get("101")  # another process sees it
    assert again is not None
    assert again.done and again.succeeded
    assert again.cost == "0.03"
    assert again.outputs[0]["url"].endswith("/101/0.png")
    assert again.saved == {"0.png": "/pictures/101-0.png"}
    assert again.parameters["prompt"] == "a fox"  # an update keeps the inputs
    by_token = await journal.by_token("tok-101")
    assert by_token is not None
    assert by_token.taskid == "101"
    assert journal.warnings() == []


async def test_reads_are_scoped_to_the_owner_when_asked(journals: Opener) -> None:
    journal = journals()
    for n, owner in enumerate(["alice", "bob", "alice"]):
        await journal.accepted(str(200 + n), f"tok-{n}", {"prompt": str(n)}, owner)
        await anyio.sleep(0.002)  # distinct creation times, newest last
    assert [e.taskid for e in await journal.recent(10)] == ["202", "201", "200"]
    assert [e.taskid for e in await journal.recent(10, "alice")] == ["202", "200"]
    assert [e.taskid for e in await journal.recent(10, "bob")] == ["201"]
    assert await journal.get("201", "alice") is None
    assert await journal.get("201", "bob") is not None
    assert await journal.by_token("tok-1", "alice") is None
    assert [e.taskid for e in await journal.started_since(0.0, "alice")] == ["202", "200"]
    assert await journal.started_since(time.time() + 60, "alice") == []


async def test_the_spend_counts_finished_costs_running_estimates_and_reservations(journals: Opener) -> None:
    journal = journals()
    since = time.time() - 60
    await journal.accepted("301", "t1", {}, "alice", estimate=0.03)
    await journal.update(finished("301", "0.05"))
    await journal.accepted("302", "t2", {}, "alice", estimate=0.04)  # still running
    await journal.accepted("303", "t3", {}, "bob", estimate=1.0)
    assert await journal.hold("r1", "alice", 0.02, budget=1.0, since=since) is None
    spend = await journal.spend("alice", since)
    assert spend.finished == pytest.approx(0.05)
    assert spend.held == pytest.approx(0.04 + 0.02)
    assert spend.running == 2
    await journal.release("r1")
    assert (await journal.spend("alice", since)).held == pytest.approx(0.04)
    costs = await journal.finished_costs("alice", since)
    assert [round(cost, 4) for _, cost in costs] == [0.05]


async def test_a_reservation_outlives_any_run_and_then_lapses(
    journals: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hold stands for a Run whose answer has not come back: a slow one, or one whose journal
    write is kept for later, still counts a minute on; one left behind by a crash stops counting."""
    journal = journals()
    began = time.time()
    assert await journal.hold("r1", "alice", 0.02, budget=1.0, since=began - 60) is None
    monkeypatch.setattr(time, "time", lambda: began + 60)
    assert (await journal.spend("alice", began - 60)).held == pytest.approx(0.02)
    monkeypatch.setattr(time, "time", lambda: began + RESERVATION_TTL + 5)
    assert (await journal.spend("alice", began - 60)).held == 0


async def test_a_hold_past_the_budget_is_refused_with_the_spend_that_refused_it(journals: Opener) -> None:
    journal = journals()
    since = time.time() - 60
    assert await journal.hold("a", "alice", 0.03, budget=0.05, since=since) is None
    refused = await journal.hold("b", "alice", 0.03, budget=0.05, since=since)
    assert refused is not None
    assert refused.held == pytest.approx(0.03)
    assert await journal.hold("c", "bob", 0.03, budget=0.05, since=since) is None  # budgets are per owner


async def test_many_processes_racing_for_the_last_dollars_hold_no_more_than_the_budget(
    journals: Opener,
) -> None:
    """Twenty holds from four journals at once: exactly as many fit as the budget allows."""
    opened = [journals() for _ in range(4)]
    since = time.time() - 60
    results: list[bool] = []

    async def hold(journal: TaskJournal) -> None:
        results.append(await journal.hold(uuid.uuid4().hex, "alice", 0.03, budget=0.10, since=since) is None)

    async with anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(hold, opened[n % 4])
    assert results.count(True) == 3
    assert (await opened[0].spend("alice", since)).held == pytest.approx(0.09)


async def test_call_slots_are_limited_per_owner_across_processes_and_given_back(journals: Opener) -> None:
    one, two = journals(), journals()
    taken: list[bool] = []

    async def take(journal: TaskJournal, slot: str) -> None:
        taken.append(await journal.take_slot(slot, "alice", limit=3, ttl=60))

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(take, one if n % 2 else two, f"s{n}")
    assert taken.count(True) == 3
    assert await two.take_slot("b1", "bob", limit=3, ttl=60) is True
    held = [f"s{n}" for n in range(8)]
    for slot in held:
        await one.free_slot(slot)
    assert await two.take_slot("again", "alice", limit=3, ttl=60) is True


async def test_an_expired_slot_no_longer_counts(journals: Opener) -> None:
    journal = journals()
    assert await journal.take_slot("old", "alice", limit=1, ttl=0.001) is True
    await anyio.sleep(0.01)
    assert await journal.take_slot("new", "alice", limit=1, ttl=60) is True
    assert await journal.take_slot("third", "alice", limit=1, ttl=60) is False


async def test_writes_the_database_misses_are_kept_on_disk_and_written_when_it_is_back(
    tmp_path: Path,
) -> None:
    """PostgreSQL gone between the budget's hold and Wiro's answer: the task's row, its owner, its
    estimate and its later records are kept in an owner-only file and written, in order, the
    moment the database answers; nothing ownerless is ever written, and the spend never counts
    less than was reserved."""
    async with fresh_database() as url:
        link = CuttableLink(url)
        journal = PostgresJournal(link.url(url), spool=tmp_path)
        try:
            since = time.time() - 60
            assert await journal.hold("r1", "alice", 0.03, 1.0, since) is None
            link.cut()
            await journal.accepted(
                "301", "tok-301", {"prompt": "kept"}, "alice", estimate=0.03, reservation="r1"
            )
            await journal.update(finished("301"))
            [kept] = list(tmp_path.glob("journal-spool-*.jsonl"))
            assert kept.stat().st_mode & 0o777 == 0o600
            assert [line.count('"op"') for line in kept.read_text().splitlines()] == [1, 1]
            said = " ".join(journal.warnings())
            assert "2 write(s) are kept on this server" in said
            with pytest.raises(JournalUnavailableError):
                await journal.recent(10, "alice")
            link.mend()
            [entry] = await journal.recent(10, "alice")  # the kept writes go first
            assert (entry.taskid, entry.owner, entry.done, entry.cost) == ("301", "alice", True, "0.03")
            assert entry.parameters["prompt"] == "kept"
            assert journal.warnings() == []
            assert not kept.exists()  # all written: nothing left behind
            spend = await journal.spend("alice", since)
            assert spend.finished == pytest.approx(0.03)
            assert spend.held == 0  # the reservation went with the task's row, in one transaction
            assert await PostgresJournal(url).recent(10, "") == []  # no ownerless row
        finally:
            await journal.aclose()
            link.close()


async def test_a_process_that_died_with_kept_writes_has_them_written_by_the_next(tmp_path: Path) -> None:
    async with fresh_database() as url:
        link = CuttableLink(url)
        first = PostgresJournal(link.url(url), spool=tmp_path)
        await first.ready()
        link.cut()
        await first.accepted("401", "tok-401", {"prompt": "orphan"}, "bob", estimate=0.03)
        assert len(first.spool) == 1
        # The process dies: its file stays, its lock goes with it.
        assert first.spool._fd is not None
        os.close(first.spool._fd)
        first.spool._fd = None
        link.close()
        second = PostgresJournal(url, spool=tmp_path)
        try:
            [entry] = await second.recent(10, "bob")
            assert (entry.taskid, entry.owner) == ("401", "bob")
            assert (await second.spend("bob", 0)).held == pytest.approx(0.03)  # its estimate counts
            assert list(tmp_path.glob("journal-spool-*.jsonl")) == []
        finally:
            await second.aclose()


async def test_an_update_never_makes_a_row_without_its_owner(journals: Opener) -> None:
    journal = journals()
    await journal.update(finished("501"))
    assert await journal.get("501") is None
    await journal.update(finished("501"), owner="carol")  # seen by whose task it is
    entry = await journal.get("501", "carol")
    assert entry is not None and entry.done
    await journal.update(finished("501", "0.05"), owner="dave")  # a later look keeps the owner
    assert (await journal.get("501", "carol")) is not None
    assert await journal.get("501", "dave") is None
