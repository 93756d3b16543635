"""The task journal in PostgreSQL, for server processes on several machines (``WIRO_JOURNAL_URL``).

The same tables as the SQLite journal, made on first use (under an advisory lock, so replicas
starting together do not race to create them). A check and the write it allows (a budget
reservation, a call slot) run in one transaction that first takes a transaction-level advisory
lock on the owner: two replicas deciding for the same owner take turns, others do not wait.

The driver is asyncpg, imported on first use (install the ``postgres`` extra). As with SQLite, a
write that fails never fails a paid call: it is logged and named in every answer until a write
succeeds again; a read that fails raises :class:`JournalUnavailableError`.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import anyio
from pydantic import ValidationError

from ..records import JournalEntry, Spend, entry_of, updated_values
from ..wiro.models import Task
from .base import RESERVATION_TTL, JournalUnavailableError, TaskJournal
from .pgevents import PgEvents
from .pgsql import COSTS, NONCE_BLOCK, RESERVED, SCHEMA, SCHEMA_LOCK, SELECT, SPENT, apply
from .spool import Spool

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

_T = TypeVar("_T")


def _shown(url: str) -> str:
    """Where the database is, for the operator's log: no password, and no query string (which
    can carry one, ``?password=``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _secrets_of(url: str) -> list[str]:
    """The URL's password, wherever it is written, to keep out of every log line."""
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [value for name, value in parse_qsl(parts.query) if name.lower() == "password" and value]
    return found


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    return None


