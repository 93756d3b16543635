"""A server forked for a test behaves as a started one: its output, exit code, signals and death."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from .spawn import CAN_FORK, forked_command, forked_servers
from .waiting import until

pytestmark = pytest.mark.skipif(not CAN_FORK, reason="no pidfd here: every child server is started afresh")


INITIALIZE = (
    b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",'
    b' "capabilities": {}, "clientInfo": {"name": "spawn-test", "version": "0"}}}\n'
)


def test_the_output_and_exit_code_are_the_servers() -> None:
    done = subprocess.run(forked_command("--version"), capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.startswith("wiro-seedream-mcp ")) == (0, True), done
    refused = subprocess.run(
        forked_command("serve", "--port", "x"), capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2
    assert "--port" in refused.stderr and refused.stdout == ""


def emulated_server(state: Path) -> subprocess.Popen[bytes]:
    """A forked ``serve --emulator`` on pipes, once it has answered ``initialize``."""
    server = subprocess.Popen(
        forked_command("serve", "--emulator"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "WIRO_STATE_DIR": str(state)},
    )
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(INITIALIZE)
    server.stdin.flush()
    assert b'"result"' in server.stdout.readline()  # it serves, its signal handlers set
    return server


def test_signals_reach_the_server_and_a_killed_launcher_takes_it_along(tmp_path: Path) -> None:
    gentle = emulated_server(tmp_path)
    gentle.send_signal(signal.SIGTERM)  # stdin stays open: the signal alone ends it
    gentle.wait(timeout=20)
    assert gentle.stderr is not None
    # The server heard SIGTERM itself (its own words), and its exit code came back.
    assert b"SIGTERM received" in gentle.stderr.read()
    assert gentle.returncode == 0
    assert forked_servers() == set()

    killed = emulated_server(tmp_path)
    killed.kill()
    assert killed.wait(timeout=20) == -signal.SIGKILL
    until(lambda: forked_servers() == set())

    # A server that dies of a signal is seen to, as a started one would be.
    dying = emulated_server(tmp_path)
    [server] = forked_servers()
    os.kill(server, signal.SIGKILL)
    assert dying.wait(timeout=20) == -signal.SIGKILL
