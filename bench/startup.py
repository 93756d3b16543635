"""How long a host waits for this server, against the floor of a trivial MCPServer and against
this server without its MCP App, side by side.

Run with ``uv run python bench/startup.py``. Each server is spawned over stdio as a host would,
and timed from spawn to the answer of ``tools/list``; the median of several starts is printed,
with the ratio to the trivial server and what the MCP App adds (its page is read only when a host
asks for it, so a start should not pay for it).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from wiro_seedream_mcp.app import build_server
from wiro_seedream_mcp.config import Settings

STARTS = 15

TRIVIAL = """
from mcp.server.mcpserver import MCPServer

server = MCPServer("trivial")


@server.tool()
async def echo(text: str) -> str:
    return text


server.run("stdio")
"""

# This server from the same launcher, with and without its MCP App: the only difference. Unlike
# the command, this script imports with the collector on.
SERVER = """
import sys

from wiro_seedream_mcp.app import build_server

build_server(app=sys.argv[1] == "app").run("stdio")
"""


# What the MCP App adds, part by part, since a spawn's own noise (tens of ms here) hides it:
# the modules only a server with the app imports (their own import time, from -X importtime in
# fresh interpreters), and building the server and answering tools/list, with and without the app,
# measured in pairs in one interpreter.
APP_MODULES = (
    "mcp.server.apps",
    "wiro_seedream_mcp.ui",
    "wiro_seedream_mcp.ui.page",
    "wiro_seedream_mcp.ui.tools",
)
IMPORTS = 15
# As a host runs it: compiled modules are kept (a run with PYTHONDONTWRITEBYTECODE compiles every
# module on every start, which is not what a host sees).
CACHED = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
BUILD = "from wiro_seedream_mcp.app import build_server; build_server()"
PAIRS = 60


def app_import_ms() -> float:
    """Self time of importing the app's modules, in a fresh interpreter, in ms."""
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "from wiro_seedream_mcp.app import build_server; build_server()",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=CACHED,
    )
    total = 0
    for line in done.stderr.splitlines():
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] in APP_MODULES:
            total += int(parts[0])
    return total / 1000


async def build_and_list_ms(app: bool) -> float:
    began = time.perf_counter()
    async with Client(build_server(Settings(), app=app), mode="legacy") as client:
        await client.list_tools()
    return (time.perf_counter() - began) * 1000


async def app_parts() -> None:
    app_import_ms()  # compiles what is not compiled yet
    imports = statistics.median(app_import_ms() for _ in range(IMPORTS))
    await build_and_list_ms(True)  # the first build pays the imports; they are counted above
    await build_and_list_ms(False)
    added = []
    for _ in range(PAIRS):
        bare = await build_and_list_ms(False)
        added.append(await build_and_list_ms(True) - bare)
    low, mid, high = statistics.quantiles(added, n=4)
    print("what the MCP App adds to a start:")
    print(f"  importing its modules (median of {IMPORTS} fresh interpreters):  {imports:.1f} ms")
    print(f"  building and answering tools/list (median of {PAIRS} pairs):  {mid:+.1f} ms")
    print(f"    (quartiles {low:+.1f} .. {high:+.1f} ms)")
    print(f"  in all: {imports + mid:.1f} ms (its page is read only when a host asks for it)")


async def time_start(command: str, args: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    async with Client(StdioServerParameters(command=command, args=args, env=env), mode="legacy") as client:
        await client.list_tools()
        return time.perf_counter() - began


def cpu_to_exit(command: list[str], env: dict[str, str]) -> float:
    """CPU seconds of a server started with stdin closed: its whole life, start to exit."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, env=env, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


async def main() -> None:
    script = Path(sys.executable).parent / "wiro-seedream-mcp"
    with (
        tempfile.TemporaryDirectory() as state,
        tempfile.NamedTemporaryFile("w", suffix=".py") as trivial,
        tempfile.NamedTemporaryFile("w", suffix=".py") as server,
    ):
        trivial.write(TRIVIAL)
        trivial.flush()
        server.write(SERVER)
        server.flush()
        ours_env = {"WIRO_API_KEY": "k", "WIRO_STATE_DIR": state, "WIRO_LOG_LEVEL": "WARNING"}
        floor, ours, with_app, no_app = [], [], [], []
        for _ in range(STARTS):  # interleaved, so all see the same machine
            floor.append(await time_start(sys.executable, [trivial.name], {}))
            ours.append(await time_start(str(script), [], ours_env))
            with_app.append(await time_start(sys.executable, [server.name, "app"], ours_env))
            no_app.append(await time_start(sys.executable, [server.name, "none"], ours_env))
    low, mine = statistics.median(floor), statistics.median(ours)
    app, plain = statistics.median(with_app), statistics.median(no_app)
    print(f"spawn -> tools/list answered, median of {STARTS} starts")
    print(f"  trivial MCPServer (one tool):          {low:.3f} s")
    print(f"  wiro-seedream-mcp (the command):       {mine:.3f} s")
    print(f"  this server without / with its app:    {plain:.3f} s / {app:.3f} s")
    print(f"  ratio to trivial: {mine / low:.2f}x   (added by this server: {mine - low:+.3f} s)")
    print(f"  app / no app: {app / plain:.3f}x   (added by the MCP App: {(app - plain) * 1000:+.1f} ms)")
    # The command imports with the collector off and freezes what it made (cli.long_lived); the
    # script builds the same server with the collector on.
    print(
        f"  the command / the same server from a script: {mine / app:.2f}x   ({(mine - app) * 1000:+.0f} ms)"
    )
    with tempfile.TemporaryDirectory() as state, tempfile.NamedTemporaryFile("w", suffix=".py") as server:
        server.write(SERVER)
        server.flush()
        env = {**CACHED, "WIRO_API_KEY": "k", "WIRO_STATE_DIR": state, "WIRO_LOG_LEVEL": "WARNING"}
        command, scripted = [], []
        for _ in range(STARTS):  # interleaved
            command.append(cpu_to_exit([str(script)], env))
            scripted.append(cpu_to_exit([sys.executable, server.name, "app"], env))
    cpu, cpu_scripted = statistics.median(command), statistics.median(scripted)
    print(f"CPU from start to exit (stdin closed), median of {STARTS}")
    print(f"  the command / the same server from a script: {cpu:.3f} s / {cpu_scripted:.3f} s")
    print(f"  ratio: {cpu / cpu_scripted:.2f}x")

    await app_parts()


if __name__ == "__main__":
    anyio.run(main)