def _errors() -> tuple[type[BaseException], ...]:
    import asyncpg

    return (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


# How long /healthz waits for the database before it says the replica is not ready.
READY_DEADLINE = 2.0


class PostgresJournal(TaskJournal):
    advice = "The PostgreSQL database behind WIRO_JOURNAL_URL did not answer; try again shortly."

    def __init__(self, url: str, *, pool_size: int = 10, spool: Path | None = None) -> None:
        """``spool``: the folder where writes the database did not take are kept (:mod:`.spool`)."""
        self.url = url
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._opening: anyio.Lock | None = None
        self._flushing: anyio.Lock | None = None
        self.spool = Spool(spool)
        self.skipped_rows = 0
        self.events = PgEvents(self)

    def warnings(self) -> list[str]:
        found = super().warnings()
        if self.spool.pending:
            found.insert(
                0,
                f"the task journal {self.where} did not answer: {len(self.spool)} write(s) are kept on "
                "this server and written when it answers again; until then list_tasks may not show "
                "the newest tasks (keep the task ids from these answers)",
            )
        return found

    @property
    def where(self) -> str:
        # Callers are told there is a journal, never where: host, port, user and database are
        # the operator's, and in the log (:meth:`_log_problem`).
        return "(PostgreSQL)"

    def _log_problem(self, exc: BaseException) -> None:
        text = str(exc) or type(exc).__name__
        for secret in _secrets_of(self.url):
            text = text.replace(secret, "***")
        log.error("task journal %s: %s", _shown(self.url), text)

    async def _connect(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = anyio.Lock()
        async with self._opening:
            if self._pool is None:
                import asyncpg

                pool = await asyncpg.create_pool(
                    self.url,
                    min_size=1,
                    max_size=self.pool_size,
                    command_timeout=10,
                    timeout=10,
                    # Nothing is left on a connection between uses (advisory locks end with their
                    # transaction): no RESET round trip each time one goes back to the pool.
                    reset=_nothing_to_reset,
                )
                try:
                    async with pool.acquire() as conn:
                        await conn.execute(f"SELECT pg_advisory_lock({SCHEMA_LOCK})")
                        try:
                            await conn.execute(SCHEMA)
                        finally:
                            await conn.execute(f"SELECT pg_advisory_unlock({SCHEMA_LOCK})")
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
                self.spool.adopt()
            return self._pool

    async def run(self, work: Callable[[asyncpg.Connection], Awaitable[_T]]) -> _T:
        """``work``, one statement, on a connection of the pool: for what lives beside the journal
        in its database (:mod:`.pgevents`)."""
        return await self._run(work, alone=True)

    async def _run(
        self, work: Callable[[asyncpg.Connection], Awaitable[_T]], *, locked: str = "", alone: bool = False
    ) -> _T:
        """``work`` in one transaction; with ``locked``, under that owner's advisory lock. ``alone``:
        ``work`` is one statement, which is a transaction by itself (no BEGIN/COMMIT round trips)."""
        pool = await self._connect()
        async with pool.acquire() as conn:
            if alone:
                return await work(conn)
            async with conn.transaction():
                if locked:
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", locked)
                return await work(conn)

    async def _write(self, item: dict[str, Any]) -> None:
        """Write ``item`` (see :func:`apply`); when the database does not take it, keep it (and
        every write after it, in order) until it does."""
        if not self.spool.pending:
            try:
                await self._run(lambda conn: apply(conn, item), alone=True)
            except _errors() as exc:
                self._log_problem(exc)
            else:
                return
        self.spool.keep(item)  # after every write kept before it, and before any kept later
        await self.flush()

    async def flush(self) -> bool:
        """Write what was kept, in order, as far as the database takes it; True when nothing is left."""
        if not self.spool.pending:
            return True
        if self._flushing is None:
            self._flushing = anyio.Lock()
        async with self._flushing:
            return await self._flush_kept()

    async def _flush_kept(self) -> bool:
        while self.spool.pending:
            item = self.spool.pending[0]
            try:  # every write can be made twice (a cancel between the write and done()) alike
                await self._run(functools.partial(apply, item=item), alone=True)
            except _errors() as exc:
                self._log_problem(exc)
                return False
            self.spool.done()
        return True

    async def _checked(
        self, work: Callable[[asyncpg.Connection], Awaitable[_T]], *, locked: str = "", alone: bool = False
    ) -> _T:
        try:
            await self._connect()  # which takes over what a process that is gone kept
            # What was kept goes first: a read then sees it, and the spend counts it.
            await self.flush()
            return await self._run(work, locked=locked, alone=alone)
        except _errors() as exc:
            self._log_problem(exc)
            raise JournalUnavailableError(f"the task journal {self.where} is unavailable") from exc

    async def ready(self) -> bool:
        try:
            with anyio.fail_after(READY_DEADLINE):
                await self._checked(lambda conn: conn.fetchval("SELECT 1"))
        except (JournalUnavailableError, TimeoutError):
            return False
        return True

    # -- tasks ---------------------------------------------------------------------------

    async def accepted(
        self,
        taskid: str,
        token: str,
        parameters: dict[str, Any],
        owner: str = "",
        *,
        estimate: float | None = None,
        reservation: str | None = None,
    ) -> None:
        await self._write(
            {
                "op": "accepted",
                "values": [taskid, token, json.dumps(parameters), time.time(), owner, estimate],
                "reservation": reservation,
            }
        )

    async def update(self, task: Task, *, error: str | None = None, owner: str | None = None) -> None:
        await self._write(
            {"op": "update", "values": list(updated_values(task, error, time.time())), "owner": owner}
        )

    async def saved(self, taskid: str, name: str, path: Path) -> None:
        await self._write({"op": "saved", "values": [taskid, name, str(path), time.time()]})

    async def _select(self, where: str, *parameters: Any) -> list[JournalEntry]:
        async def read(conn: asyncpg.Connection) -> list[Any]:
            return list(await conn.fetch(f"{SELECT} {where}", *parameters))

        rows = await self._checked(read, alone=True)
        entries = []
        for row in rows:
            try:
                entries.append(entry_of(tuple(row)))
            except (ValueError, TypeError, ValidationError) as exc:
                self.skipped_rows += 1
                log.warning("task journal %s: skipped a row that cannot be read (%s)", self.where, exc)
        return entries

    async def _one(self, column: str, value: str, owner: str | None) -> JournalEntry | None:
        if owner is None:
            found = await self._select(f"WHERE {column} = $1 LIMIT 1", value)
        else:
            found = await self._select(f"WHERE {column} = $1 AND owner = $2 LIMIT 1", value, owner)
        return found[0] if found else None

    async def get(self, taskid: str, owner: str | None = None) -> JournalEntry | None:
        return await self._one("taskid", taskid, owner)

    async def by_token(self, token: str, owner: str | None = None) -> JournalEntry | None:
        return await self._one("token", token, owner)

    async def recent(self, limit: int = 20, owner: str | None = None) -> list[JournalEntry]:
        if owner is None:
            return await self._select("ORDER BY created DESC LIMIT $1", limit)
        return await self._select("WHERE owner = $1 ORDER BY created DESC LIMIT $2", owner, limit)

    async def started_since(self, when: float, owner: str, limit: int = 200) -> list[JournalEntry]:
        return await self._select(
            "WHERE created >= $1 AND owner = $2 ORDER BY created DESC LIMIT $3", when, owner, limit
        )

    # -- spend ---------------------------------------------------------------------------

    @staticmethod
    async def _spend(conn: asyncpg.Connection, owner: str, since: float) -> Spend:
        finished, running_cost, running = await conn.fetchrow(SPENT, owner, since)
        reserved, starting = await conn.fetchrow(RESERVED, owner, time.time() - RESERVATION_TTL)
        return Spend(
            finished=float(finished),
            held=float(running_cost) + float(reserved),
            running=int(running) + int(starting),
        )

    async def spend(self, owner: str, since: float) -> Spend:
        return await self._checked(lambda conn: self._spend(conn, owner, since))

    async def hold(
        self, reservation: str, owner: str, usd: float, budget: float, since: float
    ) -> Spend | None:
        async def check_and_hold(conn: asyncpg.Connection) -> Spend | None:
            now = time.time()
            await conn.execute("DELETE FROM reservations WHERE created < $1", now - RESERVATION_TTL)
            spend = await self._spend(conn, owner, since)
            if spend.finished + spend.held + usd > budget + 1e-9:
                return spend
            await conn.execute(
                "INSERT INTO reservations (id, owner, usd, created) VALUES ($1, $2, $3, $4)",
                reservation,
                owner,
                usd,
                now,
            )
            return None

        return await self._checked(check_and_hold, locked=f"spend:{owner}")

    async def release(self, reservation: str) -> None:
        await self._write({"op": "release", "values": [reservation]})

    async def finished_costs(self, owner: str, since: float) -> list[tuple[float, float]]:
        async def read(conn: asyncpg.Connection) -> list[Any]:
            return list(await conn.fetch(COSTS, owner, since))

        return [(float(created), float(cost)) for created, cost in await self._checked(read, alone=True)]

    # -- nonces shared by replicas ---------------------------------------------------------

    async def nonce_block(self, size: int, now_ms: int) -> int:
        """The top of ``size`` nonces no other replica gets (see :class:`..wiro.signing.SharedNonces`)."""
        mark: int = await self._run(lambda conn: conn.fetchval(NONCE_BLOCK, now_ms, size), alone=True)
        return mark

    # -- calls running at once -----------------------------------------------------------

    async def take_slot(self, slot: str, owner: str, limit: int, ttl: float) -> bool:
        async def take(conn: asyncpg.Connection) -> bool:
            now = time.time()
            await conn.execute("DELETE FROM slots WHERE owner = $1 AND expires < $2", owner, now)
            held = await conn.fetchval("SELECT COUNT(*) FROM slots WHERE owner = $1", owner)
            if held >= limit:
                return False
            await conn.execute(
                "INSERT INTO slots (id, owner, expires) VALUES ($1, $2, $3)", slot, owner, now + ttl
            )
            return True

        return await self._checked(take, locked=f"slots:{owner}")

    async def free_slot(self, slot: str) -> None:
        await self._write({"op": "free_slot", "values": [slot]})

    async def aclose(self) -> None:
        await self.events.aclose()
        if self._pool is not None:
            await self.flush()
            pool, self._pool = self._pool, None
            await pool.close()
        self.spool.close()
