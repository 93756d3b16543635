"""The task journal: every task Wiro accepted, kept before any answer, so none is ever lost.

One interface, :class:`TaskJournal`, two backends:

* :class:`Journal` (:mod:`.sqlite`), a small SQLite file: the embedded default, shared by the
  server processes of one machine;
* :class:`PostgresJournal` (:mod:`.postgres`), for replicas of ``serve --http`` on several
  machines (``WIRO_JOURNAL_URL=postgresql://...``).

Besides the tasks, the journal holds what must be counted across processes: budget reservations
(:mod:`..budget`) and the calls each caller has running at once (:mod:`..http`). Every check and
the write it allows are one transaction no other process can interleave with.
"""

from __future__ import annotations

from pathlib import Path

from ..records import FILE_NAME, JournalEntry, Spend, inspect
from .base import RESERVATION_TTL, JournalUnavailableError, TaskJournal
from .postgres import PostgresJournal
from .sqlite import Journal

__all__ = [
    "FILE_NAME",
    "RESERVATION_TTL",
    "Journal",
    "JournalEntry",
    "JournalUnavailableError",
    "PostgresJournal",
    "Spend",
    "TaskJournal",
    "inspect",
    "open_journal",
]


def open_journal(url: str | None, folder: Path | None) -> TaskJournal:
    """PostgreSQL when ``url`` is set (``WIRO_JOURNAL_URL``), else the SQLite file in ``folder``."""
    if url:
        return PostgresJournal(url, spool=folder)
    return Journal(folder)
