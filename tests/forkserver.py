"""A parent that has imported the server once and forks a child server for each test that asks.

Each server a test starts in a child process would otherwise import the MCP SDK and the server
afresh: 0.6 to 0.8 s of CPU each, for about a hundred children a run. Forked from a parent that
has done that once, a child starts in a few milliseconds and is still the real server in a
process of its own, with the test's pipes as its stdin, stdout and stderr, its environment, its
working folder and its arguments, signalled and exiting as a started one is.

Two roles, in this one file that imports nothing of the project at its top:

``python tests/forkserver.py --serve SOCKET``
    The parent: imports the server, listens on SOCKET and forks a child per connection. It
    ends, killing its children, when its stdin closes (the test process that started it went).
``python -I -S tests/forkserver.py SOCKET ARG...``
    The launcher a test starts instead of ``python -m wiro_seedream_mcp ARG...``: it hands its
    stdin, stdout and stderr, environment and folder to the parent, passes on every signal it
    gets to the child, and exits as the child did (its code, or the same signal). If the launcher
    is killed outright (SIGKILL), the parent kills the child, as a killed server dies.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import signal
import socket
import sys
from typing import Any, NoReturn

# Signals a test (or a host) may send: each is passed on to the child.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def launch(path: str, args: list[str]) -> None:
    pending: list[int] = []
    child: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        if child:
            os.kill(child[0], signum)
        else:
            pending.append(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    payload = json.dumps({"argv": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    fds = array.array("i", [0, 1, 2])
    sock.sendmsg([len(payload).to_bytes(4, "big")], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    sock.sendall(payload)
    # The child holds the pipes now: this process keeps none open, so the test sees the end of
    # the child's output when the child ends, and the child sees the end of its input.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    answers = sock.makefile("rb")
    child.append(int(answers.readline()))
    for early in pending:
        os.kill(child[0], early)
    line = answers.readline()
    code = int(line) if line.strip() else 70
    if code < 0:
        if -code != signal.SIGKILL:
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


def serve(path: str) -> None:
    # Run as a script, this file's folder leads sys.path, and tests/http would hide the standard
    # library's http package: the server is imported as an installed package is.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    import gc
    import selectors
    import threading

    # What serve, serve --http, serve --emulator and the emulator import, so no child does.
    import uvicorn  # noqa: F401

    import wiro_seedream_mcp.app
    import wiro_seedream_mcp.cli
    import wiro_seedream_mcp.emulator
    import wiro_seedream_mcp.http  # noqa: F401

    assert threading.active_count() == 1, "the fork server must not run threads"
    # Ctrl-C on a test run reaches this process too: it ends when its test process does (its
    # stdin closes), and its children take SIGINT as a started server does (see become).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.collect()
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, ("accept", 0))
    selector.register(0, selectors.EVENT_READ, ("parent", 0))
    # Each child's launcher connection and its pidfd, by pid.
    children: dict[int, tuple[socket.socket, int]] = {}
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        for key, _ in selector.select():
            what, pid = key.data
            if what == "parent":
                if os.read(0, 4096):
                    continue
                for pid in children:
                    kill(pid)
                return
            if what == "accept":
                conn, _ = listener.accept()
                pid = fork(conn, [listener.fileno(), selector.fileno(), *fds_of(children)])
                pidfd = os.pidfd_open(pid)
                children[pid] = (conn, pidfd)
                conn.sendall(f"{pid}\n".encode())
                selector.register(conn, selectors.EVENT_READ, ("launcher", pid))
                selector.register(pidfd, selectors.EVENT_READ, ("exited", pid))
            elif pid not in children:  # ended earlier in this same round
                continue
            elif what == "launcher":
                conn, _pidfd = children[pid]
                if not conn.recv(16):  # the launcher is gone without waiting for its child
                    kill(pid)
                    selector.unregister(conn)
            else:
                conn, pidfd = children.pop(pid)
                _, status = os.waitpid(pid, 0)
                selector.unregister(pidfd)
                os.close(pidfd)
                with contextlib.suppress(KeyError):
                    selector.unregister(conn)
                with contextlib.suppress(OSError):
                    conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
                conn.close()


def fds_of(children: dict[int, tuple[socket.socket, int]]) -> list[int]:
    return [fd for conn, pidfd in children.values() for fd in (conn.fileno(), pidfd)]


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def receive(conn: socket.socket) -> tuple[list[int], dict[str, Any]]:
    conn.settimeout(10)
    fds = array.array("i")
    head, ancillary, _flags, _addr = conn.recvmsg(4, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    size = int.from_bytes(head, "big")
    body = b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("the launcher went before it said what to run")
        body += chunk
    conn.settimeout(None)
    return list(fds), json.loads(body)


def fork(conn: socket.socket, inherited: list[int]) -> int:
    fds, request = receive(conn)
    pid = os.fork()
    if pid == 0:
        become(conn, inherited, fds, request)
    for fd in fds:
        os.close(fd)
    return pid


def become(conn: socket.socket, inherited: list[int], fds: list[int], request: dict[str, Any]) -> NoReturn:
    """In the forked child: take the launcher's pipes, environment and folder, then run."""
    try:
        os.setsid()
        for fd in inherited:
            os.close(fd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        conn.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
    except BaseException:
        os._exit(71)
    run_server(request["argv"])


def run_server(argv: list[str]) -> NoReturn:
    """Run the command line as ``python -m wiro_seedream_mcp`` would, then end the process."""
    import atexit
    import io
    import threading
    import traceback

    import wiro_seedream_mcp.__main__ as entry
    from wiro_seedream_mcp.cli import main

    if os.environ.get("PYTHONUNBUFFERED"):
        for name, fd in (("stdout", 1), ("stderr", 2)):
            stream = getattr(sys, name)
            raw = io.FileIO(fd, "w", closefd=False)
            setattr(
                sys,
                name,
                io.TextIOWrapper(raw, encoding=stream.encoding, errors=stream.errors, write_through=True),
            )
    sys.argv = [entry.__file__ or "wiro_seedream_mcp", *argv]
    code: int | str | None = 0
    try:
        main()
    except SystemExit as done:
        code = done.code
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        traceback.print_exc()
        code = 1
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a reader gone is not this process's failure
            stream.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        launch(sys.argv[1], sys.argv[2:])
