"""The task journal in a small SQLite file: the embedded default.

A task is written the moment Run hands back its id, before the tool answers anything, and
updated as it moves, so a crash or a restart never loses a paid task: ``get_task``,
``list_tasks`` and the ``wiro://tasks`` resources still know it.

One connection per process, WAL mode, short transactions: several server processes (one per
host) can share the file. SQLite calls run in a worker thread so the event loop never waits
on the disk.

A journal problem never fails a paid call, and never goes unsaid: a file that cannot be written
(read-only, disk full) is named in a warning on every answer until a write succeeds again; a
file that is not a journal (garbage, another program's database) is moved aside, kept, and a
new one started, with a warning on every answer while the old file is still there; a row that
cannot be read is skipped with a warning. Reads that fail raise :class:`JournalUnavailableError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
from pydantic import ValidationError

from ..records import (
    ACCEPTED,
    COSTS,
    EXPIRE,
    FILE_NAME,
    REFRESHED,
    RELEASE,
    RESERVE,
    SCHEMA,
    SELECT,
    UPDATED,
    JournalEntry,
    Spend,
    entry_of,
    foreign,
    prepare,
    spend_of,
    updated_values,
)
from ..wiro.models import Task
from .base import RESERVATION_TTL, JournalUnavailableError, TaskJournal

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT: the write lock is taken first, so a check and the write it
    allows cannot be split by another process."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _scoped(where: str, parameters: tuple[Any, ...], owner: str | None) -> tuple[str, tuple[Any, ...]]:
    if owner is None:
        return where, parameters
    return f"{where} AND owner = ?", (*parameters, owner)


class Journal(TaskJournal):
    advice = "Fix or move the file, or set WIRO_STATE_DIR to another folder."

    def __init__(self, folder: Path | None) -> None:
        """``folder`` None keeps the journal in memory (it then lasts as long as the process)."""
        self.path = None if folder is None else folder / FILE_NAME
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # Its own worker slot: journal writes never queue behind other work sent to threads.
        self._slot: anyio.CapacityLimiter | None = None
        # The last write that failed, until one succeeds again.
        self.write_problem: str | None = None
        self.read_only = False
        self.skipped_rows = 0

    def _set_aside(self) -> list[Path]:
        """Unreadable journals moved aside in this folder (by this process or another), still there."""
        if self.path is None:
            return []
        try:
            return sorted(
                p
                for p in self.path.parent.glob(f"{FILE_NAME}.unreadable-*")
                if p.suffix not in (".wal", ".shm")
            )
        except OSError:
            return []

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else "(in memory)"

    def warnings(self) -> list[str]:
        found = super().warnings()
        for aside in self._set_aside():
            found.append(
                f"the task journal was unreadable and was moved aside to {aside} (kept, not deleted); a "
                f"new journal was started at {self.where}. Look at the old file, then remove it to clear "
                "this warning"
            )
        return found

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path is None:
                conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
                conn.executescript(SCHEMA)
            else:
                conn = self._open_file(self.path)
            self._conn = conn
        return self._conn

    def _open_file(self, path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
        except sqlite3.OperationalError:
            if not path.exists():
                raise
            return self._open_read_only(path)
        try:
            prepare(conn)
        except sqlite3.OperationalError as exc:
            conn.close()
            if foreign(exc):
                return self._start_anew(path, exc)
            message = str(exc).lower()
            if "readonly" not in message and "unable to open" not in message:
                raise
            return self._open_read_only(path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            return self._start_anew(path, exc)
        return conn

    def _open_read_only(self, path: Path) -> sqlite3.Connection:
        """Readable but not writable: serve what it knows, and say that it records nothing."""
        problem: sqlite3.Error | None = None
        # mode=ro where SQLite may still use the WAL index; immutable=1 on a read-only file system.
        for query in ("mode=ro", "immutable=1"):
            try:
                conn = sqlite3.connect(
                    f"{path.as_uri()}?{query}", uri=True, timeout=10, check_same_thread=False
                )
                conn.execute(f"{SELECT} LIMIT 0").fetchall()
            except sqlite3.Error as exc:
                problem = exc
                continue
            conn.isolation_level = None
            self.read_only = True
            self.write_problem = "the file or its folder is read-only"
            log.error("task journal %s is read-only: new tasks are not recorded", path)
            return conn
        raise problem or sqlite3.OperationalError("the journal cannot be opened")

    def _start_anew(self, path: Path, exc: Exception) -> sqlite3.Connection:
        """Move a file that is not a usable journal aside (keeping it) and start a new one."""
        aside = path.with_name(f"{path.name}.unreadable-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            old = Path(f"{path}{suffix}")
            if old.exists():
                old.replace(Path(f"{aside}{suffix.replace('-', '.')}"))
        log.error(
            "task journal %s was unreadable (%s); moved aside to %s, starting a new one", path, exc, aside
        )
        conn = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
        prepare(conn)
        return conn

    async def _thread(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        def locked() -> _T:
            with self._lock:
                try:
                    return work(self._connect())
                except sqlite3.DatabaseError as exc:
                    if (
                        type(exc) is sqlite3.DatabaseError
                        and self._conn is not None
                        and self.path is not None
                    ):
                        # Corrupted while open ("database disk image is malformed"): start anew once.
                        self._conn.close()
                        self._conn = self._start_anew(self.path, exc)
                        return work(self._conn)
                    raise

        if self._slot is None:
            self._slot = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(locked, limiter=self._slot)

    async def _write(self, work: Callable[[sqlite3.Connection], None]) -> None:
        """A write that never fails the call: a problem is logged and named in :meth:`warnings`."""
        try:
            await self._thread(work)
        except (sqlite3.Error, OSError) as exc:
            message = str(exc) or type(exc).__name__
            if self.read_only or "readonly" in message.lower():
                message = "the file or its folder is read-only"
            self.write_problem = message
            log.error("task journal %s: %s", self.where, exc)
            return
        if not self.read_only:
            self.write_problem = None

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
        """Record a task the moment Wiro accepted it. ``owner`` tells whose account it was started
        on (a hash, see :attr:`AppState.owner`), so that tasks are only ever reused by their owner;
        ``estimate`` is what it is expected to cost, which takes the place of the budget
        ``reservation`` made for it (in the same transaction)."""
        now = time.time()

        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.execute(
                    ACCEPTED,
                    (taskid, token, json.dumps(parameters), now, now, "task_queue", owner, estimate),
                )
                if reservation is not None:
                    conn.execute(RELEASE, (reservation,))

        await self._write(write)

    async def release(self, reservation: str) -> None:
        """Give back a budget reservation whose task was never started."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(RELEASE, (reservation,))

        await self._write(write)

    async def _checked(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work`` in one write transaction, which no other process can interleave with; raises
        :class:`JournalUnavailableError` when the journal cannot do it."""

        def run(conn: sqlite3.Connection) -> _T:
            with _transaction(conn):
                return work(conn)

        try:
            return await self._thread(run)
        except (sqlite3.Error, OSError) as exc:
            raise JournalUnavailableError(f"the task journal {self.where} cannot be written ({exc})") from exc

    async def update(self, task: Task, *, error: str | None = None, owner: str | None = None) -> None:
        """Store the task's latest Detail record (status, outputs, cost)."""
        values = updated_values(task, error, time.time())

        def write(conn: sqlite3.Connection) -> None:
            if owner is None:
                conn.execute(REFRESHED, values)
            else:
                conn.execute(UPDATED, (*values, owner))

        await self._write(write)

    async def saved(self, taskid: str, name: str, path: Path) -> None:
        """Remember where an output was saved."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE tasks SET saved = json_set(saved, ?, ?), updated = ? WHERE taskid = ?",
                (f'$."{name}"', str(path), time.time(), taskid),
            )

        await self._write(write)

    async def _select(self, where: str, parameters: tuple[Any, ...]) -> list[JournalEntry]:
        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(conn.execute(f"{SELECT} {where}", parameters).fetchall())

        try:
            rows = await self._thread(read)
        except (sqlite3.Error, OSError) as exc:
            log.error("task journal %s: %s", self.where, exc)
            raise JournalUnavailableError(f"the task journal {self.where} cannot be read: {exc}") from exc
        entries = []
        for row in rows:
            try:
                entries.append(entry_of(row))
            except (ValueError, TypeError, ValidationError) as exc:
                self.skipped_rows += 1
                log.warning("task journal %s: skipped a row that cannot be read (%s)", self.where, exc)
        return entries

    async def get(self, taskid: str, owner: str | None = None) -> JournalEntry | None:
        found = await self._select(*_scoped("WHERE taskid = ?", (taskid,), owner))
        return found[0] if found else None

    async def by_token(self, token: str, owner: str | None = None) -> JournalEntry | None:
        found = await self._select(*_scoped("WHERE token = ?", (token,), owner))
        return found[0] if found else None

    async def recent(self, limit: int = 20, owner: str | None = None) -> list[JournalEntry]:
        where, parameters = _scoped("WHERE 1 = 1", (), owner)
        return await self._select(f"{where} ORDER BY created DESC LIMIT ?", (*parameters, limit))

    async def started_since(self, when: float, owner: str, limit: int = 200) -> list[JournalEntry]:
        """Tasks of ``owner`` accepted at or after ``when`` (a ``time.time()`` value), newest first."""
        return await self._select(
            "WHERE created >= ? AND owner = ? ORDER BY created DESC LIMIT ?", (when, owner, limit)
        )

    async def spend(self, owner: str, since: float) -> Spend:
        return await self._checked(lambda conn: spend_of(conn, owner, since, RESERVATION_TTL))

    async def hold(
        self, reservation: str, owner: str, usd: float, budget: float, since: float
    ) -> Spend | None:
        def check_and_hold(conn: sqlite3.Connection) -> Spend | None:
            now = time.time()
            conn.execute(EXPIRE, (now - RESERVATION_TTL,))
            spend = spend_of(conn, owner, since, RESERVATION_TTL)
            if spend.finished + spend.held + usd > budget + 1e-9:
                return spend
            conn.execute(RESERVE, (reservation, owner, usd, now))
            return None

        return await self._checked(check_and_hold)

    async def finished_costs(self, owner: str, since: float) -> list[tuple[float, float]]:
        rows = await self._checked(lambda conn: conn.execute(COSTS, (owner, since)).fetchall())
        return [(float(created), float(cost)) for created, cost in rows]

    async def take_slot(self, slot: str, owner: str, limit: int, ttl: float) -> bool:
        def take(conn: sqlite3.Connection) -> bool:
            now = time.time()
            conn.execute("DELETE FROM slots WHERE expires < ?", (now,))
            (held,) = conn.execute("SELECT COUNT(*) FROM slots WHERE owner = ?", (owner,)).fetchone()
            if held >= limit:
                return False
            conn.execute("INSERT INTO slots (id, owner, expires) VALUES (?, ?, ?)", (slot, owner, now + ttl))
            return True

        return await self._checked(take)

    async def free_slot(self, slot: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM slots WHERE id = ?", (slot,))

        await self._write(write)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
