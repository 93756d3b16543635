"""What the task journal stores and how: the tables, the SQLite statements, a row as an entry,
and the checks that a file is a journal. :mod:`.journal` does the reading and writing."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .wiro.models import MAX_OUTPUTS, MAX_REASON, Task
from .wiro.seedream import MAX_PROMPT_CHARS, MAX_URL_CHARS

FILE_NAME = "tasks.sqlite3"

SCHEMA = """
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
    error TEXT,
    owner TEXT NOT NULL DEFAULT '',
    estimate REAL
);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created DESC);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    usd REAL NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS slots (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Spend:
    """Today's spend of one owner: finished tasks, and what running or starting tasks may cost."""

    finished: float
    held: float
    running: int


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
    owner: str = Field(default="", description="Whose task it is (a hash), '' when not known.")

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


def inspect(folder: Path) -> str:
    """What state the journal in ``folder`` is in, in words, without changing anything (doctor)."""
    path = folder / FILE_NAME
    aside = sorted(
        p.name for p in folder.glob(f"{FILE_NAME}.unreadable-*") if p.suffix not in (".wal", ".shm")
    )
    note = f"; unreadable journal(s) moved aside earlier, still there: {', '.join(aside)}" if aside else ""
    if not path.exists():
        return f"{path} (not made yet: it is made on the first task){note}"
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5)) as conn:
            rows = conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
            conn.execute(f"{SELECT} LIMIT 0").fetchall()
    except sqlite3.Error as exc:
        return f"{path} is NOT usable ({exc}): the server will move it aside and start a new one{note}"
    writable = os.access(path, os.W_OK) and os.access(folder, os.W_OK)
    state = "" if writable else " but NOT writable: new tasks would not be recorded"
    return f"{path} ({rows} task(s)){state}{note}"


def prepare(conn: sqlite3.Connection, attempts: int = 50) -> None:
    """Make the file a journal (or check that it is one); raises on a file that is not.

    Switching to WAL takes a lock of its own, which other processes opening the same new file at
    the same moment may hold: that one step is tried again for a few seconds.
    """
    conn.execute("PRAGMA schema_version").fetchone()  # "file is not a database" shows here
    for attempt in range(attempts):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or attempt + 1 == attempts:
                raise
            time.sleep(0.1)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(tasks)")}
    if "taskid" in columns and "owner" not in columns:  # a journal from before owners were kept
        conn.execute("ALTER TABLE tasks ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
    if "taskid" in columns and "estimate" not in columns:  # from before estimates were kept
        conn.execute("ALTER TABLE tasks ADD COLUMN estimate REAL")
    conn.execute(f"{SELECT} LIMIT 0").fetchall()  # a foreign table named tasks shows here


def foreign(exc: sqlite3.OperationalError) -> bool:
    """Whether the file is another program's database (a tasks table of another shape)."""
    return str(exc).lower().startswith(("no such column", "table tasks has no column"))


ACCEPTED = """
INSERT INTO tasks (taskid, token, parameters, created, updated, status, owner, estimate)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(taskid) DO UPDATE SET token = excluded.token, updated = excluded.updated
"""
RELEASE = "DELETE FROM reservations WHERE id = ?"
# A task's latest record. With an owner (the task was seen by whose it is): the row is made if the
# journal did not have it yet; without, only an existing row is updated, so no row ever lacks
# its owner. Both take the values of updated_values (and UPDATED the owner after them).
REFRESHED = """
UPDATE tasks SET token = CASE WHEN ?2 != '' THEN ?2 ELSE token END, updated = ?4, status = ?5,
    done = ?6, succeeded = ?7, outputs = ?8, cost = ?9, error = ?10
WHERE taskid = ?1
"""
UPDATED = """
INSERT INTO tasks (taskid, token, created, updated, status, done, succeeded, outputs, cost, error, owner)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(taskid) DO UPDATE SET
    token = CASE WHEN excluded.token != '' THEN excluded.token ELSE tasks.token END,
    updated = excluded.updated, status = excluded.status, done = excluded.done,
    succeeded = excluded.succeeded, outputs = excluded.outputs, cost = excluded.cost,
    error = excluded.error
"""
COLUMNS = (
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
SELECT = f"SELECT {', '.join(COLUMNS)}, cost, error, owner FROM tasks"  # noqa: S608


def updated_values(task: Task, error: str | None, now: float) -> tuple[Any, ...]:
    """The values of an UPDATED statement (either backend's) for a task's latest record: its
    outputs as JSON, its cost as Wiro's string, and the failure's reason unless one is given."""
    if error is None and task.failed:
        error = task.failure_reason()
    outputs = [
        o.model_dump(mode="json", include={"name", "url", "contenttype", "size"}) for o in task.outputs
    ]
    return (
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
    )


def entry_of(row: tuple[Any, ...]) -> JournalEntry:
    """A row as an entry, cut to the sizes this server writes, whatever a row holds."""
    values = dict(zip((*COLUMNS, "cost", "error", "owner"), row, strict=True))
    for name in ("parameters", "outputs", "saved"):
        values[name] = json.loads(values[name] or "null") or ({} if name != "outputs" else [])
    parameters = values["parameters"]
    if isinstance(parameters, dict):
        values["parameters"] = {
            key: value[:MAX_PROMPT_CHARS] if isinstance(value, str) else value
            for key, value in list(parameters.items())[:16]
        }
    if isinstance(values["outputs"], list):
        values["outputs"] = [
            o
            for o in values["outputs"]
            if not isinstance(o, dict) or len(str(o.get("url", ""))) <= MAX_URL_CHARS
        ][:MAX_OUTPUTS]
    if isinstance(values["error"], str):
        values["error"] = values["error"][:MAX_REASON]
    return JournalEntry.model_validate(values)


# Finished tasks at their real cost; running ones at their estimate, or their cost so far when
# that is more.
SPENT = """
SELECT COALESCE(SUM(CASE WHEN done = 1 THEN CAST(COALESCE(cost, '0') AS REAL) ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN done = 1 THEN 0
                         ELSE MAX(COALESCE(estimate, 0), CAST(COALESCE(cost, '0') AS REAL)) END), 0),
       COALESCE(SUM(1 - done), 0)
FROM tasks WHERE owner = ? AND created >= ?
"""
RESERVED = "SELECT COALESCE(SUM(usd), 0), COUNT(*) FROM reservations WHERE owner = ? AND created >= ?"
EXPIRE = "DELETE FROM reservations WHERE created < ?"
RESERVE = "INSERT INTO reservations (id, owner, usd, created) VALUES (?, ?, ?, ?)"
COSTS = """
SELECT created, CAST(COALESCE(cost, '0') AS REAL) FROM tasks WHERE owner = ? AND created >= ? AND done = 1
"""


def spend_of(conn: sqlite3.Connection, owner: str, since: float, ttl: float) -> Spend:
    """What ``owner``'s tasks since ``since`` cost and hold, with the reservations younger than ``ttl``."""
    finished, running_cost, running = conn.execute(SPENT, (owner, since)).fetchone()
    reserved, starting = conn.execute(RESERVED, (owner, time.time() - ttl)).fetchone()
    return Spend(
        finished=float(finished),
        held=float(running_cost) + float(reserved),
        running=int(running) + int(starting),
    )
