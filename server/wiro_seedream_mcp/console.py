"""Lines for the person at a terminal (``demo``, ``doctor``, ``emulator``). Never used by ``serve``,
whose stdout carries MCP messages only."""

from __future__ import annotations

import errno
import socket


def say(text: str = "") -> None:
    print(text, flush=True)


class PortInUseError(Exception):
    """The address is taken; the message says by what option to pick another."""


def listening_socket(host: str, port: int, option: str) -> socket.socket:
    """A socket bound to ``host``:``port`` and listening, made before anything says it serves, so a
    busy port is one clear line (naming ``option``, which changes it) instead of a server's traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} is already in use (another server, or this one still running): "
                f"pick a free one with {option} PORT"
            ) from None
        why = exc.strerror or exc
        raise PortInUseError(f"cannot listen on {host}:{port} ({why}): see {option}") from None
    sock.set_inheritable(True)
    return sock
