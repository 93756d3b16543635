"""Two server processes on one key (a desktop app and an IDE, or replicas) never share a nonce."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client

from wiro_seedream_mcp.emulator import EmulatorServer
from wiro_seedream_mcp.journal import PostgresJournal
from wiro_seedream_mcp.wiro.signing import NonceSource, SharedNonces

from ..conftest import stdio_server
from ..postgres import fresh_database

NONCES = """
import sys
from pathlib import Path
from wiro_seedream_mcp.wiro.signing import NonceSource
source = NonceSource(shared=Path(sys.argv[1]))
print("\\n".join(source() for _ in range(int(sys.argv[2]))))
"""


@pytest.mark.child_process
def test_nonces_are_unique_across_processes(tmp_path: Path) -> None:
    counter = tmp_path / "nonce"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", NONCES, str(counter), "4000"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    seen = [line for run in runs for line in run.communicate(timeout=60)[0].split()]
    assert len(seen) == 16_000
    assert len(set(seen)) == 16_000
    # Still what Wiro documents: a unix time in milliseconds.
    assert all(len(nonce) == 13 and nonce.isdigit() for nonce in seen)


@pytest.mark.child_process
@pytest.mark.anyio
async def test_two_servers_on_one_key_get_no_nonce_refused(emulator: EmulatorServer, tmp_path: Path) -> None:
    params = stdio_server(emulator, tmp_path, WIRO_LOG_LEVEL="WARNING")
    refused: list[str] = []

    async def host(n: int) -> None:
        async with Client(params) as client:
            for round_ in range(8):
                async with anyio.create_task_group() as tg:
                    for k in range(10):
                        tg.start_soon(one, client, f"host {n} round {round_} call {k}")

    async def one(client: Client, prompt: str) -> None:
        result = await client.call_tool("generate_image", {"prompt": prompt, "wait": False})
        if result.is_error:
            refused.append(str(result.content))

    async with anyio.create_task_group() as tg:
        tg.start_soon(host, 1)
        tg.start_soon(host, 2)
    assert refused == []
    assert len(emulator.emulator.tasks) == 160
    assert not [r for r in emulator.emulator.requests if r.outcome == "unauthorized"]


@pytest.mark.anyio
async def test_replicas_sharing_a_postgresql_journal_share_no_nonce() -> None:
    """Replicas on machines that share no temp folder (the documented Docker set-up) each count
    alone, so two signing in the same millisecond would send the same nonce; with the journal in
    PostgreSQL they take nonces in blocks from it, and never do."""
    frozen = 1_767_000_000.0  # every request in the same millisecond, the worst case
    first_local, second_local = NonceSource(clock=lambda: frozen), NonceSource(clock=lambda: frozen)
    assert first_local() == second_local()  # counting alone collides
    async with fresh_database() as url:
        journals = [PostgresJournal(url), PostgresJournal(url)]
        try:
            sources = [
                SharedNonces(journal.nonce_block, NonceSource(clock=lambda: frozen), clock=lambda: frozen)
                for journal in journals
            ]
            seen: list[str] = []

            async def sign(source: SharedNonces) -> None:
                for _ in range(300):
                    seen.append(await source.next())

            async with anyio.create_task_group() as tg:
                for source in sources:
                    for _ in range(2):
                        tg.start_soon(sign, source)
        finally:
            for journal in journals:
                await journal.aclose()
    assert len(seen) == 1200
    assert len(set(seen)) == 1200
    # Still millisecond times of about now, as Wiro's own clients send.
    assert all(len(nonce) == 13 and int(nonce) > frozen * 1000 for nonce in seen)


@pytest.mark.anyio
async def test_a_shared_store_that_cannot_be_reached_leaves_signing_to_this_machine() -> None:
    asked: list[int] = []

    async def unreachable(size: int, now_ms: int) -> int:
        asked.append(size)
        raise OSError("connection refused")

    local = NonceSource(clock=lambda: 1_767_000_000.0)
    source = SharedNonces(unreachable, local, clock=lambda: 1_767_000_000.0)
    assert [await source.next() for _ in range(3)] == ["1767000000000", "1767000000001", "1767000000002"]
    assert len(asked) == 1  # not asked again for every request while it is down


@pytest.mark.anyio
async def test_a_block_already_in_the_past_is_not_used_and_this_machine_signs() -> None:
    """A store whose mark lags the clock (another machine's clock behind this one's) hands out a
    block of times already gone: those are not sent, this machine's counter signs instead."""

    async def behind(size: int, now_ms: int) -> int:
        return now_ms - 60_000

    source = SharedNonces(behind, NonceSource(clock=lambda: 1_767_000_000.0), clock=lambda: 1_767_000_000.0)
    assert await source.next() == "1767000000000"


@pytest.mark.anyio
async def test_a_shared_store_that_hangs_holds_a_request_for_a_second_at_most() -> None:
    async def hanging(size: int, now_ms: int) -> int:
        await anyio.sleep_forever()
        raise AssertionError

    source = SharedNonces(hanging, NonceSource(clock=lambda: 1_767_000_000.0), clock=lambda: 1_767_000_000.0)
    source.DEADLINE = 0.2
    with anyio.fail_after(5):
        assert await source.next() == "1767000000000"
