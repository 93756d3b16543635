"""A Wiro client on a transport that never leaves this process, with its sleeps recorded."""

from __future__ import annotations

from collections.abc import Callable

import httpx2 as httpx
from pydantic import SecretStr

from wiro_seedream_mcp.wiro.client import WiroClient
from wiro_seedream_mcp.wiro.signing import WiroAuth


def mock_client(
    handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float] | None = None
) -> WiroClient:
    recorded = [] if sleeps is None else sleeps

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)

    return WiroClient(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        base_url="https://api.wiro.ai/v1",
        auth=WiroAuth(SecretStr("k"), SecretStr("s")),
        sleep=sleep,
    )
