"""The task journal: every task Wiro accepted, kept in a small SQLite file.

A task is written the moment Run hands back its id, before the tool answers anything, and
updated as it moves, so a crash or a restart never loses a paid task: ``get_task``,
``list_tasks`` and the ``wiro://tasks`` resources still know it.

One connection per process, WAL mode, short transactions: several server processes (one per
host) can share the file. SQLite calls run in a worker thread so the event loop never waits
on the disk.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel, Field

from .wiro.models import Task

log = logging.getLogger(__name__)

FILE_NAME = "tasks.sqlite3"
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    taskid TEXT PRIMARY KEY,
    token TEXT NOT NULL DEFAULT '',
    parameters TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    status TEXT NOT NULL DEFAULT '',
    done INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    outputs TEXT NOT NULL DEFAULT '[]',
    saved TEXT NOT NULL DEFAULT '{}',
    cost TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created DESC);
"""


class JournalEntry(BaseModel):
    """One task as the journal knows it."""

    taskid: str
    token: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    created: float
    updated: float
    status: str = ""
    done: bool = False
    succeeded: bool = False
    outputs: list[dict[str, Any]] = Field(default_factory=list)
    saved: dict[str, str] = Field(default_factory=dict, description="output name -> saved file path")
    cost: str | None = None
    error: str | None = None

    def as_task(self) -> Task:
        """The entry in the shape of a Wiro task record."""
        return Task.model_validate(
            {
                "id": self.taskid,
                "socketaccesstoken": self.token,
                "status": self.status,
                "pexit": "0" if self.succeeded else ("1" if self.error and self.done else None),
                "debugerror": self.error or "",
                "outputs": self.outputs,
                "totalcost": self.cost,
                "parameters": self.parameters,
            }
        )


class Journal:
    def __init__(self, folder: Path | None) -> None:
        """``folder`` None keeps the journal in memory (it then lasts as long as the process)."""
        self.path = None if folder is None else folder / FILE_NAME
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # Its own worker slot: journal writes never queue behind other work sent to threads.
        self._slot: anyio.CapacityLimiter | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path is None:
                conn = sqlite3.connect(":memory:", check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.isolation_level = None  # autocommit; transactions are explicit and short
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    async def _run(self, work: Callable[[sqlite3.Connection], _T], failed: _T) -> _T:
        """Run ``work`` on the connection in a worker thread; on a disk or database error, log
        it and return ``failed``: a journal problem never fails a tool call."""

        def locked() -> _T:
            with self._lock:
                return work(self._connect())

        if self._slot is None:
            self._slot = anyio.CapacityLimiter(1)
        try:
            return await anyio.to_thread.run_sync(locked, limiter=self._slot)
        except (sqlite3.Error, OSError) as exc:
            log.error("task journal %s: %s", self.path or "(memory)", exc)
            return failed

    async def accepted(self, taskid: str, token: str, parameters: dict[str, Any]) -> None:
        """Record a task the moment Wiro accepted it."""
        now = time.time()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                _ACCEPTED,
                (taskid, token, json.dumps(parameters), now, now, "task_queue"),
            )

        await self._run(write, None)

    async def update(self, task: Task, *, error: str | None = None) -> None:
        """Store the task's latest Detail record (status, outputs, cost)."""
        now = time.time()
        if error is None and task.failed:
            error = task.failure_reason()
        outputs = [
            o.model_dump(mode="json", include={"name", "url", "contenttype", "size"}) for o in task.outputs
        ]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                _UPDATED,
                (
                    task.id,
                    task.socketaccesstoken,
                    now,
                    now,
                    task.status,
                    int(task.done),
                    int(task.succeeded),
                    json.dumps(outputs),
                    None if task.totalcost is None else str(task.totalcost),
                    error,
                ),
            )

        await self._run(write, None)

    async def saved(self, taskid: str, name: str, path: Path) -> None:
        """Remember where an output was saved."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE tasks SET saved = json_set(saved, ?, ?), updated = ? WHERE taskid = ?",
                (f'$."{name}"', str(path), time.time(), taskid),
            )

        await self._run(write, None)

    async def _select(self, where: str, parameters: tuple[Any, ...]) -> list[JournalEntry]:
        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(conn.execute(f"{_SELECT} {where}", parameters).fetchall())

        rows: list[tuple[Any, ...]] = await self._run(read, [])
        return [_entry(row) for row in rows]

    async def get(self, taskid: str) -> JournalEntry | None:
        found = await self._select("WHERE taskid = ?", (taskid,))
        return found[0] if found else None

    async def by_token(self, token: str) -> JournalEntry | None:
        found = await self._select("WHERE token = ?", (token,))
        return found[0] if found else None

    async def recent(self, limit: int = 20) -> list[JournalEntry]:
        return await self._select("ORDER BY created DESC LIMIT ?", (limit,))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


_ACCEPTED = """
INSERT INTO tasks (taskid, token, parameters, created, updated, status) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(taskid) DO UPDATE SET token = excluded.token, updated = excluded.updated
"""
_UPDATED = """
INSERT INTO tasks (taskid, token, created, updated, status, done, succeeded, outputs, cost, error)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(taskid) DO UPDATE SET
    token = CASE WHEN excluded.token != '' THEN excluded.token ELSE tasks.token END,
    updated = excluded.updated, status = excluded.status, done = excluded.done,
    succeeded = excluded.succeeded, outputs = excluded.outputs, cost = excluded.cost,
    error = excluded.error
"""
_COLUMNS = (
    "taskid",
    "token",
    "parameters",
    "created",
    "updated",
    "status",
    "done",
    "succeeded",
    "outputs",
    "saved",
)
# Built from the constant column names above, never from input.
_SELECT = f"SELECT {', '.join(_COLUMNS)}, cost, error FROM tasks"  # noqa: S608


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    values = dict(zip((*_COLUMNS, "cost", "error"), row, strict=True))
    for name in ("parameters", "outputs", "saved"):
        values[name] = json.loads(values[name] or "null") or ({} if name != "outputs" else [])
    return JournalEntry.model_validate(values)
