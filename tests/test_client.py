from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from pydantic import SecretStr

from wiro_seedream_mcp.emulator import EmulatorServer, Project, Timings
from wiro_seedream_mcp.wiro.client import WiroClient
from wiro_seedream_mcp.wiro.errors import (
    WiroAPIError,
    WiroAuthError,
    WiroConnectionError,
    WiroError,
    WiroHTTPError,
    WiroNotFoundError,
    WiroRunUnknownError,
)
from wiro_seedream_mcp.wiro.seedream import SeedreamInputs
from wiro_seedream_mcp.wiro.signing import WiroAuth, signature

from .conftest import API_KEY, API_SECRET, page_example
from .mockwiro import mock_client

pytestmark = pytest.mark.anyio

RUNNING = Timings(queue=0, prepare=0, generate=60, postprocess=1)
QUEUED = Timings(queue=60, prepare=1, generate=1, postprocess=1)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def client_for(
    server: EmulatorServer, http: httpx.AsyncClient, *, secret: str | None = API_SECRET
) -> WiroClient:
    auth = WiroAuth(SecretStr(server.emulator.project.api_key), SecretStr(secret) if secret else None)
    return WiroClient(http, base_url=server.base_url, auth=auth)


async def test_run_then_detail_until_done(emulator: EmulatorServer, http: httpx.AsyncClient) -> None:
    client = client_for(emulator, http)
    receipt = await client.run(SeedreamInputs(prompt="a lighthouse", size="720x1280"))
    assert receipt.taskid in emulator.emulator.tasks
    task = await client.detail(taskid=receipt.taskid)
    while not task.done:
        await anyio.sleep(0.01)
        task = await client.detail(tasktoken=receipt.socketaccesstoken)
    assert task.succeeded
    assert task.outputs[0].url.endswith("/0.png")


