from __future__ import annotations

from decimal import Decimal

import pytest

from wiro_seedream_mcp.wiro.models import RunResponse, Task, TaskListResponse, TaskStatus

from .conftest import FIXTURES, page_example


def test_page_fixtures_are_verbatim_but_for_the_lost_backslashes() -> None:
    # Guard against a "repair" that does more than re-escape the categories string.
    for name in ("run", "detail", "kill", "cancel"):
        text = (FIXTURES / f"{name}.page.txt").read_text()
        assert text.startswith("{ ") and text.rstrip().endswith("}")
    assert '"categories": "["tool"' in (FIXTURES / "kill.page.txt").read_text()
    assert page_example("kill")["tasklist"][0]["categories"] == (
        '["tool","image-to-image","quick-showcase","compare-landscape"]'
    )


def test_run_response() -> None:
    answer = RunResponse.model_validate(page_example("run"))
    assert answer.result is True
    assert answer.errors == []
    assert answer.taskid == "2221"
    assert answer.socketaccesstoken == "eDcCm5yyUfIvMFspTwww49OUfgXkQt"


def test_detail_response_typed() -> None:
    answer = TaskListResponse.model_validate(page_example("detail"))
    assert answer.result is True
    assert answer.total == 1
    task = answer.tasklist[0]
    assert task.id == "2221"
    assert task.status == TaskStatus.POSTPROCESS_END
    assert task.elapsedseconds == 6.0
    assert task.starttime == 1734513809
    assert task.canceltime == 0
    assert task.size == 202472
    [output] = task.outputs
    assert output.name == "0.png"
    assert output.contenttype == "image/png"
    assert output.size == 202472
    assert output.url.startswith("https://cdn1.wiro.ai/") and output.url.endswith("/0.png")
    # The page's Detail example carries no pexit: done, not proven a success, not a failure.
    assert task.pexit is None
    # No exit code, but outputs: delivered like a success, so nothing paid for is thrown away.
    assert task.done and task.succeeded and not task.failed


@pytest.mark.parametrize("name", ["kill", "cancel"])
def test_kill_and_cancel_responses_typed(name: str) -> None:
    task = TaskListResponse.model_validate(page_example(name)).tasklist[0]
    assert task.status == TaskStatus.CANCEL
    assert task.cancelled and task.done and not task.succeeded and not task.failed
    assert task.totalcost == Decimal("0.003510000000")
    assert task.cps == Decimal("0.000585000000")
    assert task.pexit == "0"
    # Fields the models do not name are kept, not dropped and not fatal.
    extra = task.model_extra or {}
    assert extra["projectid"] == "699"
    assert extra["guestid"] is None
    assert extra["marketplaceid"] is None
    output_extra = task.outputs[0].model_extra or {}
    assert output_extra["foldercount"] == "0"
    assert output_extra["ispublic"] == 0
    assert output_extra["expiretime"] is None


def _task(**fields: object) -> Task:
    return Task.model_validate({"id": "1", **fields})


def test_success_needs_postprocess_end_and_exit_zero() -> None:
    assert _task(status="task_postprocess_end", pexit="0").succeeded
    assert not _task(status="task_postprocess_end", pexit="1").succeeded
    assert _task(status="task_postprocess_end", pexit="1").failed
    assert not _task(status="task_end", pexit="0").succeeded


def test_terminal_statuses() -> None:
    assert {"task_postprocess_end", "task_cancel", "task_error"} == TaskStatus.TERMINAL
    assert _task(status="task_error", pexit="").failed
    assert _task(status="task_error").done


@pytest.mark.parametrize(
    "status",
    [*TaskStatus.LIFECYCLE[:-1], "task_end", "task_postprocess_start", "some_future_status", ""],
)
def test_every_other_status_means_still_running(status: str) -> None:
    task = _task(status=status)
    assert not task.done and not task.succeeded and not task.failed


def test_blank_and_odd_values_become_none() -> None:
    task = _task(status="task_queue", elapsedseconds="", totalcost="", starttime="", size=None, cps="n/a")
    assert task.elapsedseconds is None
    assert task.totalcost is None
    assert task.starttime is None
    assert task.size is None
    assert task.cps is None


def test_failure_reason_prefers_wiro_words() -> None:
    assert (
        _task(status="task_error", debugerror="CUDA out of memory").failure_reason() == "CUDA out of memory"
    )
    assert "exit code 3" in _task(status="task_postprocess_end", pexit="3").failure_reason()
