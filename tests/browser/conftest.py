"""A test host for the MCP App in headless Chromium.

A loopback web server serves the host page (``host.html``), the ext-apps ``AppBridge`` bundled
by esbuild from the pinned npm package, and the view as the server gives it, under the CSP a host
builds from the resource's ``_meta.ui.csp``. The page embeds the view in a sandboxed iframe; the
view's tool calls come back to Python through a Playwright binding and go to this server (against
the emulator) over a real MCP client session that advertised MCP Apps.

Needs Chromium (Debian's ``chromium``, or ``WIRO_TEST_CHROMIUM``), Playwright for Python (the
``browser`` dependency group) and the npm tools in ``WIRO_TEST_APP_TOOLS``; without them the tests
skip, and in CI (``WIRO_TEST_REQUIRE_ALL``) they fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextResourceContents

from wiro_seedream_mcp.app import build_server
from wiro_seedream_mcp.config import Settings
from wiro_seedream_mcp.ui import VIEW_URI

from ..conftest import APPS_CLIENT
from ..nodetools import node_tool, unavailable

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Frame, Page

HERE = Path(__file__).parent
# What the test host offers the view: everything MCP Apps hosts commonly do.
HOST_CAPABILITIES: dict[str, Any] = {
    "openLinks": {},
    "serverTools": {},
    "downloadFile": {},
    "message": {"text": {}},
    "logging": {},
}


def chromium() -> str:
    found = (
        os.environ.get("WIRO_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not found:
        unavailable("no Chromium installed: `apt-get install chromium` (CI installs it)")
    assert found is not None
    if importlib.util.find_spec("playwright") is None:
        unavailable("playwright not installed: `uv sync --group browser` (CI installs every group)")
    return found


def frame_csp(csp: dict[str, Any]) -> str:
    """The Content-Security-Policy a host builds from ``_meta.ui.csp`` (the MCP Apps mapping:
    resource domains for scripts, styles, images, fonts and media; no connections, no frames)."""
    domains = " ".join(csp.get("resourceDomains", []))
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'unsafe-inline' {domains}".strip(),
            f"style-src 'self' 'unsafe-inline' {domains}".strip(),
            f"img-src 'self' data: {domains}".strip(),
            f"font-src 'self' data: {domains}".strip(),
            f"media-src 'self' data: {domains}".strip(),
            "connect-src 'none'",
            "frame-src 'none'",
            "object-src 'none'",
            "base-uri 'self'",
        ]
    )


@dataclass
class Pages:
    """What the loopback web server serves."""

    bridge: bytes
    view: str = ""
    csp: str = ""
    served: list[str] = field(default_factory=list)


def _handler(pages: Pages) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            pages.served.append(self.path)
            headers = {"Cache-Control": "no-store"}
            if self.path == "/host.html":
                body, kind = (HERE / "host.html").read_bytes(), "text/html; charset=utf-8"
            elif self.path == "/bridge.js":
                body, kind = pages.bridge, "text/javascript; charset=utf-8"
            elif self.path == "/view":
                body, kind = pages.view.encode(), "text/html; charset=utf-8"
                headers["Content-Security-Policy"] = pages.csp
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture(scope="session")
def bridge_script(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The ext-apps AppBridge as one browser script, bundled from the pinned npm package."""
    chromium()
    modules = node_tool("WIRO_TEST_APP_TOOLS", "the pinned ext-apps npm package and esbuild")
    out = tmp_path_factory.mktemp("bridge") / "bridge.js"
    subprocess.run(
        [
            str(modules / ".bin" / "esbuild"),
            str(HERE / "bridge_entry.mjs"),
            "--bundle",
            "--format=iife",
            "--global-name=HostBridge",
            f"--outfile={out}",
            "--log-level=warning",
        ],
        check=True,
        env={**os.environ, "NODE_PATH": str(modules)},
        timeout=120,
    )
    return out.read_bytes()


