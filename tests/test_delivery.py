"""What a person gets from a finished task, what survives a crash, and what can be browsed."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from mcp.types import BlobResourceContents, ImageContent, ResourceLink, TextContent, TextResourceContents
from PIL import Image as PILImage

from wiro_seedream_mcp.config import Settings
from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.emulator.pictures import png_size
from wiro_seedream_mcp.journal import Journal
from wiro_seedream_mcp.wiro.models import Task
from wiro_seedream_mcp.wiro.seedream import EXAMPLE_PROMPTS

from .conftest import API_KEY, API_SECRET, connect, settings_for
from .rawstdio import RawServer

pytestmark = pytest.mark.anyio

QUEUED = Timings(queue=60, prepare=1, generate=1, postprocess=1)


def with_files(server: EmulatorServer, tmp_path: Path, **changes: Any) -> Settings:
    base = settings_for(server)
    return dataclasses.replace(base, output_dir=tmp_path / "images", state_dir=tmp_path / "state", **changes)


def blocks(result: Any, kind: type) -> list[Any]:
    return [block for block in result.content if isinstance(block, kind)]


async def test_finished_image_arrives_as_text_link_preview_and_file(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    async with connect(with_files(emulator, tmp_path)) as client:
        result = await client.call_tool(
            "generate_image", {"prompt": "A red fox in the snow", "size": "1280x720"}
        )
    assert not result.is_error
    data = result.structured_content
    assert isinstance(data, dict)
    [output] = data["outputs"]
    saved = Path(output["path"])
    assert saved.parent == (tmp_path / "images").resolve()
    assert saved.name.endswith(f"-{data['taskid']}-0-a-red-fox-in-the-snow.png")
    assert png_size(saved.read_bytes()) == (1280, 720)
    assert saved.read_bytes() == httpx.get(output["url"]).content

    [preview] = blocks(result, ImageContent)
    assert preview.mime_type == "image/jpeg"
    assert len(preview.data) < 1024 * 1024
    with PILImage.open(io.BytesIO(base64.b64decode(preview.data))) as small:
        assert small.size == (512, 288)

    # The saved file is named in the text and in `path`, never offered as a file:// link a
    # hosted model would be asked to open as an image.
    assert [str(link.uri) for link in blocks(result, ResourceLink)] == [output["url"]]
    assert "file://" not in result.model_dump_json()
    text = blocks(result, TextContent)[0].text
    assert f"Saved to {saved}" in text
    assert data["warnings"] == []


async def test_preview_and_saving_can_be_switched_off(emulator: EmulatorServer, tmp_path: Path) -> None:
    settings = dataclasses.replace(with_files(emulator, tmp_path), output_dir=None, preview_size=None)
    async with connect(settings) as client:
        result = await client.call_tool("generate_image", {"prompt": "fox"})
    assert blocks(result, ImageContent) == []
    assert [str(link.uri).startswith("http") for link in blocks(result, ResourceLink)] == [True]
    assert result.structured_content["outputs"][0]["path"] is None
    assert not (tmp_path / "images").exists()
    cdn = [r for r in emulator.emulator.requests if "/cdn/" in r.path]
    assert cdn == [], "nothing should be downloaded when nothing is saved or previewed"


async def test_a_failed_download_leaves_the_call_successful(emulator: EmulatorServer, tmp_path: Path) -> None:
    emulator.emulator.inject("/0.png", "503", times=10)
    async with connect(with_files(emulator, tmp_path)) as client:
        result = await client.call_tool("generate_image", {"prompt": "fox"})
    assert not result.is_error
    data = result.structured_content
    assert isinstance(data, dict)
    assert data["succeeded"] is True
    assert data["outputs"][0]["url"]
    assert data["outputs"][0]["path"] is None
    assert any("HTTP 503" in w and f"still at {data['outputs'][0]['url']}" in w for w in data["warnings"])
    assert "Warning:" in blocks(result, TextContent)[0].text


async def test_get_task_reuses_the_saved_file(emulator: EmulatorServer, tmp_path: Path) -> None:
    async with connect(with_files(emulator, tmp_path)) as client:
        made = (await client.call_tool("generate_image", {"prompt": "fox"})).structured_content
        again = (await client.call_tool("get_task", {"taskid": made["taskid"]})).structured_content
    assert again["outputs"][0]["path"] == made["outputs"][0]["path"]
    assert len(list((tmp_path / "images").iterdir())) == 1
    downloads = [r for r in emulator.emulator.requests if "/cdn/" in r.path]
    assert len(downloads) == 1, "the saved file should be read, not downloaded again"


# -- resources -------------------------------------------------------------------------------


async def test_task_resources_read_back(emulator: EmulatorServer, tmp_path: Path) -> None:
    async with connect(with_files(emulator, tmp_path)) as client:
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert {"wiro://tasks/{taskid}", "wiro://tasks/{taskid}/outputs/{name}"} <= templates
        assert "wiro://tasks" in {str(r.uri) for r in (await client.list_resources()).resources}

        made = (await client.call_tool("generate_image", {"prompt": "a heron"})).structured_content
        taskid = made["taskid"]

        [task_json] = (await client.read_resource(f"wiro://tasks/{taskid}")).contents
        assert isinstance(task_json, TextResourceContents)
        entry = json.loads(task_json.text)
        assert entry["taskid"] == taskid
        assert entry["parameters"]["prompt"] == "a heron"
        assert entry["succeeded"] is True
        assert entry["outputs"][0]["path"] == made["outputs"][0]["path"]
        # One type per field: the booleans are booleans, sizes and costs numbers, times ISO 8601.
        assert entry["parameters"]["watermark"] is False
        assert isinstance(entry["outputs"][0]["size"], int)
        assert isinstance(entry["totalcost"], float)
        for when in (entry["created"], entry["updated"]):
            assert datetime.fromisoformat(when).tzinfo is not None
        assert set(entry) == {
            "taskid",
            "tasktoken",
            "status",
            "done",
            "succeeded",
            "parameters",
            "created",
            "updated",
            "outputs",
            "totalcost",
            "error",
        }

        [blob] = (await client.read_resource(f"wiro://tasks/{taskid}/outputs/0.png")).contents
        assert isinstance(blob, BlobResourceContents)
        assert blob.mime_type == "image/png"
        assert base64.b64decode(blob.blob) == Path(made["outputs"][0]["path"]).read_bytes()

        [listing] = (await client.read_resource("wiro://tasks")).contents
        assert isinstance(listing, TextResourceContents)
        assert json.loads(listing.text)["tasks"][0]["taskid"] == taskid


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("wiro://tasks/424242", "no task '424242'"),
        ("wiro://tasks/{taskid}/outputs/1.png", "has no output '1.png'"),
    ],
)
async def test_unknown_resources_are_clear_errors(
    emulator: EmulatorServer, tmp_path: Path, uri: str, words: str
) -> None:
    from mcp.shared.exceptions import MCPError

    async with connect(with_files(emulator, tmp_path)) as client:
        made = (await client.call_tool("generate_image", {"prompt": "x"})).structured_content
        with pytest.raises(MCPError, match=words):
            await client.read_resource(uri.format(taskid=made["taskid"]))


# -- the journal -----------------------------------------------------------------------------


async def test_list_tasks_newest_first(emulator: EmulatorServer, tmp_path: Path) -> None:
    async with connect(with_files(emulator, tmp_path, preview_size=None)) as client:
        ids = []
        for prompt in ("first", "second", "third"):
            result = await client.call_tool("generate_image", {"prompt": prompt})
            ids.append(result.structured_content["taskid"])
        listed = await client.call_tool("list_tasks", {"limit": 2})
    tasks = listed.structured_content["tasks"]
    assert [t["taskid"] for t in tasks] == [ids[2], ids[1]]
    assert [t["prompt"] for t in tasks] == ["third", "second"]
    assert all(t["succeeded"] and t["saved"] and t["images"] for t in tasks)
    assert ids[2] in blocks(listed, TextContent)[0].text


async def test_journal_is_written_before_the_tool_answers(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=QUEUED)
    async with connect(with_files(server, tmp_path)) as client:
        started = (
            await client.call_tool("generate_image", {"prompt": "later", "wait": False})
        ).structured_content
    journal = Journal(tmp_path / "state")
    entry = await journal.get(started["taskid"])
    journal.close()
    assert entry is not None
    assert entry.token == started["socketaccesstoken"]
    assert entry.parameters["prompt"] == "later"
    assert entry.status == "task_queue"


@pytest.mark.child_process
def test_task_survives_sigkill_and_a_restart(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=Timings(queue=1.5, prepare=0.1, generate=0.2, postprocess=0.1))
    env = {
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_API_BASE_URL": server.base_url,
        "WIRO_STATE_DIR": str(tmp_path / "state"),
        "WIRO_OUTPUT_DIR": str(tmp_path / "images"),
    }
    first = RawServer(env)
    first.initialize()
    first.send(
        "tools/call",
        {"name": "generate_image", "arguments": {"prompt": "crash test"}, "_meta": {"progressToken": "p"}},
    )
    # The first progress notification comes after the journal write: kill right then.
    while not first.notifications("notifications/progress"):
        first.read()
    os.kill(first.proc.pid, signal.SIGKILL)
    first.close()
    [taskid] = server.emulator.tasks

    second = RawServer(env)
    try:
        second.initialize()
        listed = second.response(second.send("tools/call", {"name": "list_tasks", "arguments": {}}))
        [entry] = listed["result"]["structuredContent"]["tasks"]
        assert entry["taskid"] == taskid
        assert entry["prompt"] == "crash test"
        got = second.response(
            second.send("tools/call", {"name": "get_task", "arguments": {"taskid": taskid, "wait": 20}})
        )["result"]["structuredContent"]
    finally:
        second.close()
    assert got["succeeded"] is True
    assert Path(got["outputs"][0]["path"]).name.endswith("-0-crash-test.png")


@pytest.mark.parametrize("by", ["taskid", "tasktoken"])
async def test_get_task_falls_back_to_the_journal_when_wiro_is_unreachable(
    emulator: EmulatorServer, tmp_path: Path, by: str
) -> None:
    settings = with_files(emulator, tmp_path)
    async with connect(settings) as client:
        made = (await client.call_tool("generate_image", {"prompt": "kept"})).structured_content
    offline = dataclasses.replace(settings, base_url="http://127.0.0.1:9/v1", socket_url=None)
    asked = {"taskid": made["taskid"]} if by == "taskid" else {"tasktoken": made["socketaccesstoken"]}
    async with connect(offline) as client:
        result = await client.call_tool("get_task", asked)
    assert not result.is_error
    data = result.structured_content
    assert isinstance(data, dict)
    assert data["succeeded"] is True
    assert data["outputs"][0]["url"] == made["outputs"][0]["url"]
    assert any("could not be asked" in w for w in data["warnings"])


def test_concurrent_writers_share_one_journal(tmp_path: Path) -> None:
    """Several server processes (one per host) write the same file: nothing is lost."""

    def writer(n: int) -> None:
        async def work() -> None:
            journal = Journal(tmp_path)
            for i in range(50):
                taskid = f"{n}-{i}"
                await journal.accepted(taskid, f"tok-{taskid}", {"prompt": taskid})
                await journal.update(Task(id=taskid, status="task_start"))
            journal.close()

        anyio.run(work)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def count() -> list[Any]:
        journal = Journal(tmp_path)
        try:
            return await journal.recent(1000)
        finally:
            journal.close()

    entries = anyio.run(count)
    assert len(entries) == 300
    assert {e.status for e in entries} == {"task_start"}
    assert all(e.token == f"tok-{e.taskid}" for e in entries)


# -- prompts ---------------------------------------------------------------------------------


async def test_prompt_ideas() -> None:
    async with connect(Settings()) as client:
        [prompt] = (await client.list_prompts()).prompts
        assert prompt.name == "seedream_ideas"
        everything = await client.get_prompt("seedream_ideas", {})
        second = await client.get_prompt("seedream_ideas", {"pick": "2"})
    listing = everything.messages[0].content
    assert isinstance(listing, TextContent)
    assert all(idea in listing.text for idea in EXAMPLE_PROMPTS)
    chosen = second.messages[0].content
    assert isinstance(chosen, TextContent)
    assert EXAMPLE_PROMPTS[1] in chosen.text
    assert EXAMPLE_PROMPTS[0] not in chosen.text
    assert "generate_image" in chosen.text
    # A user message, in the person's words: the model is asked, it does not promise.
    assert "I will" not in listing.text and "let me pick" in listing.text


@pytest.mark.parametrize("pick", ["9", "0", "abc", "2.5", "-1"])
async def test_prompt_ideas_refuse_a_pick_out_of_range(pick: str) -> None:
    from mcp.shared.exceptions import MCPError

    async with connect(Settings()) as client:
        with pytest.raises(MCPError, match=r"pick must be a number from 1 to 5"):
            await client.get_prompt("seedream_ideas", {"pick": pick})
