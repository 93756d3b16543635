"""Row 8 (and 9): invalid input never pays, every refusal is one line, no answer outgrows 1 MB."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from wiro_seedream_mcp.config import Settings
from wiro_seedream_mcp.emulator import EmulatorServer
from wiro_seedream_mcp.journal import FILE_NAME
from wiro_seedream_mcp.wiro.seedream import MAX_PROMPT_CHARS, RUN_PATH

from ..conftest import connect, settings_for
from .conftest import call, text_of

pytestmark = pytest.mark.anyio

INVALID: list[tuple[dict[str, Any], str]] = [
    ({"prompt": "x", "seed": True}, "seed must be an integer"),
    ({"prompt": "x", "seed": "5"}, "seed must be an integer"),
    ({"prompt": "x", "seed": 1.5}, "seed must be an integer"),
    ({"prompt": "x", "seed": -1}, "seed must be an integer from 0 to 2147483647"),
    ({"prompt": "x", "guidanceScale": "7.5"}, "guidanceScale must be a number from 1 to 10"),
    ({"prompt": "x", "guidanceScale": 11}, "guidanceScale must be a number from 1 to 10"),
    ({"prompt": "x", "watermark": "yes"}, "watermark must be true or false"),
    ({"prompt": "x", "watermark": 1}, "watermark must be true or false"),
    ({"prompt": "x", "size": "999x999"}, "size must be one of 1024x1024, 864x1152"),
    (
        {"prompt": "x", "callbackUrl": "https://example.com/with space"},
        "callbackUrl must be a URL without spaces",
    ),
    ({"prompt": "x", "callbackUrl": "ftp://example.com/hook"}, "callbackUrl must be an absolute http"),
    ({"prompt": "x", "wait": "true"}, "wait must be true or false"),
    ({"prompt": "\ufeff"}, "the prompt is blank"),
    ({"prompt": "\u200b\u200c\u200d \u2060"}, "the prompt is blank"),
    ({"prompt": "\x00"}, "control characters"),
    ({"prompt": "a cat\x00"}, "control characters"),
    (
        {"prompt": "x" * (MAX_PROMPT_CHARS + 1)},
        "prompt must be a non-blank string of at most 10000 characters",
    ),
    ({"prompt": None}, "prompt must be"),
    ({}, "prompt is required"),
    ({"prompt": 42}, "prompt must be"),
    # A misspelt argument is refused, not ignored while a task starts with the default.
    ({"prompt": "x", "sise": "1280x720"}, "generate_image has no argument 'sise'; it takes prompt, size,"),
    ({"prompt": "x", "unknown": 1}, "generate_image has no argument 'unknown'"),
]


@pytest.mark.parametrize(("arguments", "words"), INVALID, ids=[w for _, w in INVALID])
async def test_invalid_input_is_one_line_and_never_pays(
    emulator: EmulatorServer, arguments: dict[str, Any], words: str
) -> None:
    result = await call(settings_for(emulator), "generate_image", arguments)
    text = text_of(result)
    assert result.is_error
    assert words in text, text
    assert "\n" not in text
    assert "pydantic" not in text and "type=" not in text and "input_value" not in text
    assert emulator.emulator.count(RUN_PATH) == 0


@pytest.mark.parametrize(
    ("tool", "arguments", "words"),
    [
        ("get_task", {"taskid": -4}, "taskid must be a task id"),
        ("get_task", {"taskid": True}, "taskid must be"),
        ("get_task", {"taskid": "1", "wait": "5"}, "wait must be a number"),
        ("kill_task", {"taskid": 2.5}, "taskid must be"),
        ("cancel_task", {"taskid": ""}, "taskid"),
        ("cancel_task", {}, "taskid is required"),
        ("list_tasks", {"limit": 0}, "limit must be an integer from 1 to 100"),
        ("list_tasks", {"limit": "10"}, "limit must be an integer"),
        ("generate_image", {"prompt": "x", "new_task": "yes"}, "new_task must be true or false"),
        ("generate_image", {"prompt": "x", "wait": 1}, "wait must be true or false"),
    ],
)
async def test_every_tool_refuses_in_one_line(
    emulator: EmulatorServer, tool: str, arguments: dict[str, Any], words: str
) -> None:
    result = await call(settings_for(emulator), tool, arguments)
    text = text_of(result)
    assert result.is_error
    assert words in text, text
    assert "\n" not in text and "errors.pydantic.dev" not in text and "type=" not in text
    assert emulator.emulator.requests == []


async def test_nulls_and_blanks_mean_unset_and_ids_may_be_numbers(emulator: EmulatorServer) -> None:
    async with connect(settings_for(emulator)) as client:
        made = await client.call_tool(
            "generate_image",
            {
                "prompt": "strict caller",
                "size": None,
                "watermark": None,
                "guidanceScale": None,
                "seed": None,
                "callbackUrl": "",
                "wait": None,
            },
        )
        taskid = made.structured_content["taskid"]
        looked = await client.call_tool("get_task", {"taskid": int(taskid), "tasktoken": None, "wait": None})
    assert not made.is_error, text_of(made)
    assert not looked.is_error, text_of(looked)
    assert looked.structured_content["taskid"] == taskid
    [run] = [r for r in emulator.emulator.requests if r.path.endswith(RUN_PATH)]
    assert run.json() == {
        "prompt": "strict caller",
        "size": "1024x1024",
        "watermark": "false",
        "guidanceScale": 1,
        "seed": 1,
    }


async def test_no_answer_outgrows_a_megabyte_whatever_the_journal_holds(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    settings = Settings(**{**settings_for(emulator).__dict__, "state_dir": tmp_path})
    await call(settings, "generate_image", {"prompt": "seed the journal", "wait": False})
    huge = "an enormous prompt " * 30_000  # 570 KB each, as another program might have written
    outputs = [{"name": f"{n}.png", "url": f"https://cdn1.wiro.ai/{n}/{'x' * 2000}.png"} for n in range(500)]
    with sqlite3.connect(tmp_path / FILE_NAME) as conn:
        for n in range(100):
            conn.execute(
                "INSERT INTO tasks (taskid, parameters, created, updated, outputs, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (f"big{n}", json.dumps({"prompt": huge}), 1e10 + n, 1e10, json.dumps(outputs), "e" * 100_000),
            )
    async with connect(settings) as client:
        answers = [await client.call_tool("list_tasks", {"limit": 100})]
        resources = [
            await client.read_resource("wiro://tasks"),
            await client.read_resource("wiro://tasks/big7"),
        ]
    for answer in answers:
        assert len(answer.model_dump_json()) < 1_000_000
    for resource in resources:
        assert len(resource.model_dump_json()) < 1_000_000
