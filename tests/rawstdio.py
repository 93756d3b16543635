"""The server as a bare subprocess, spoken to in raw JSON-RPC lines, to see exactly what it writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

from .spawn import SCRIPT, server_command

__all__ = ["SCRIPT", "RawServer"]


class RawServer:
    def __init__(self, env: dict[str, str], *, fresh: bool = False) -> None:
        self.proc = subprocess.Popen(
            server_command(fresh=fresh),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        self.lines: list[str] = []
        self._next_id = 0

    def send(self, method: str, params: dict[str, Any] | None = None, *, notify: bool = False) -> int:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        if not notify:
            self._next_id += 1
            message["id"] = self._next_id
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        return self._next_id

    def write_line(self, line: str) -> None:
        """One line as it is, whatever it holds."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def initialize(self) -> dict[str, Any]:
        request = self.send(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "0"},
            },
        )
        answer = self.response(request)
        self.send("notifications/initialized", notify=True)
        return answer

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the server closed stdout"
        self.lines.append(line)
        message: dict[str, Any] = json.loads(line)
        return message

    def response(self, request_id: int) -> dict[str, Any]:
        while True:
            message = self.read()
            if message.get("id") == request_id and "method" not in message:
                return message

    def notifications(self, method: str) -> list[dict[str, Any]]:
        found = [json.loads(line) for line in self.lines]
        return [m for m in found if m.get("method") == method]

    def close(self, timeout: float = 20) -> tuple[int, str]:
        """Close stdin (what a host does when it quits), wait for the exit; (exit code, stderr)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self.lines.extend(self.proc.stdout.readlines())
        return self.proc.returncode, self.proc.stderr.read()

    def stop(self, how: str, timeout: float = 10) -> tuple[int, str, float]:
        """End the server the way a host does: ``"eof"`` closes stdin, ``"SIGTERM"`` or ``"SIGINT"``
        sends that signal (stdin stays open, as a host that signals first leaves it).
        (exit code, stderr, seconds it took to exit); a server still running after ``timeout`` is
        killed, and the test fails."""
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        began = time.monotonic()
        if how == "eof":
            self.proc.stdin.close()
        else:
            self.proc.send_signal(getattr(signal, how))
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the server did not exit within {timeout} s of {how}") from None
        took = time.monotonic() - began
        self.lines.extend(self.proc.stdout.readlines())
        return self.proc.returncode, self.proc.stderr.read(), took
