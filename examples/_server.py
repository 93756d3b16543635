"""How the examples start the server: the command, its arguments and its environment.

With ``WIRO_API_KEY`` set, the server uses Wiro (each image is a paid task). Without it, the
server runs against its built-in emulator (``serve --emulator``): no key, test pictures, nothing
paid. Either way it speaks MCP over stdio, as a host would start it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each example's calls wait at most this long for an image; the framework's own time limit per
# call is set above it (WAIT + MARGIN), so the client never gives up before the server answers.
WAIT = 30
MARGIN = 15

PROMPT = "A red paper lantern floating over a calm night lake, soft reflections, photorealistic"


def emulated() -> bool:
    return not os.environ.get("WIRO_API_KEY")


def command() -> tuple[str, list[str]]:
    """The server's command line: this Python when the package is installed beside the example,
    otherwise ``uv run`` in the project (an example with an environment of its own)."""
    serve = ["serve", "--emulator"] if emulated() else ["serve"]
    if importlib.util.find_spec("wiro_seedream_mcp") is not None:
        return sys.executable, ["-m", "wiro_seedream_mcp", *serve]
    uv = shutil.which("uv") or "uv"
    return uv, ["run", "--quiet", "--frozen", "--project", str(ROOT), "wiro-seedream-mcp", *serve]


def environment() -> dict[str, str]:
    """What the server is given: PATH and HOME for the basics, and every WIRO_* setting."""
    keep = ("PATH", "HOME", "SYSTEMROOT", "TMPDIR", "TEMP", "TMP", "UV_PYTHON_DOWNLOADS", "UV_CACHE_DIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env |= {name: value for name, value in os.environ.items() if name.startswith("WIRO_")}
    env["WIRO_WAIT_TIMEOUT"] = str(WAIT)
    env.setdefault("WIRO_LOG_LEVEL", "WARNING")
    return env


def where() -> str:
    return "the built-in emulator (no key, nothing paid)" if emulated() else "Wiro (one paid task)"
