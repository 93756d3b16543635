"""Row 5: a journal that breaks says so, on every answer, and keeps what it has.

A read-only or full journal is named in a warning while tasks still run; garbage or another
program's database is moved aside (kept) and a new journal started, with a warning until the
old file is gone; a row that cannot be read is skipped with a warning.
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from pathlib import Path

import pytest

from wiro_seedream_mcp.config import Settings
from wiro_seedream_mcp.emulator import EmulatorServer
from wiro_seedream_mcp.journal import FILE_NAME
from wiro_seedream_mcp.wiro.seedream import RUN_PATH

from ..conftest import settings_for
from .conftest import call, make_read_only, text_of

pytestmark = pytest.mark.anyio


def in_folder(emulator: EmulatorServer, folder: Path) -> Settings:
    return Settings(**{**settings_for(emulator).__dict__, "state_dir": folder})


async def test_garbage_is_moved_aside_and_a_new_journal_started(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"this is not a database, just bytes " * 100)
    settings = in_folder(emulator, tmp_path)
    made = await call(settings, "generate_image", {"prompt": "after garbage"})
    listed = await call(settings, "list_tasks", {})
    aside = [p for p in tmp_path.iterdir() if ".unreadable-" in p.name]
    assert len(aside) == 1
    assert aside[0].read_bytes().startswith(b"this is not a database")  # kept, not deleted
    assert not made.is_error
    assert listed.structured_content["tasks"][0]["taskid"] == made.structured_content["taskid"]
    for result in (made, listed):
        assert str(aside[0]) in text_of(result)
        assert any(str(aside[0]) in w for w in result.structured_content["warnings"])
    aside[0].unlink()
    assert "moved aside" not in text_of(await call(settings, "list_tasks", {}))


async def test_a_foreign_database_is_moved_aside(emulator: EmulatorServer, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / FILE_NAME) as conn:
        conn.execute("CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT)")
        conn.execute("INSERT INTO tasks (title) VALUES ('buy milk')")
    settings = in_folder(emulator, tmp_path)
    listed = await call(settings, "list_tasks", {})
    assert not listed.is_error
    assert "moved aside" in text_of(listed)
    [aside] = [
        p for p in tmp_path.iterdir() if p.name.endswith(tuple("0123456789")) and ".unreadable-" in p.name
    ]
    with sqlite3.connect(aside) as conn:
        assert conn.execute("SELECT title FROM tasks").fetchone() == ("buy milk",)


async def test_a_bad_row_is_skipped_with_a_warning(emulator: EmulatorServer, tmp_path: Path) -> None:
    settings = in_folder(emulator, tmp_path)
    good = await call(settings, "generate_image", {"prompt": "good row"})
    with sqlite3.connect(tmp_path / FILE_NAME) as conn:
        conn.execute(
            "INSERT INTO tasks (taskid, parameters, created, updated) VALUES ('bad', '{not json', 1e10, 1e10)"
        )
    listed = await call(settings, "list_tasks", {})
    assert not listed.is_error
    assert [t["taskid"] for t in listed.structured_content["tasks"]] == [good.structured_content["taskid"]]
    assert "could not be read and were skipped" in text_of(listed)


async def test_a_full_journal_is_named_on_every_answer(emulator: EmulatorServer, full_disk: Path) -> None:
    settings = in_folder(emulator, full_disk)
    made = await call(settings, "generate_image", {"prompt": "disk is full"})
    assert not made.is_error  # the image is delivered all the same
    assert made.structured_content["succeeded"] is True
    warning = next(w for w in made.structured_content["warnings"] if "task journal" in w)
    assert str(full_disk / FILE_NAME) in warning
    assert "keep the task ids" in warning


async def test_a_read_only_journal_serves_what_it_has_and_says_it_records_nothing(
    emulator: EmulatorServer, read_only: Path
) -> None:
    settings = in_folder(emulator, read_only)
    first = await call(settings, "generate_image", {"prompt": "recorded before"})
    make_read_only(read_only)
    later = await call(settings, "generate_image", {"prompt": "not recorded"})
    listed = await call(settings, "list_tasks", {})
    assert not later.is_error
    assert any("read-only" in w for w in later.structured_content["warnings"])
    assert [t["taskid"] for t in listed.structured_content["tasks"]] == [first.structured_content["taskid"]]
    assert "read-only" in text_of(listed)


async def test_with_a_budget_a_journal_that_cannot_count_the_spend_starts_nothing(
    emulator: EmulatorServer, read_only: Path
) -> None:
    """WIRO_BUDGET_USD is a promise: when the journal cannot hold the task's share of it, the task
    is refused (nothing is paid), rather than started unchecked."""
    settings = dataclasses.replace(in_folder(emulator, read_only), budget_usd=5.0)
    first = await call(settings, "generate_image", {"prompt": "counted"})
    assert not first.is_error
    make_read_only(read_only)
    refused = await call(settings, "generate_image", {"prompt": "cannot be counted"})
    assert refused.is_error
    assert "the spend limits cannot be counted, so nothing was started" in text_of(refused)
    assert emulator.emulator.count(RUN_PATH) == 1


async def test_an_unreadable_journal_folder_is_an_error_naming_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the journal folder should be")
    settings = Settings(state_dir=blocker / "state")
    listed = await call(settings, "list_tasks", {})
    assert listed.is_error
    assert str(blocker / "state" / FILE_NAME) in text_of(listed)
    shutil.rmtree(tmp_path, ignore_errors=True)


async def test_an_unreachable_postgresql_journal_says_so_and_nothing_of_where_it_is(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A caller is told the journal is unavailable and what to do, never its host, port, user,
    database or password; the operator's log names where it is, without the password."""
    import dataclasses
    import socket

    from pydantic import SecretStr

    with socket.socket() as closed:  # a loopback port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://journal_user@127.0.0.1:{port}/wiro_db?password=hunter2-secret&sslmode=disable"
    settings = dataclasses.replace(settings_for(emulator), journal_url=SecretStr(url))
    listed = await call(settings, "list_tasks", {})
    said = text_of(listed)
    assert listed.is_error
    assert said.startswith("the task journal (PostgreSQL) is unavailable. The PostgreSQL database"), said
    for private in ("hunter2-secret", str(port), "journal_user", "wiro_db", "127.0.0.1", "WIRO_STATE_DIR"):
        assert private not in said, private
    assert "hunter2-secret" not in caplog.text
    assert f"postgresql://journal_user@127.0.0.1:{port}/wiro_db" in caplog.text  # for the operator
