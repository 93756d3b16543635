"""The MCP App at the protocol level: what a client that renders MCP Apps sees, what every other
client keeps seeing, the view's resource and CSP, and the app-only tools, against the emulator."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.server.apps import APP_MIME_TYPE
from mcp.types import ImageContent, TextResourceContents
from PIL import Image

from wiro_seedream_mcp.app import build_server
from wiro_seedream_mcp.config import Settings
from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.ui import VIEW_URI, VIEWED_TOOLS, WIRO_CDN, image_origins, page
from wiro_seedream_mcp.wiro.seedream import RUN_PATH, SIZES

from .conftest import TOOL_NAMES, connect, settings_for
from .test_tools import RUNNING, mode, structured, text_of

pytestmark = pytest.mark.anyio
__all__ = ["mode"]

APP_TOOLS = ["app_task", "app_tasks", "app_image"]
VENDOR = Path(page.__file__).parent / "vendor"


def _dump(tools: list[Any]) -> list[dict[str, Any]]:
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]


async def test_an_apps_client_sees_the_view_on_three_tools(emulator: EmulatorServer, mode: str) -> None:
    async with connect(settings_for(emulator), mode, apps=True) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert sorted(tools) == sorted([*TOOL_NAMES, *APP_TOOLS])
    for name in VIEWED_TOOLS:
        assert (tools[name].meta or {})["ui"] == {"resourceUri": VIEW_URI}, name
    for name in ("kill_task", "cancel_task", "estimate_cost"):
        assert "ui" not in (tools[name].meta or {}), name
    for name in APP_TOOLS:
        assert (tools[name].meta or {})["ui"] == {"resourceUri": VIEW_URI, "visibility": ["app"]}, name


async def test_other_clients_see_the_server_as_without_the_app(emulator: EmulatorServer, mode: str) -> None:
    settings = settings_for(emulator)
    async with connect(settings, mode) as client:
        tools = (await client.list_tools()).tools
        resources = (await client.list_resources()).resources
        refused = await client.call_tool("app_task", {"taskid": "1"})
    async with Client(build_server(settings, app=False), mode=mode) as bare:
        bare_tools = (await bare.list_tools()).tools
        bare_resources = (await bare.list_resources()).resources
    assert _dump(tools) == _dump(bare_tools)
    assert [str(r.uri) for r in resources] == [str(r.uri) for r in bare_resources]
    assert not any(str(r.uri).startswith("ui://") for r in resources)
    assert refused.is_error
    assert "Unknown tool: app_task" in text_of(refused)
    assert emulator.emulator.requests == []


async def test_the_view_is_one_self_contained_page_with_a_narrow_csp(emulator: EmulatorServer) -> None:
    async with connect(settings_for(emulator), apps=True) as client:
        read = await client.read_resource(VIEW_URI)
        listed = (await client.list_resources()).resources
    assert VIEW_URI in [str(r.uri) for r in listed]
    [content] = read.contents
    assert isinstance(content, TextResourceContents)
    assert content.mime_type == APP_MIME_TYPE
    assert (content.meta or {})["ui"] == {
        "csp": {"resourceDomains": [WIRO_CDN, emulator.origin]},
        "prefersBorder": True,
    }
    html = content.text
    assert html.startswith("<!doctype html>")
    # Nothing is fetched: no external script, style, font, import or frame.
    assert not re.search(r"<(script|link|iframe)[^>]+(src|href)=", html, re.IGNORECASE)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", html)
    assert not re.search(r"\bimport\s*\(|\bimport\s*[{*\w][^;]*\sfrom\s*['\"]", html)
    # The vendored client is in it, whole, and the eight documented sizes.
    client_source = (VENDOR / "app-with-deps.js").read_text(encoding="utf-8")
    assert client_source[: client_source.rindex("export{")] in html
    assert f"const SIZES = {json.dumps(list(SIZES))};" in html


def test_the_csp_names_the_cdn_and_the_configured_api_only() -> None:
    assert image_origins(Settings()) == [WIRO_CDN, "https://api.wiro.ai"]
    assert image_origins(Settings(base_url="http://127.0.0.1:8765/v1")) == [WIRO_CDN, "http://127.0.0.1:8765"]


def test_the_client_is_inlined_as_an_object_of_its_exports() -> None:
    module = "const a=1;function b(){}\nexport{a as App,b};"
    assert page.inline_module(module) == "const a=1;function b(){}\n\nconst McpApps = {App: a, b: b};\n"
    with pytest.raises(ValueError, match="export list"):
        page.inline_module("const a = 1;")


def test_the_vendored_client_is_the_recorded_version() -> None:
    record = json.loads((VENDOR / "ext-apps.json").read_text())
    data = (VENDOR / "app-with-deps.js").read_bytes()
    assert record["package"] == "@modelcontextprotocol/ext-apps"
    assert re.fullmatch(r"\d+\.\d+\.\d+", record["version"])
    assert hashlib.sha256(data).hexdigest() == record["sha256"]
    assert "MIT License" in (VENDOR / "LICENSE").read_text()


def test_the_vendored_client_is_byte_identical_to_the_published_one() -> None:
    tools = os.environ.get("WIRO_TEST_APP_TOOLS")
    if not tools:
        pytest.skip("WIRO_TEST_APP_TOOLS (node_modules with the pinned ext-apps) is not set")
    record = json.loads((VENDOR / "ext-apps.json").read_text())
    installed = Path(tools) / record["package"]
    assert json.loads((installed / "package.json").read_text())["version"] == record["version"]
    assert (installed / record["file"]).read_bytes() == (VENDOR / "app-with-deps.js").read_bytes()


async def test_app_task_gives_inputs_stage_and_the_stop_that_applies(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(timings=RUNNING)
    async with connect(settings_for(server, wait_timeout=0), apps=True) as client:
        started = structured(
            await client.call_tool("generate_image", {"prompt": "a red kite", "size": "1280x720", "seed": 7})
        )
        running = structured(await client.call_tool("app_task", {"taskid": started["taskid"]}))
        await client.call_tool("kill_task", {"taskid": started["taskid"]})
        ended = structured(await client.call_tool("app_task", {"taskid": started["taskid"]}))
    assert running["parameters"]["prompt"] == "a red kite"
    assert running["parameters"]["size"] == "1280x720"
    assert running["parameters"]["seed"] == 7
    assert running["parameters"]["watermark"] is False  # as generate_image takes it, not Wiro's "false"
    assert running["stop"] == "kill_task"
    assert not running["done"]
    assert running["stage"].startswith("generating")
    assert 20 <= running["progress"] < 100
    assert ended["done"]
    assert ended["stop"] is None


async def test_app_task_offers_cancel_while_queued(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory(timings=Timings(queue=60, prepare=1, generate=1, postprocess=1))
    async with connect(settings_for(server, wait_timeout=0), apps=True) as client:
        started = structured(await client.call_tool("generate_image", {"prompt": "x"}))
        queued = structured(await client.call_tool("app_task", {"taskid": started["taskid"]}))
    assert queued["stop"] == "cancel_task"
    assert queued["stage"] == "queued"


async def test_app_image_gives_the_full_image_and_app_tasks_the_costs(emulator: EmulatorServer) -> None:
    async with connect(settings_for(emulator), apps=True) as client:
        harbour = {"prompt": "a harbour", "size": "1152x864"}
        done = structured(await client.call_tool("generate_image", harbour))
        first = {"taskid": done["taskid"], "name": done["outputs"][0]["name"]}
        image = await client.call_tool("app_image", first)
        gallery = structured(await client.call_tool("app_tasks", {}))
        missing = await client.call_tool("app_image", {"taskid": done["taskid"], "name": "9.png"})
    [block] = image.content
    assert isinstance(block, ImageContent)
    with Image.open(io.BytesIO(base64.b64decode(block.data))) as picture:
        assert picture.size == (1152, 864)
    assert len(base64.b64decode(block.data)) > 0
    [row] = gallery["tasks"]
    assert row["taskid"] == done["taskid"]
    assert row["totalcost"] == done["totalcost"] > 0
    assert row["parameters"]["prompt"] == "a harbour"
    assert gallery["spent_today"] == pytest.approx(done["totalcost"])
    assert missing.is_error
    assert "has no output '9.png'" in text_of(missing)
    assert emulator.emulator.count(RUN_PATH) == 1
