"""The main paths against the emulator speaking either dialect: the reference page's shapes, and
those Wiro's docs and SDKs show (numbers as numbers, parameters as a JSON string, errors with a
time, a greeting frame, progress as a JSON string, interim error and output frames)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.emulator.dialect import DIALECTS
from wiro_seedream_mcp.wiro.seedream import RUN_PATH
from wiro_seedream_mcp.wiro.signing import WiroAuth

from .conftest import connect, settings_for
from .test_tools import structured, text_of

pytestmark = pytest.mark.anyio

STEADY = Timings(queue=0.05, prepare=0.05, generate=0.6, postprocess=0.05)


@pytest.fixture(params=DIALECTS)
def speaking(
    request: pytest.FixtureRequest, emulator_factory: Callable[..., EmulatorServer]
) -> Callable[..., EmulatorServer]:
    def start(**options: object) -> EmulatorServer:
        return emulator_factory(dialect=request.param, **options)

    return start


async def test_generate_follows_the_task_smoothly_and_delivers_the_image(
    speaking: Callable[..., EmulatorServer],
) -> None:
    server = speaking(timings=STEADY)
    seen: list[float] = []

    async def noted(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with connect(settings_for(server)) as client:
        made = await client.call_tool("generate_image", {"prompt": "a lighthouse"}, progress_callback=noted)
        data = structured(made)
        assert data["succeeded"] is True, text_of(made)
        looked = structured(await client.call_tool("get_task", {"taskid": data["taskid"]}))
    assert looked["outputs"][0]["url"] == data["outputs"][0]["url"]
    assert seen == sorted(seen)
    assert len(set(seen)) >= 12, seen  # each tenth of the run, not a jump from start to end


async def test_stopping_and_refusing_read_the_same(speaking: Callable[..., EmulatorServer]) -> None:
    server = speaking(timings=Timings(queue=0, prepare=0, generate=60, postprocess=1), max_active=1)
    async with connect(settings_for(server, wait_timeout=0)) as client:
        started = structured(await client.call_tool("generate_image", {"prompt": "long"}))
        refused = await client.call_tool("generate_image", {"prompt": "one too many"})
        assert refused.is_error
        assert "Concurrent task limit" in text_of(refused)
        killed = structured(await client.call_tool("kill_task", {"taskid": started["taskid"]}))
        assert killed["status"] == "task_cancel"
        listed = structured(await client.call_tool("list_tasks", {}))
    assert [task["taskid"] for task in listed["tasks"]] == [started["taskid"]]
    assert list(server.emulator.tasks) == [started["taskid"]]


async def test_the_docs_dialect_answers_in_the_docs_shapes(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(
        dialect="docs", max_active=1, timings=Timings(queue=60, prepare=1, generate=1, postprocess=1)
    )
    project = server.emulator.project
    auth = WiroAuth(SecretStr(project.api_key), SecretStr(project.api_secret or ""))
    async with httpx.AsyncClient(auth=auth, base_url=server.base_url) as http:
        run = (await http.post(RUN_PATH, json={"prompt": "shapes", "size": "1024x1024"})).json()
        detail = (await http.post("/Task/Detail", json={"taskid": run["taskid"]})).json()
        refused = (await http.post(RUN_PATH, json={"prompt": "one too many"})).json()
    assert detail["total"] == 1
    [record] = detail["tasklist"]
    assert json.loads(record["parameters"])["prompt"] == "shapes"
    assert record["pexit"] == ""
    [error] = refused["errors"]
    assert error["code"] == "96" and isinstance(error["time"], int)
