"""Row 7: two server processes on one key (a desktop app and an IDE) never share a nonce."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from wiro_seedream_mcp.emulator import EmulatorServer

from ..conftest import API_KEY, API_SECRET

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
    env = {
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_API_BASE_URL": emulator.base_url,
        "WIRO_STATE_DIR": str(tmp_path),
        "WIRO_PREVIEW": "off",
        "WIRO_LOG_LEVEL": "WARNING",
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "wiro_seedream_mcp", "serve"], env=env)
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
