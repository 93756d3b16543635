"""Row 2 (and 6): quitting never leaves a task running and billed.

Closing stdin, SIGTERM and SIGINT each stop the task a waiting generate_image started (Cancel
while queued, Kill once it runs), record the answer in the journal, and exit within 10 s
without a traceback, at every stage: while Run is in flight, queued, running, downloading.
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
def test_quitting_stops_the_task_and_exits_quietly(
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
    if stage == "downloading":
        # The image was made and paid for: nothing to stop, and the journal knows it ended.
        assert server.emulator.task_status(taskid) == "task_postprocess_end"
        assert journal_status(tmp_path, taskid) == "task_postprocess_end"
        return
    expected = "kill" if stage == "running" else "cancel"
    assert server.emulator.tasks[taskid].stopped == expected
    assert server.emulator.task_status(taskid) == "task_cancel"
    assert journal_status(tmp_path, taskid) == "task_cancel"
    assert f"task {taskid}" in stderr  # what was done is logged
