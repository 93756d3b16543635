"""The stream events kept for resuming, in this process: per session, bounded, and in PostgreSQL
for replicas (kept in the process while the database does not answer)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import anyio
import pytest
from mcp.server.streamable_http import EventMessage
from mcp.types import JSONRPCNotification, JSONRPCResponse

from wiro_seedream_mcp.http.events import EventScope, SessionEvents, SharedEvents, event_scope
from wiro_seedream_mcp.journal import PostgresJournal

from ..postgres import fresh_database
from ..waiting import until_async

pytestmark = pytest.mark.anyio


def note(n: int) -> JSONRPCNotification:
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params={"progress": n})


def answer() -> JSONRPCResponse:
    return JSONRPCResponse(jsonrpc="2.0", id=2, result={})


async def replayed(store: SessionEvents | SharedEvents, after: str) -> tuple[object, list[EventMessage]]:
    sent: list[EventMessage] = []

    async def keep(message: EventMessage) -> None:
        sent.append(message)

    return await store.replay_events_after(after, keep), sent


async def test_another_sessions_event_id_replays_nothing_and_old_streams_are_forgotten() -> None:
    store = SessionEvents(most=5, grace=0.0)
    mine, theirs = EventScope("alice", "s1"), EventScope("alice", "s2")
    event_scope.set(mine)
    first = await store.store_event("stream", note(1))
    await store.store_event("stream", note(2))
    event_scope.set(theirs)
    assert await replayed(store, first) == (None, [])
    event_scope.set(mine)
    stream, sent = await replayed(store, first)
    assert stream == "stream" and [m.message.params for m in sent] == [{"progress": 2}]  # type: ignore[union-attr]
    await store.store_event("stream", answer())
    await store.store_event("other", note(3))  # a later store forgets the answered stream (grace 0)
    assert await replayed(store, first) == (None, [])
    for n in range(10):
        await store.store_event("other", note(n))
    assert len(store._events) == 5  # at most ``most``, the oldest dropped


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_without_the_database_the_events_are_kept_in_the_process(tmp_path: Path) -> None:
    journal = PostgresJournal(f"postgresql://nobody@127.0.0.1:{closed_port()}/none", spool=tmp_path)
    store = SharedEvents(journal.events)
    event_scope.set(EventScope("alice", "s1"))
    first = await store.store_event("stream", note(1))
    await store.store_event("stream", note(2))
    assert ":" not in first  # an id of this process's
    stream, sent = await replayed(store, first)
    assert stream == "stream" and len(sent) == 1
    await journal.aclose()


async def test_in_postgresql_events_are_the_sessions_own_and_answered_streams_are_forgotten(
    tmp_path: Path,
) -> None:
    async with fresh_database() as url:
        journal = PostgresJournal(url, spool=tmp_path)
        store = SharedEvents(journal.events, grace=0.0)
        mine = EventScope("alice", "s1")
        event_scope.set(mine)
        first = await store.store_event("stream", note(1))
        await store.store_event("stream", note(2))
        assert ":" in first
        for stranger in (EventScope("bob", "s1"), EventScope("alice", "s2")):
            event_scope.set(stranger)
            assert await replayed(store, first) == (None, [])
        event_scope.set(mine)
        stream, sent = await replayed(store, first)
        assert stream == "stream" and len(sent) == 1
        await store.store_event("stream", answer())
        await journal.events.forget(time.time(), 0.0, 20_000)
        assert await replayed(store, first) == (None, [])
        for n in range(6):
            await store.store_event("other", note(n))
        await journal.events.forget(0.0, 0.0, 3)
        rows = await journal.run(lambda conn: conn.fetchval("SELECT COUNT(*) FROM events"))
        assert rows == 3
        await journal.aclose()


async def test_a_resumed_stream_waits_for_the_next_event_another_replica_stores(tmp_path: Path) -> None:
    """The replica resuming a stream is told of each new event by NOTIFY, not by looking again."""
    async with fresh_database() as url:
        here, there = (
            PostgresJournal(url, spool=tmp_path / "here"),
            PostgresJournal(url, spool=tmp_path / "there"),
        )
        told = anyio.Event()

        async def wait() -> None:
            await here.events.wait("token", "stream", 600)  # far longer than the test may take
            told.set()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(wait)
                await until_async(lambda: here.events._listener is not None)
                await there.events.put("token", "s1", "alice", "stream", "{}", False, time.time())
                with anyio.fail_after(10):
                    await told.wait()
        finally:
            await here.aclose()
            await there.aclose()
