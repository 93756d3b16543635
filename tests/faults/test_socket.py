"""A task socket that sends garbage or closes mid-task: the task is still followed to its image."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wiro_seedream_mcp.emulator import EmulatorServer, Timings

from ..conftest import connect, settings_for

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("kind", ["garbage", "close"])
async def test_a_misbehaving_socket_never_loses_the_task(
    emulator_factory: Callable[..., EmulatorServer], kind: str
) -> None:
    server = emulator_factory(timings=Timings(queue=0.2, prepare=0.1, generate=0.4, postprocess=0.1))
    server.emulator.inject("/socket", kind)
    seen: list[float] = []

    async def note(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with connect(settings_for(server, wait_timeout=10)) as client:
        result = await client.call_tool(
            "generate_image", {"prompt": f"socket {kind}"}, progress_callback=note
        )
    assert not result.is_error
    assert result.structured_content["succeeded"] is True
    assert server.emulator.socket_sessions == 1
    assert seen == sorted(seen)