async def test_every_request_is_json_signed_and_uses_a_fresh_nonce(
    emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    client = client_for(emulator, http)

    async def one() -> None:
        receipt = await client.run(SeedreamInputs(prompt="x"))
        await client.detail(taskid=receipt.taskid)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(one)
    records = emulator.emulator.requests
    assert len(records) == 40
    nonces = [r.headers["x-nonce"] for r in records]
    assert len(set(nonces)) == len(nonces)
    for record in records:
        assert record.headers["content-type"] == "application/json"
        assert isinstance(json.loads(record.body), dict)
        assert record.headers["x-api-key"] == API_KEY
        # Checked here again with the standard library, besides the emulator's own check.
        assert record.headers["x-signature"] == signature(API_KEY, API_SECRET, record.headers["x-nonce"])
        assert record.outcome == "ok"


async def test_run_body_mirrors_the_reference(emulator: EmulatorServer, http: httpx.AsyncClient) -> None:
    client = client_for(emulator, http)
    await client.run(
        SeedreamInputs(
            prompt="p",
            size="1512x648",
            watermark=True,
            guidanceScale=2.5,
            seed=0,
            callbackUrl="https://example.com/hook",
        )
    )
    await client.run(SeedreamInputs(prompt="q"))
    first, second = (r.json() for r in emulator.emulator.requests)
    assert first == {
        "prompt": "p",
        "size": "1512x648",
        "watermark": "true",
        "guidanceScale": 2.5,
        "seed": 0,
        "callbackUrl": "https://example.com/hook",
    }
    assert second == {"prompt": "q", "size": "1024x1024", "watermark": "false", "guidanceScale": 1, "seed": 1}


async def test_key_only_project(
    emulator_factory: Callable[..., EmulatorServer], http: httpx.AsyncClient
) -> None:
    server = emulator_factory(project=Project(api_key="solo", api_secret=None))
    client = client_for(server, http, secret=None)
    receipt = await client.run(SeedreamInputs(prompt="x"))
    assert (await client.detail(taskid=receipt.taskid)).id == receipt.taskid
    assert "x-signature" not in server.emulator.requests[0].headers


async def test_signature_project_refuses_key_only(emulator: EmulatorServer, http: httpx.AsyncClient) -> None:
    client = client_for(emulator, http, secret=None)
    with pytest.raises(WiroAuthError) as info:
        await client.run(SeedreamInputs(prompt="x"))
    assert "signature" in str(info.value)
    assert info.value.status == 401


async def test_wrong_secret_is_an_auth_error_without_the_secret(
    emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    client = client_for(emulator, http, secret="not-the-secret-123")
    with pytest.raises(WiroAuthError) as info:
        await client.detail(taskid="1")
    assert "Project authorization is not valid" in str(info.value)
    assert "not-the-secret-123" not in str(info.value)
    assert API_KEY not in str(info.value)


async def test_kill_and_cancel(
    emulator_factory: Callable[..., EmulatorServer], http: httpx.AsyncClient
) -> None:
    server = emulator_factory(timings=QUEUED)
    client = client_for(server, http)
    queued = await client.run(SeedreamInputs(prompt="x"))
    cancelled = await client.cancel(taskid=queued.taskid)
    assert cancelled.cancelled

    server = emulator_factory(timings=RUNNING)
    client = client_for(server, http)
    running = await client.run(SeedreamInputs(prompt="x"))
    with pytest.raises(WiroNotFoundError, match="not in a cancellable state") as info:
        await client.cancel(taskid=running.taskid)
    assert info.value.taskid == running.taskid
    killed = await client.kill(socketaccesstoken=running.socketaccesstoken)
    assert killed.cancelled


async def test_unknown_task(emulator: EmulatorServer, http: httpx.AsyncClient) -> None:
    with pytest.raises(WiroNotFoundError) as info:
        await client_for(emulator, http).detail(taskid="999")
    assert info.value.code == 1
    assert info.value.taskid == "999"


async def test_exactly_one_identifier() -> None:
    client = mock_client(lambda request: httpx.Response(500))
    with pytest.raises(ValueError, match="exactly one of taskid or tasktoken"):
        await client.detail()
    with pytest.raises(ValueError, match="exactly one"):
        await client.kill(taskid="1", socketaccesstoken="t")


async def test_reference_examples_through_the_client() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        name = {"/v1/Task/Detail": "detail", "/v1/Task/Kill": "kill", "/v1/Task/Cancel": "cancel"}.get(
            request.url.path, "run"
        )
        return httpx.Response(200, json=page_example(name))

    client = mock_client(handler)
    receipt = await client.run(SeedreamInputs(prompt="x"))
    assert (receipt.taskid, receipt.socketaccesstoken) == ("2221", "eDcCm5yyUfIvMFspTwww49OUfgXkQt")
    assert (await client.detail(taskid="2221")).outputs[0].size == 202472
    assert (await client.kill(taskid="534574")).status == "task_cancel"
    assert (await client.cancel(taskid="634574")).id == "634574"


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (
            200,
            {"result": False, "errors": [{"code": 0, "message": "Request parameter [prompt] required"}]},
            WiroAPIError,
            "Request parameter [prompt] required",
        ),
        (
            200,
            {"result": False, "errors": [{"code": 96, "message": "limit"}]},
            WiroAPIError,
            "Wait for a running",
        ),
        (
            200,
            {"result": False, "errors": [{"code": "97", "message": "balance"}]},
            WiroAPIError,
            "Add balance",
        ),
        (
            401,
            {"result": False, "errors": [{"code": 0, "message": "Project authorization is not valid."}]},
            WiroAuthError,
            "HTTP 401",
        ),
        (404, {"result": False, "errors": []}, WiroNotFoundError, "without saying why"),
        (502, b"<html>Bad gateway</html>", WiroHTTPError, "HTTP 502 and a body that is not JSON"),
        (503, {"result": False}, WiroHTTPError, "HTTP 503"),
        (200, b"", WiroHTTPError, "not JSON"),
        (200, [1, 2], WiroHTTPError, "not JSON"),
        (200, {"result": True, "tasklist": [{"no": "id"}]}, WiroHTTPError, "documented shape"),
    ],
)
async def test_error_answers_become_typed_errors(
    status: int, body: Any, error: type[Exception], words: str
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    client = mock_client(lambda request: httpx.Response(status, content=content))
    with pytest.raises(error) as info:
        await client.detail(taskid="7")
    assert words in str(info.value)
    assert getattr(info.value, "status", None) == status


async def test_advice_for_codes_96_and_97() -> None:
    for code, words in ((96, "Wait for a running task"), (97, "Add balance")):
        body = {"result": False, "errors": [{"code": code, "message": "x"}]}

        def refuse(request: httpx.Request, body: dict[str, Any] = body) -> httpx.Response:
            return httpx.Response(200, json=body)

        client = mock_client(refuse)
        with pytest.raises(WiroAPIError) as info:
            await client.run(SeedreamInputs(prompt="x"))
        assert info.value.code == code
        assert words in str(info.value)


@pytest.mark.parametrize(
    ("failure", "sent"),
    [(httpx.ConnectError("connection refused"), False), (httpx.ReadTimeout("timed out"), True)],
)
async def test_transport_failures_say_whether_the_request_may_have_been_sent(
    failure: httpx.TransportError, sent: bool
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(WiroError) as info:
        await mock_client(fail).run(SeedreamInputs(prompt="x"))
    # A request that never left says so; one whose answer was lost may have started a task.
    if sent:
        assert isinstance(info.value, WiroRunUnknownError)
        assert isinstance(info.value.__cause__, WiroConnectionError)
    else:
        assert isinstance(info.value, WiroConnectionError)
        assert info.value.sent is False


async def test_a_request_past_its_deadline_says_so(emulator: EmulatorServer, http: httpx.AsyncClient) -> None:
    """A whole-request deadline names the endpoint and the limit; the request counts as sent."""
    auth = WiroAuth(SecretStr(API_KEY), SecretStr(API_SECRET))
    client = WiroClient(http, base_url=emulator.base_url, auth=auth, request_deadline=0.2)
    receipt = await client.run(SeedreamInputs(prompt="a slow answer"))
    emulator.emulator.inject("/Task/Detail", "slow", times=10, delay=1.0)
    with pytest.raises(WiroConnectionError, match=r"did not answer /Task/Detail within 0\.2 s") as caught:
        await client.detail(taskid=receipt.taskid)
    assert caught.value.sent is True
