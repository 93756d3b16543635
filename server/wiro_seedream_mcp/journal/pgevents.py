"""Stream events in PostgreSQL, for replicas (see :mod:`..http.events`): every event a replica sends
on a session's stream is a row, and a ``NOTIFY`` on :data:`CHANNEL` names its stream, so a
replica that resumes the stream for a client (whose connection came back elsewhere) sends what
was kept, then each new event as the replica still serving the call stores it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

import anyio

if TYPE_CHECKING:
    import asyncpg

_T = TypeVar("_T")


class Database(Protocol):
    """What the events need of the journal (:class:`.postgres.PostgresJournal`)."""

    url: str

    async def run(self, work: Callable[[asyncpg.Connection], Awaitable[_T]]) -> _T: ...


log = logging.getLogger(__name__)

CHANNEL = "wiro_events"
PUT = """
WITH put AS (
    INSERT INTO events (scope, session, owner, stream, message, final, at)
    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
)
SELECT id, pg_notify('wiro_events', $1 || ' ' || $4) FROM put
"""
AT = "SELECT scope, session, owner, stream FROM events WHERE id = $1"
AFTER = "SELECT id, message, final FROM events WHERE scope = $1 AND stream = $2 AND id > $3 ORDER BY id"
# A stream is forgotten a while after its answer, anything after a longer while, and past the
# most kept, the oldest first.
FORGET = """
DELETE FROM events e WHERE e.at < $2 OR e.id <= (SELECT MAX(id) FROM events) - $3 OR EXISTS (
    SELECT 1 FROM events f
    WHERE f.final AND f.at < $1 AND f.scope = e.scope AND f.stream = e.stream
)
"""


class Located(NamedTuple):
    scope: str
    session: str
    owner: str
    stream: str


class PgEvents:
    def __init__(self, journal: Database) -> None:
        self.journal = journal
        self._listener: asyncpg.Connection | None = None
        self._opening: anyio.Lock | None = None
        self._waiting: dict[str, set[anyio.Event]] = {}

    async def put(
        self, scope: str, session: str, owner: str, stream: str, message: str | None, final: bool, at: float
    ) -> int:
        async def put(conn: asyncpg.Connection) -> int:
            row: int = await conn.fetchval(PUT, scope, session, owner, stream, message, final, at)
            return row

        return await self.journal.run(put)

    async def at(self, event: int) -> Located | None:
        row = await self.journal.run(lambda conn: conn.fetchrow(AT, event))
        return Located(*row) if row is not None else None

    async def after(self, scope: str, stream: str, event: int) -> list[tuple[int, str | None, bool]]:
        rows = await self.journal.run(lambda conn: conn.fetch(AFTER, scope, stream, event))
        return [(int(row["id"]), row["message"], bool(row["final"])) for row in rows]

    async def forget(self, ended_before: float, before: float, most: int) -> None:
        await self.journal.run(lambda conn: conn.execute(FORGET, ended_before, before, most))

    async def wait(self, scope: str, stream: str, seconds: float) -> None:
        """Until a new event of the stream is announced, or ``seconds`` passed (a missed
        announcement, or a listener that could not be opened, costs at most that)."""
        key = f"{scope} {stream}"
        told = anyio.Event()
        self._waiting.setdefault(key, set()).add(told)
        try:
            await self._listen()
            with anyio.move_on_after(seconds):
                await told.wait()
        except Exception as exc:  # no listener: the caller looks again after the while
            log.debug("stream events: no listener (%s)", exc)
            await anyio.sleep(seconds)
        finally:
            waiting = self._waiting.get(key)
            if waiting is not None:
                waiting.discard(told)
                if not waiting:
                    del self._waiting[key]

    def _announced(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for told in self._waiting.get(payload, ()):
            told.set()

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        if self._opening is None:
            self._opening = anyio.Lock()
        async with self._opening:
            if self._listener is None or self._listener.is_closed():
                import asyncpg

                conn = await asyncpg.connect(self.journal.url, timeout=10)
                await conn.add_listener(CHANNEL, self._announced)
                self._listener = conn

    async def aclose(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            await listener.close()
