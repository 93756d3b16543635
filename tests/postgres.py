"""A fresh PostgreSQL database for a test, on the server ``WIRO_TEST_POSTGRES_URL`` names.

``.ci/run`` starts a throwaway cluster and sets it; without it the tests that need PostgreSQL
skip (or fail, under ``WIRO_TEST_REQUIRE_ALL``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

from .nodetools import unavailable

ENV = "WIRO_TEST_POSTGRES_URL"


def server_url() -> str:
    url = os.environ.get(ENV)
    if not url:
        unavailable(f"no PostgreSQL: set {ENV}=postgresql://user@127.0.0.1:PORT/postgres (CI starts one)")
    assert url is not None
    return url


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """The URL of a new, empty database, dropped afterwards."""
    import asyncpg

    admin = server_url()
    name = f"wiro_test_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    parts = urlsplit(admin)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
