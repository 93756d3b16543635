from __future__ import annotations

import threading

import anyio
import anyio.lowlevel
import httpx2 as httpx
import pytest
from pydantic import SecretStr

from wiro_seedream_mcp.wiro.signing import NonceSource, WiroAuth, signature

# Computed outside this project, with the command the reference page gives:
#   echo -n "my-secret-value1734513807123" | openssl dgst -sha256 -hmac "my-api-key"
OPENSSL_SIGNATURE = "05e612f21f23e23335a954e6d656ed64ad12941ae5d27497632d71fef7d2ad21"


def test_signature_matches_openssl() -> None:
    assert signature("my-api-key", "my-secret-value", "1734513807123") == OPENSSL_SIGNATURE


def test_signed_request_headers() -> None:
    auth = WiroAuth(SecretStr("my-api-key"), SecretStr("my-secret-value"), nonces=lambda: "1734513807123")
    request = httpx.Request("POST", "https://api.wiro.ai/v1/Task/Detail", json={"taskid": "1"})
    signed = next(auth.auth_flow(request))
    assert signed.headers["x-api-key"] == "my-api-key"
    assert signed.headers["x-nonce"] == "1734513807123"
    assert signed.headers["x-signature"] == OPENSSL_SIGNATURE


def test_key_only_request_headers() -> None:
    auth = WiroAuth(SecretStr("my-api-key"))
    request = httpx.Request("POST", "https://api.wiro.ai/v1/Task/Detail", json={})
    signed = next(auth.auth_flow(request))
    assert signed.headers["x-api-key"] == "my-api-key"
    assert "x-nonce" not in signed.headers
    assert "x-signature" not in signed.headers


def test_auth_repr_hides_credentials() -> None:
    text = repr(WiroAuth(SecretStr("key-XYZ"), SecretStr("secret-XYZ")))
    assert "XYZ" not in text
    assert "signature" in text


def test_nonces_increase_even_when_the_clock_stands_still() -> None:
    nonces = NonceSource(clock=lambda: 1_734_513_807.0)
    values = [int(nonces()) for _ in range(1000)]
    assert values[0] == 1_734_513_807_000
    assert values == sorted(set(values))


def test_nonces_do_not_go_back_when_the_clock_does() -> None:
    times = iter([100.0, 100.0, 99.0, 101.0])
    nonces = NonceSource(clock=lambda: next(times))
    assert [nonces() for _ in range(4)] == ["100000", "100001", "100002", "101000"]


def test_nonces_unique_across_threads() -> None:
    nonces = NonceSource()
    seen: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = [nonces() for _ in range(2000)]
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == len(set(seen)) == 16_000


@pytest.mark.anyio
async def test_nonces_unique_across_tasks() -> None:
    auth = WiroAuth(SecretStr("k"), SecretStr("s"))
    seen: list[str] = []

    async def worker() -> None:
        for _ in range(200):
            seen.append(auth.headers()["x-nonce"])
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        for _ in range(16):
            tg.start_soon(worker)
    assert len(seen) == len(set(seen)) == 3200
