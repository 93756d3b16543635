"""PostgreSQL's side of the task journal: its tables, its statements, and the journal's writes as
data (:func:`apply`), so that a write the database did not take can be kept and made later."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..records import COLUMNS

if TYPE_CHECKING:
    import asyncpg

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    taskid TEXT PRIMARY KEY,
    token TEXT NOT NULL DEFAULT '',
    parameters TEXT NOT NULL DEFAULT '{}',
    created DOUBLE PRECISION NOT NULL,
    updated DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL DEFAULT '',
    done INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    outputs TEXT NOT NULL DEFAULT '[]',
    saved TEXT NOT NULL DEFAULT '{}',
    cost TEXT,
    error TEXT,
    owner TEXT NOT NULL DEFAULT '',
    estimate DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created DESC);
CREATE INDEX IF NOT EXISTS tasks_owner_created ON tasks (owner, created DESC);
CREATE INDEX IF NOT EXISTS tasks_token ON tasks (token);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    usd DOUBLE PRECISION NOT NULL,
    created DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
    id INTEGER PRIMARY KEY,
    mark BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS slots (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY,
    scope TEXT NOT NULL,
    session TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL DEFAULT '',
    stream TEXT NOT NULL,
    message TEXT,
    final BOOLEAN NOT NULL DEFAULT FALSE,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS events_stream ON events (scope, stream, id);
"""
# Any constant: the lock that one replica holds while it creates the tables.
SCHEMA_LOCK = 7_311_946_205

# A block of nonces: the mark raised to at least now (ms), then by the block's size; the values up
# to the new mark are the caller's alone.
NONCE_BLOCK = """
INSERT INTO nonces (id, mark) VALUES (1, $1::bigint + $2::bigint)
ON CONFLICT (id) DO UPDATE SET mark = GREATEST(nonces.mark, $1::bigint) + $2::bigint
RETURNING mark
"""
# Built from the constant column names, never from input.
SELECT = f"SELECT {', '.join(COLUMNS)}, cost, error, owner FROM tasks"  # noqa: S608
ACCEPTED = """
INSERT INTO tasks (taskid, token, parameters, created, updated, status, owner, estimate)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (taskid) DO UPDATE SET token = excluded.token, updated = excluded.updated
"""
# As in the SQLite journal: REFRESHED updates an existing row only, UPDATED (with the owner)
# makes the row when there is none. No row is ever without its owner.
REFRESHED = """
UPDATE tasks SET token = CASE WHEN $2 != '' THEN $2 ELSE token END, updated = $3, status = $4,
    done = $5, succeeded = $6, outputs = $7, cost = $8, error = $9
WHERE taskid = $1
"""
UPDATED = """
INSERT INTO tasks (taskid, token, created, updated, status, done, succeeded, outputs, cost, error, owner)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (taskid) DO UPDATE SET
    token = CASE WHEN excluded.token != '' THEN excluded.token ELSE tasks.token END,
    updated = excluded.updated, status = excluded.status, done = excluded.done,
    succeeded = excluded.succeeded, outputs = excluded.outputs, cost = excluded.cost,
    error = excluded.error
"""
SAVED = """
UPDATE tasks
SET saved = (COALESCE(NULLIF(saved, ''), '{}')::jsonb || jsonb_build_object($2::text, $3::text))::text,
    updated = $4
WHERE taskid = $1
"""
SPENT = """
SELECT COALESCE(SUM(CASE WHEN done = 1 THEN CAST(COALESCE(cost, '0') AS DOUBLE PRECISION) ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN done = 1 THEN 0
                         ELSE GREATEST(COALESCE(estimate, 0), CAST(COALESCE(cost, '0') AS DOUBLE PRECISION))
                    END), 0),
       COALESCE(SUM(1 - done), 0)
FROM tasks WHERE owner = $1 AND created >= $2
"""
RESERVED = "SELECT COALESCE(SUM(usd), 0), COUNT(*) FROM reservations WHERE owner = $1 AND created >= $2"
COSTS = """
SELECT created, CAST(COALESCE(cost, '0') AS DOUBLE PRECISION) FROM tasks
WHERE owner = $1 AND created >= $2 AND done = 1
"""


async def apply(conn: asyncpg.Connection, item: dict[str, Any]) -> None:
    """One journal write, described as data so that it can be kept (:mod:`.spool`) and written later
    as it would have been then: its times are those of when it was made."""
    op, values = item["op"], item["values"]
    if op == "accepted":
        taskid, token, parameters, now, owner, estimate = values
        async with conn.transaction():
            await conn.execute(ACCEPTED, taskid, token, parameters, now, now, "task_queue", owner, estimate)
            if item.get("reservation") is not None:
                await conn.execute("DELETE FROM reservations WHERE id = $1", item["reservation"])
    elif op == "update":
        if item.get("owner") is None:
            await conn.execute(REFRESHED, *values[:2], *values[3:])  # all but the creation time
        else:
            await conn.execute(UPDATED, *values, item["owner"])
    elif op == "saved":
        await conn.execute(SAVED, *values)
    elif op == "release":
        await conn.execute("DELETE FROM reservations WHERE id = $1", *values)
    elif op == "free_slot":
        await conn.execute("DELETE FROM slots WHERE id = $1", *values)
    else:  # pragma: no cover - only this module writes items
        raise ValueError(f"unknown journal write {op!r}")
