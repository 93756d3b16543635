"""A Wiro task -> an MCP tool result: resource links, a short text, structured output."""

from __future__ import annotations

from mcp.types import CallToolResult, ContentBlock, ResourceLink, TextContent
from pydantic import BaseModel, Field

from .config import Settings
from .wiro.models import Task, TaskStatus


class OutputFile(BaseModel):
    url: str = Field(description="Public link to the file; Wiro keeps it for a limited time.")
    name: str = Field(description="File name, e.g. 0.png.")
    contenttype: str = Field(description="MIME type, e.g. image/png.")
    size: int | None = Field(description="Size in bytes, when Wiro reports it.")


class TaskResult(BaseModel):
    """What every tool of this server returns about a task."""

    taskid: str = Field(description="Wiro's task id: pass it to get_task, kill_task or cancel_task.")
    socketaccesstoken: str = Field(description="The task's token (also accepted as tasktoken by get_task).")
    status: str = Field(description="Wiro's status, e.g. task_queue, task_start, task_postprocess_end.")
    done: bool = Field(description="True when the task has ended (succeeded, failed or cancelled).")
    succeeded: bool = Field(description="True when the task ended with its images.")
    outputs: list[OutputFile] = Field(description="The produced images.")
    totalcost: float | None = Field(description="What Wiro charged for the task, in US dollars.")
    elapsedseconds: float | None = Field(description="Seconds the task ran, as Wiro reports it.")
    error: str | None = Field(description="Why the task failed or the call did not finish, if it did.")
    next: str | None = Field(description="What to do next, when there is something to do.")


def describe(task: Task) -> str:
    if task.succeeded:
        return "finished"
    if task.failed:
        return "failed"
    if task.cancelled:
        return "was cancelled"
    if task.done:
        return "ended without an exit code"
    if task.status == TaskStatus.QUEUE:
        return "is queued"
    return "is running"


def task_result(
    task: Task,
    *,
    next_step: str | None = None,
    error: str | None = None,
    cancelled_is_error: bool = False,
    lead: str | None = None,
) -> CallToolResult:
    """Build the tool result for ``task``.

    A failed task is always an error result; a cancelled one is when the caller wanted its
    image (``cancelled_is_error``). The structured content is there in both cases, so the
    task id is never lost.
    """
    if error is None and task.failed:
        error = task.failure_reason()
    if error is None and task.cancelled and cancelled_is_error:
        error = "the task was cancelled before it produced an image"
    is_error = error is not None and (task.failed or task.cancelled)

    outputs = [
        OutputFile(url=o.url, name=o.name, contenttype=o.contenttype, size=o.size)
        for o in task.outputs
        if o.url
    ]
    structured = TaskResult(
        taskid=task.id,
        socketaccesstoken=task.socketaccesstoken,
        status=task.status,
        done=task.done,
        succeeded=task.succeeded,
        outputs=outputs,
        totalcost=float(task.totalcost) if task.totalcost is not None else None,
        elapsedseconds=task.elapsedseconds,
        error=error,
        next=next_step,
    )

    lines = [lead] if lead else []
    lines.append(f"Task {task.id} {describe(task)} (status {task.status}).")
    facts = []
    if task.elapsedseconds:
        facts.append(f"ran {task.elapsedseconds:g} s")
    if task.totalcost is not None and task.done:
        facts.append(f"cost ${task.totalcost.normalize():f}")
    if facts:
        lines.append("It " + ", ".join(facts) + ".")
    if error:
        lines.append(f"Error: {error}")
    for output in outputs:
        size = f", {output.size} bytes" if output.size else ""
        lines.append(f"Image {output.name} ({output.contenttype}{size}): {output.url}")
    if outputs:
        lines.append("Wiro keeps these links for a limited time: save the images you want to keep.")
    if next_step:
        lines.append(next_step)

    content: list[ContentBlock] = [TextContent(text="\n".join(lines))]
    content.extend(
        ResourceLink(
            uri=output.url,
            name=output.name or f"task-{task.id}",
            title=f"Seedream image {output.name} of task {task.id}",
            description=f"Image made by Seedream 3.0 on Wiro, task {task.id}",
            mime_type=output.contenttype or None,
            size=output.size,
        )
        for output in outputs
    )
    return CallToolResult(
        content=content,
        structured_content=structured.model_dump(mode="json"),
        is_error=is_error,
    )


def pending_hint(task: Task, settings: Settings, *, waited: float = 0) -> str:
    """Tell the agent how to pick the task up: get_task with the longest wait it may ask for."""
    since = f" after waiting {waited:g} s" if waited else ""
    wait = f", wait={settings.wait_timeout:g}" if settings.wait_timeout else ""
    return (
        f"The task is not lost: it is still {task.status}{since}. "
        f'Call get_task with taskid "{task.id}"{wait} to wait for it and get the image.'
    )
