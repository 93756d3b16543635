"""Row 1: Run's request reached Wiro but its answer was lost or broken.

Only a refusal Wiro states plainly means no task. Anything else says a paid task may have
started, does not invite a retry, and looks the task up when the broken answer named it.
Run is sent once, whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.wiro.seedream import RUN_PATH

from ..conftest import settings_for
from .conftest import call, text_of

pytestmark = pytest.mark.anyio

MAY_HAVE = "a paid task may have started all the same"
# What the person is told to do instead of paying twice.
LOOK_FIRST = (
    "do not call generate_image again for this image before looking at the task list of your project in "
    "the Wiro dashboard (a task that ran shows there with its image)."
)


@pytest.mark.parametrize("kind", ["html", "truncated", "json-500", "false-bare", "wrong-types", "502-after"])
async def test_a_lost_run_answer_says_a_task_may_exist(emulator: EmulatorServer, kind: str) -> None:
    emulator.emulator.inject(RUN_PATH, kind)
    result = await call(settings_for(emulator), "generate_image", {"prompt": "answer lost"})
    text = text_of(result)
    assert result.is_error
    assert MAY_HAVE in text
    assert text.endswith(LOOK_FIRST), text
    assert "do not call generate_image again" in text
    assert "please retry" not in text.lower().split("wiro did not confirm")[0]
    assert "\n" not in text  # one line
    # The task really exists on Wiro, and Run went out exactly once.
    assert len(emulator.emulator.tasks) == 1
    assert emulator.emulator.count(RUN_PATH) == 1


async def test_a_broken_answer_that_names_the_task_is_followed_to_its_image(emulator: EmulatorServer) -> None:
    emulator.emulator.inject(RUN_PATH, "false-with-ids")
    result = await call(settings_for(emulator), "generate_image", {"prompt": "found again"})
    data = result.structured_content
    assert not result.is_error, text_of(result)
    assert isinstance(data, dict)
    [taskid] = emulator.emulator.tasks
    assert data["taskid"] == taskid
    assert data["succeeded"] is True
    assert any("found by asking Wiro" in warning for warning in data["warnings"])
    assert emulator.emulator.count(RUN_PATH) == 1


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (
            401,
            {"result": False, "errors": [{"code": 0, "message": "Project authorization is not valid."}]},
            "authorization",
        ),
        (200, {"result": False, "errors": [{"code": 97, "message": "Insufficient balance."}]}, "balance"),
        (
            200,
            {"result": False, "errors": [{"code": 0, "message": "Request parameter [prompt] required"}]},
            "prompt",
        ),
    ],
    ids=["401", "balance", "validation"],
)
async def test_a_plain_refusal_says_nothing_started(
    emulator: EmulatorServer, status: int, body: dict[str, object], words: str
) -> None:
    emulator.emulator.inject(RUN_PATH, "status", status=status, body=body)
    result = await call(settings_for(emulator), "generate_image", {"prompt": "refused"})
    text = text_of(result)
    assert result.is_error
    assert words in text.lower()
    assert MAY_HAVE not in text
    assert emulator.emulator.tasks == {}


async def test_a_run_answer_that_never_comes_ends_within_the_deadline(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(timings=Timings.instant())
    server.emulator.inject(RUN_PATH, "trickle", delay=2.0)
    import anyio

    began = anyio.current_time()
    settings = settings_for(server, wait_timeout=1, answer_margin=3)
    result = await call(settings, "generate_image", {"prompt": "stalled answer"})
    took = anyio.current_time() - began
    assert result.is_error
    assert MAY_HAVE in text_of(result)
    assert took < 1 + 3 + 2  # WIRO_WAIT_TIMEOUT + the answer margin, with room for a loaded machine
    assert server.emulator.count(RUN_PATH) == 1
