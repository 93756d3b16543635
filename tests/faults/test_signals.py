"""Row 2 (and 6): quitting never throws a paid image away, and never hangs.

Only a person stops a paid task. Closing stdin, SIGTERM and SIGINT each leave the task a waiting
generate_image started running on Wiro and in the journal, say in the log which task was left
and how to pick it up, and exit within 10 s without a traceback, at every stage: while Run is
in flight, queued, running, downloading. An image already made is still saved when stdin closes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.wiro.seedream import RUN_PATH

from ..conftest import API_KEY, API_SECRET
from ..rawstdio import RawServer
from ..waiting import until

QUEUED = Timings(queue=60, prepare=1, generate=1, postprocess=1)
RUNNING = Timings(queue=0, prepare=0, generate=60, postprocess=1)


def journal_status(state: Path, taskid: str) -> str:
    with sqlite3.connect(state / "tasks.sqlite3") as conn:
        row = conn.execute("SELECT status FROM tasks WHERE taskid = ?", (taskid,)).fetchone()
    assert row is not None, f"task {taskid} is not in the journal"
    return str(row[0])


@pytest.mark.parametrize("how", ["eof", "SIGTERM", "SIGINT"])
@pytest.mark.parametrize("stage", ["during-run", "queued", "running", "downloading"])
def test_quitting_leaves_the_task_running_journaled_and_named(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path, how: str, stage: str
) -> None:
    timings = {"queued": QUEUED, "running": RUNNING, "during-run": QUEUED}.get(stage, Timings.instant())
    server = emulator_factory(timings=timings)
    if stage == "during-run":
        server.emulator.inject(RUN_PATH, "slow", delay=1.5)
    if stage == "downloading":
        server.emulator.inject("/0.png", "trickle", delay=1.0)
    raw = RawServer(
        {
            "WIRO_API_KEY": API_KEY,
            "WIRO_API_SECRET": API_SECRET,
            "WIRO_API_BASE_URL": server.base_url,
            "WIRO_STATE_DIR": str(tmp_path),
        }
    )
    raw.initialize()
    raw.send("tools/call", {"name": "generate_image", "arguments": {"prompt": f"host quits, {stage}"}})
    until(lambda: len(server.emulator.tasks) == 1)
    [taskid] = server.emulator.tasks
    if stage == "downloading":
        until(lambda: any(r.path.endswith("/0.png") for r in server.emulator.requests))
    elif stage != "during-run":
        until(lambda: server.emulator.socket_sessions == 1)
    code, stderr, took = raw.stop(how)
    assert code == 0, stderr
    assert took < 10
    assert "Traceback" not in stderr, stderr
    assert server.emulator.count(RUN_PATH) == 1
    # Nothing was stopped: the task is Wiro's to finish, and the journal knows it.
    assert server.emulator.count("/Task/Kill") + server.emulator.count("/Task/Cancel") == 0
    assert server.emulator.tasks[taskid].stopped is None
    assert journal_status(tmp_path, taskid) in {"task_queue", "task_start", "task_postprocess_end"}
    if stage != "downloading":
        # The log names the task left running and how to pick it up.
        assert f"task {taskid}" in stderr and "keeps running on Wiro" in stderr, stderr
        assert "get_task" in stderr and "list_tasks" in stderr


def test_an_image_being_saved_when_stdin_closes_is_saved(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=Timings.instant())
    server.emulator.inject("/0.png", "slow", delay=1.5)
    images = tmp_path / "images"
    raw = RawServer(
        {
            "WIRO_API_KEY": API_KEY,
            "WIRO_API_SECRET": API_SECRET,
            "WIRO_API_BASE_URL": server.base_url,
            "WIRO_STATE_DIR": str(tmp_path),
            "WIRO_OUTPUT_DIR": str(images),
        }
    )
    raw.initialize()
    raw.send("tools/call", {"name": "generate_image", "arguments": {"prompt": "saved on the way out"}})
    until(lambda: any(r.path.endswith("/0.png") for r in server.emulator.requests))
    code, stderr, took = raw.stop("eof")
    assert code == 0, stderr
    assert took < 10
    assert list(images.glob("*.png")), stderr
    [saved] = images.glob("*.png")
    assert saved.read_bytes().startswith(b"\x89PNG")
    assert f"saved to {saved}" in stderr
