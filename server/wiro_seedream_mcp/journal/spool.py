"""Journal writes the database did not take, kept on this machine until it takes them.

A write to a shared journal (PostgreSQL) can fail while a paid task is in flight: the database
restarts, a table is locked past the statement time-out, the network drops. Such a write is not
dropped: it is kept here, in order, and written before anything else once the database answers
again. Each process keeps its writes in a file of its own in the state folder (owner-only, one
JSON object a line), locked for as long as the process lives; a file whose process is gone
(a crash, a kill) is taken over by the next process that opens the journal, so a restart loses
nothing either. Without a state folder the writes are kept in memory only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "journal-spool-"
SUFFIX = ".jsonl"


def _try_lock(fd: int) -> bool:
    """An exclusive lock on the open file, without waiting; False when another process holds it."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _read(fd: int) -> list[dict[str, Any]]:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    kept = []
    for line in b"".join(chunks).splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash while it was written
        if isinstance(item, dict):
            kept.append(item)
    return kept


class Spool:
    """This process's kept writes (``pending``), mirrored to its file when there is a folder."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.pending: list[dict[str, Any]] = []
        self._fd: int | None = None
        self.path: Path | None = None

    def __len__(self) -> int:
        return len(self.pending)

    def _file(self) -> int | None:
        if self._fd is not None or self.folder is None:
            return self._fd
        path = self.folder / f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:
            log.error("journal writes cannot be kept in %s (%s): they are kept in memory only", path, exc)
            self.folder = None
            return None
        _try_lock(fd)
        self._fd, self.path = fd, path
        return fd

    def _mirror(self) -> None:
        if not self.pending:  # all written: no file left behind
            self.close()
            return
        fd = self._file()
        if fd is None:
            return
        data = b"".join(json.dumps(item).encode() + b"\n" for item in self.pending)
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, data)
            os.fsync(fd)
        except OSError as exc:
            log.error("journal writes cannot be kept in %s (%s): they are kept in memory", self.path, exc)

    def keep(self, item: dict[str, Any]) -> None:
        self.pending.append(item)
        self._mirror()

    def done(self) -> None:
        """The first kept write was written."""
        self.pending.pop(0)
        self._mirror()

    def adopt(self) -> None:
        """Take over the files of processes that are gone: their writes go first, in their order."""
        if self.folder is None:
            return
        found = []
        for path in sorted(self.folder.glob(f"{PREFIX}*{SUFFIX}")):
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
            except OSError:
                continue
            try:
                if not _try_lock(fd):
                    continue  # its process still runs and writes it itself
                items = _read(fd)
                found.extend(items)
                with contextlib.suppress(OSError):
                    path.unlink()
            finally:
                os.close(fd)
            if items:
                log.warning("journal: %d write(s) kept by a process that is gone are written now", len(items))
        if found:
            self.pending[:0] = found
            self._mirror()

    def close(self) -> None:
        """Let go of the file; it is removed when nothing is left in it, else left for the next
        process to take over."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            if not self.pending and self.path is not None:
                with contextlib.suppress(OSError):
                    self.path.unlink()  # while still locked: no other process takes it over
            os.close(fd)
            self.path = None
