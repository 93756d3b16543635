"""``wiro-seedream-mcp demo``: one real generation, end to end, as a host would do it.

It starts this server as a subprocess, talks MCP to it over stdio, calls ``generate_image``
and fetches the image it links. With no credentials it runs against the emulator, started
for the occasion; with ``WIRO_API_KEY`` set it runs against Wiro (and costs one task).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio

from .config import ConfigError, Settings
from .console import say
from .emulator.pictures import png_size
from .wiro.seedream import DEFAULT_PROMPT, SIZES


def run_demo(*, prompt: str | None, size: str, out: str | None) -> int:
    if size not in SIZES:
        say(f"--size must be one of {', '.join(SIZES)}")
        return 2
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        say(f"Configuration error: {exc}")
        return 2
    out_dir = (Path(out) if out else Path(tempfile.gettempdir()) / "wiro-seedream-demo").resolve()
    with ExitStack() as stack:
        env = {name: value for name, value in os.environ.items() if name.startswith("WIRO_")}
        # The server saves the image itself, as it would for a host with WIRO_OUTPUT_DIR set.
        env["WIRO_OUTPUT_DIR"] = str(out_dir)
        if settings.has_credentials and _is_wiro(settings.base_url):
            say(f"Using Wiro at {settings.base_url} (WIRO_API_KEY is set): this runs one paid task.")
        elif settings.has_credentials:
            say(f"Using the API at {settings.base_url} (WIRO_API_KEY is set): this runs one task there.")
        else:
            from .emulator import EmulatorServer, Project, WiroEmulator

            project = Project()
            server = stack.enter_context(EmulatorServer(WiroEmulator(project)))
            env |= {
                "WIRO_API_KEY": project.api_key,
                "WIRO_API_SECRET": project.api_secret or "",
                "WIRO_API_BASE_URL": server.base_url,
                "WIRO_SOCKET_URL": "",  # derived from the emulator's base URL
            }
            say(f"No WIRO_API_KEY set: using the built-in Wiro emulator on {server.base_url}.")
        if not _is_wiro(env.get("WIRO_API_BASE_URL") or settings.base_url):
            # Tasks anywhere but Wiro (an emulator, most likely) and their local links stay out of
            # the real task journal.
            env["WIRO_STATE_DIR"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="wiro-demo-"))
        env.setdefault("WIRO_LOG_LEVEL", "WARNING")
        return anyio.run(_session, env, prompt or DEFAULT_PROMPT, size, out_dir)


async def _session(env: dict[str, str], prompt: str, size: str, out_dir: Path) -> int:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=["-m", "wiro_seedream_mcp", "serve"], env=env)
    started = time.monotonic()
    async with Client(params) as client:
        tools = await client.list_tools()
        say(f"MCP server started over stdio; tools: {', '.join(t.name for t in tools.tools)}")
        say(f'Calling generate_image(prompt="{prompt[:60]}...", size="{size}")')

        async def progress(progress: float, total: float | None, message: str | None) -> None:
            say(f"  progress {progress:g}/{total or '?'} {message or ''}".rstrip())

        result = await client.call_tool(
            "generate_image", {"prompt": prompt, "size": size}, progress_callback=progress
        )
    elapsed = time.monotonic() - started
    data: dict[str, Any] = result.structured_content or {}
    say()
    previews = []
    for block in result.content:
        if block.type == "text":
            say(block.text)
        elif block.type == "image":
            previews.append(f"{block.mime_type}, {len(block.data) // 1024} KB of base64")
    say()
    if not data.get("taskid"):
        say(f"No task was started ({elapsed:.1f} s): the answer above says why.")
        return 1
    say(f"task id:  {data.get('taskid')}")
    say(f"status:   {data.get('status')} (succeeded: {data.get('succeeded')})")
    if result.is_error or not data.get("succeeded"):
        say(f"The task did not produce an image ({elapsed:.1f} s).")
        return 1
    output = data["outputs"][0]
    say(f"image:    {output['url']}")
    if not await _check_url(output["url"]):
        return 1
    if previews:
        say(f"preview:  {previews[0]} (shown inline by hosts that display images)")
    if not output.get("path"):
        why = "; ".join(data.get("warnings") or []) or "the server did not say why"
        say(f"The image was made but NOT saved in {out_dir}: {why}")
        say(f"It is at the link above for now. Choose a folder you can write with --out ({elapsed:.1f} s).")
        return 1
    saved = Path(output["path"])
    dims = png_size(await anyio.Path(saved).read_bytes())
    say(f"saved:    {saved}" + (f" (PNG {dims[0]}x{dims[1]})" if dims else ""))
    say(f"Done in {elapsed:.1f} s. Open the saved file to look at the image.")
    return 0


def _is_wiro(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    return host == "wiro.ai" or host.endswith(".wiro.ai")


async def _check_url(url: str) -> bool:
    """Fetch the image URL as a person's browser would, and check it serves a PNG."""
    import httpx2 as httpx

    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(url)
    dims = png_size(response.content)
    if response.status_code != 200 or dims is None:
        say(f"The image URL answered HTTP {response.status_code}, not a PNG.")
        return False
    say(f"fetched:  PNG {dims[0]}x{dims[1]}, {len(response.content)} bytes, from the URL")
    return True
