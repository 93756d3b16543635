"""The command a test runs to start the server in a child process.

By default a child server is forked from a parent that has imported the server once
(``tests/forkserver.py``), one such parent a test process: the child is the real server in a
process of its own, started in milliseconds instead of most of a second of imports.
``WIRO_TEST_EXEC=1`` (as CI's full run sets) starts every child with ``python -m
wiro_seedream_mcp`` instead, and a test that is about how the server starts asks for that
with ``fresh=True``.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from mcp import StdioServerParameters

SCRIPT = Path(sys.executable).parent / ("wiro-seedream-mcp.exe" if os.name == "nt" else "wiro-seedream-mcp")
FORKSERVER = Path(__file__).with_name("forkserver.py")

# The fork server waits on its children with pidfds (Linux 5.3 and later).
CAN_FORK = hasattr(os, "pidfd_open")
_lock = threading.Lock()


@dataclass
class _Parent:
    """This test process's fork server and its socket, once started."""

    process: subprocess.Popen[bytes] | None = None
    path: str = ""


_parent = _Parent()


def server_command(*args: str, fresh: bool = False) -> list[str]:
    """``python -m wiro_seedream_mcp ARGS``, or its stand-in forked from the preloaded parent."""
    if fresh or os.environ.get("WIRO_TEST_EXEC") == "1" or not CAN_FORK:
        return [sys.executable, "-m", "wiro_seedream_mcp", *args]
    return forked_command(*args)


def stdio_params(env: dict[str, str], *args: str) -> StdioServerParameters:
    """What an MCP client starts the server with over stdio, as :func:`server_command` says."""
    command, *rest = server_command(*args)
    return StdioServerParameters(command=command, args=rest, env=env)


def forked_command(*args: str) -> list[str]:
    """The launcher of a server forked from this test process's fork server."""
    return [sys.executable, "-I", "-S", str(FORKSERVER), _socket(), *args]


def forked_servers() -> set[int]:
    """The live children of this test process's fork server."""
    if _parent.process is None:
        return set()
    parent = str(_parent.process.pid)
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if fields and fields[1] == parent and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def _socket() -> str:
    with _lock:
        if _parent.process is None or _parent.process.poll() is not None:
            path = os.path.join(tempfile.mkdtemp(prefix="wiro-fork-"), "socket")
            process = subprocess.Popen(
                [sys.executable, str(FORKSERVER), "--serve", path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert process.stdout is not None
            ready = process.stdout.readline()
            assert ready == b"ready\n", f"the fork server did not start: {ready!r}"
            atexit.register(_stop, process)
            _parent.process, _parent.path = process, path
        return _parent.path


def _stop(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
