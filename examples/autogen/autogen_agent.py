"""Seedream images from AutoGen, through autogen-ext's McpWorkbench (autogen-ext 0.7.5).

    cd examples/autogen && uv run python autogen_agent.py

autogen-ext 0.7.5 needs the MCP SDK 1.x, so this example has an environment of its own (this
folder's pyproject.toml) and starts the server from the project above with `uv run`.

AutoGen gives up on a call after 5 s by default (StdioServerParams.read_timeout_seconds); an image
takes longer, so the limit is set above the server's wait here. At 5 s the call would fail, but
the paid task runs on and the same call again returns it. McpWorkbench turns a resource_link
block into an error, so the server is started with WIRO_RESOURCE_LINKS=off: the image's link
comes as text, which is what the agent reads.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from autogen_ext.tools.mcp import McpWorkbench, StdioServerParams

ROOT = Path(__file__).resolve().parents[2]
WAIT, MARGIN = 30, 15
PROMPT = "A red paper lantern floating over a calm night lake, soft reflections, photorealistic"


def server() -> StdioServerParams:
    emulated = not os.environ.get("WIRO_API_KEY")
    keep = ("PATH", "HOME", "SYSTEMROOT", "TMPDIR", "TEMP", "TMP", "UV_PYTHON_DOWNLOADS", "UV_CACHE_DIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env |= {name: value for name, value in os.environ.items() if name.startswith("WIRO_")}
    env |= {"WIRO_WAIT_TIMEOUT": str(WAIT), "WIRO_RESOURCE_LINKS": "off", "WIRO_PREVIEW": "off"}
    env.setdefault("WIRO_LOG_LEVEL", "WARNING")
    args = ["run", "--quiet", "--frozen", "--project", str(ROOT), "wiro-seedream-mcp", "serve"]
    print("server:", "the built-in emulator (no key, nothing paid)" if emulated else "Wiro (one paid task)")
    return StdioServerParams(
        command=shutil.which("uv") or "uv",
        args=[*args, "--emulator"] if emulated else args,
        env=env,
        read_timeout_seconds=WAIT + MARGIN,
    )


async def main() -> int:
    async with McpWorkbench(server()) as bench:
        print("tools:", ", ".join(tool["name"] for tool in await bench.list_tools()))
        result = await bench.call_tool("generate_image", {"prompt": PROMPT, "size": "1280x720"})
    print("error:" if result.is_error else "answer:", result.to_text())
    return 1 if result.is_error else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