@pytest.fixture(scope="session")
def web(bridge_script: bytes) -> Iterator[tuple[Pages, str]]:
    pages = Pages(bridge=bridge_script)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(pages))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield pages, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
async def browser(web: tuple[Pages, str]) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium(), headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class ViewHost:
    """One host page with the view in it, and the MCP session its tool calls go to."""

    page: Page
    client: Client
    relayed: list[dict[str, Any]]
    problems: list[str]
    # Tools whose first call waits until the test releases it (to order the view's updates).
    held: dict[str, anyio.Event] = field(default_factory=dict)

    @property
    def view(self) -> Frame:
        frame = self.page.frame(name="view")
        assert frame is not None, "the view's iframe is not there"
        return frame

    async def log(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self.page.evaluate("window.hostLog")
        return found

    async def natural_size(self) -> tuple[int, int]:
        size: list[int] = await self.view.evaluate(
            "() => { const i = document.getElementById('image'); return [i.naturalWidth, i.naturalHeight]; }"
        )
        return size[0], size[1]


def _wire(result: CallToolResult) -> dict[str, Any]:
    dumped: dict[str, Any] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


class Hosts:
    """Opens the view the way a host does after a tool call."""

    def __init__(self, stack: AsyncExitStack, browser: Browser, pages: Pages, origin: str) -> None:
        self.stack, self.browser, self.pages, self.origin = stack, browser, pages, origin

    async def connect(self, settings: Settings) -> Client:
        client = Client(build_server(settings), extensions=[APPS_CLIENT])
        return await self.stack.enter_async_context(client)

    async def open(
        self,
        client: Client,
        tool: str,
        arguments: dict[str, Any],
        *,
        theme: str = "light",
        width: int = 640,
        csp: dict[str, Any] | None = None,
        capabilities: dict[str, Any] | None = None,
        hold: tuple[str, ...] = (),
    ) -> ViewHost:
        read = await client.read_resource(VIEW_URI)
        [content] = read.contents
        assert isinstance(content, TextResourceContents)
        declared = (content.meta or {})["ui"]["csp"]
        self.pages.view = content.text
        self.pages.csp = frame_csp(declared if csp is None else csp)
        result = await client.call_tool(tool, arguments)

        context = await self.browser.new_context(viewport={"width": width + 40, "height": 900})
        self.stack.push_async_callback(context.close)
        page = await context.new_page()
        problems: list[str] = []
        relayed: list[dict[str, Any]] = []
        held = {name: anyio.Event() for name in hold}
        waiting = dict(held)  # each held tool's first call only

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error" or "Content Security Policy" in message.text:
                problems.append(f"console {message.type}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

        async def relay(params: str) -> str:
            call = json.loads(params)
            relayed.append(call)
            gate = waiting.pop(call["name"], None)
            if gate is not None:
                await gate.wait()
            answer = await client.call_tool(call["name"], call.get("arguments") or {})
            return json.dumps(_wire(answer))

        await page.expose_function("relayCallTool", relay)
        await page.goto(f"{self.origin}/host.html")
        await page.evaluate(
            "(args) => window.startView(args)",
            {
                "input": arguments,
                "result": _wire(result),
                "theme": theme,
                "width": width,
                "capabilities": HOST_CAPABILITIES if capabilities is None else capabilities,
            },
        )
        return ViewHost(page=page, client=client, relayed=relayed, problems=problems, held=held)


@pytest.fixture
async def hosts(browser: Browser, web: tuple[Pages, str]) -> AsyncIterator[Hosts]:
    pages, origin = web
    async with AsyncExitStack() as stack:
        yield Hosts(stack, browser, pages, origin)


def artefacts(tmp_path: Path) -> Path:
    """Where screenshots go: ``WIRO_TEST_ARTEFACTS`` when set (CI keeps them), else the test's
    temporary folder."""
    folder = Path(os.environ.get("WIRO_TEST_ARTEFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
