"""The other way Wiro's answers look: as its docs, its SDKs and its integrations show them
(``WiroEmulator(dialect="docs")``, ``emulator --dialect docs``).

The reference page and these sources disagree on shapes, not on meaning; a client must read both.
In this dialect:

* Detail, Kill and Cancel give ``total`` as a number and each task's ``parameters`` as a JSON
  string; ``pexit`` is ``""`` until the task ends (as in both);
* an error carries a ``time`` (unix seconds), and the concurrency refusal's code is the string
  ``"96"``;
* the task socket greets first (``{"type": "connected"}``), sends progress as a JSON string inside
  ``message``, sends interim ``task_error`` (a warning line) and ``task_output_full`` frames
  while the task runs, and ``task_end`` before ``task_postprocess_end``.
"""

from __future__ import annotations

import json
import time
from typing import Any

REFERENCE = "reference"
DOCS = "docs"
DIALECTS = (REFERENCE, DOCS)

GREETING = {"type": "connected", "version": "1.0"}


def answer_in_docs(body: dict[str, Any]) -> dict[str, Any]:
    """A Detail, Kill or Cancel answer (or an error) as the docs show it."""
    shown = dict(body)
    if "total" in shown:
        shown["total"] = int(shown["total"])
    if isinstance(shown.get("tasklist"), list):
        shown["tasklist"] = [_record(record) for record in shown["tasklist"]]
    if shown.get("errors"):
        now = int(time.time())
        shown["errors"] = [
            {**e, "code": str(e["code"]) if e.get("code") == 96 else e.get("code"), "time": now}
            for e in shown["errors"]
        ]
    return shown


def _record(record: dict[str, Any]) -> dict[str, Any]:
    shown = dict(record)
    if isinstance(shown.get("parameters"), dict):
        shown["parameters"] = json.dumps(shown["parameters"])
    return shown


def progress_message(progress: dict[str, Any]) -> str:
    """Progress inside ``message`` as a JSON string, not an object."""
    return json.dumps({"type": "progressGenerate", "task": "Generate", **progress}, separators=(",", ":"))


def interim_frames(task_id: str, token: str, percent: int) -> list[dict[str, Any]]:
    """What the socket also says while a task runs: a stderr line and the output so far."""
    frames: list[dict[str, Any]] = []
    if percent == 10:
        warning = "UserWarning: emulated"
        frames.append(
            {"type": "task_error", "id": task_id, "tasktoken": token, "message": warning, "result": True}
        )
    frames.append(
        {
            "type": "task_output_full",
            "id": task_id,
            "tasktoken": token,
            "message": {"raw": f"{percent}%|emulated| {percent // 10}/10"},
            "result": True,
        }
    )
    return frames
