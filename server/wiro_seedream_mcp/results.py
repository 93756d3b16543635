"""A Wiro task and what was delivered of it -> an MCP tool result: text, preview, resource links,
saved files, structured output. Pure: no I/O here (delivery is :mod:`.delivery`)."""

from __future__ import annotations

from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field

from .config import Settings
from .delivery import Delivered
from .pricing import CostEstimate
from .wiro.models import Task, TaskStatus


class OutputFile(BaseModel):
    url: str = Field(description="Public link to the file; Wiro keeps it for a limited time.")
    name: str = Field(description="File name, e.g. 0.png.")
    contenttype: str = Field(description="MIME type, e.g. image/png.")
    size: int | None = Field(description="Size in bytes, when Wiro reports it.")
    path: str | None = Field(
        default=None, description="Where the image was saved on this machine (when WIRO_OUTPUT_DIR is set)."
    )


class Reused(BaseModel):
    startedat: str = Field(description="When the task was started, in UTC (ISO 8601).")
    secondsago: int = Field(description="How many seconds before this answer it was started.")


class Variation(BaseModel):
    """One task of a set made by one generate_image call (``count`` above 1)."""

    taskid: str = Field(description="The task's id (for get_task, kill_task, cancel_task).")
    seed: int = Field(description="The seed this image was made with: ask for it again by this seed.")
    status: str = Field(description="Wiro's status of the task.")
    done: bool = Field(description="True when the task has ended.")
    succeeded: bool = Field(description="True when the task ended with its image.")
    totalcost: float | None = Field(description="What Wiro charged for the task, in US dollars.")
    outputs: list[OutputFile] = Field(description="The task's images.")
    error: str | None = Field(default=None, description="Why this task failed, if it did.")


class TaskResult(BaseModel):
    """What every tool of this server returns about a task."""

    taskid: str = Field(description="Wiro's task id: pass it to get_task, kill_task or cancel_task.")
    socketaccesstoken: str = Field(description="The task's token (also accepted as tasktoken by get_task).")
    status: str = Field(description="Wiro's status, e.g. task_queue, task_start, task_postprocess_end.")
    done: bool = Field(description="True when the task has ended (succeeded, failed or cancelled).")
    succeeded: bool = Field(description="True when the task ended with its images.")
    outputs: list[OutputFile] = Field(description="The produced images.")
    totalcost: float | None = Field(description="What Wiro charged for the task, in US dollars.")
    estimate: CostEstimate | None = Field(
        default=None, description="What the task was expected to cost before it started, and on what basis."
    )
    elapsedseconds: float | None = Field(description="Seconds the task ran, as Wiro reports it.")
    error: str | None = Field(description="Why the task failed or the call did not finish, if it did.")
    next: str | None = Field(description="What to do next, when there is something to do.")
    warnings: list[str] = Field(
        default_factory=list,
        description="Things that went wrong without failing the call, e.g. a failed save.",
    )
    reused: Reused | None = Field(
        default=None,
        description="Set when this call returned a task already started with exactly these inputs "
        "(nothing was paid twice): when that task was started.",
    )
    variations: list[Variation] | None = Field(
        default=None,
        description="With count above 1: every task of the set, in seed order (the fields above are "
        "the first task's).",
    )
    variationscost: float | None = Field(
        default=None,
        description="With count above 1: what the set's finished tasks cost in all, in US dollars.",
    )


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
    delivered: dict[str, Delivered] | None = None,
    warnings: list[str] | None = None,
    estimate: CostEstimate | None = None,
    reused: Reused | None = None,
) -> CallToolResult:
    """Build the tool result for ``task``.

    A failed task is always an error result; a cancelled one is when the caller wanted its
    image (``cancelled_is_error``). The structured content is there in both cases, so the
    task id is never lost.
    """
    delivered = delivered or {}
    if error is None and task.failed:
        error = task.failure_reason()
    if error is None and task.cancelled and cancelled_is_error:
        error = "the task was cancelled before it produced an image"
    structured = TaskResult(
        taskid=task.id,
        socketaccesstoken=task.socketaccesstoken,
        status=task.status,
        done=task.done,
        succeeded=task.succeeded,
        outputs=_output_files(task, delivered),
        totalcost=float(task.totalcost) if task.totalcost is not None else None,
        estimate=estimate,
        elapsedseconds=task.elapsedseconds,
        error=error,
        next=next_step,
        warnings=list(warnings or []) + [w for d in delivered.values() for w in d.warnings],
        reused=reused,
    )
    content: list[ContentBlock] = [TextContent(text=_summary(task, structured, lead))]
    for output in structured.outputs:
        content.extend(_blocks(task, output, delivered.get(output.name, Delivered())))
    return CallToolResult(
        content=content,
        structured_content=structured.model_dump(mode="json"),
        is_error=error is not None and (task.failed or task.cancelled),
    )


def _output_files(task: Task, delivered: dict[str, Delivered]) -> list[OutputFile]:
    files = []
    for output in task.outputs:
        if output.url:
            saved = delivered.get(output.name, Delivered()).path
            files.append(
                OutputFile(
                    url=output.url,
                    name=output.name,
                    contenttype=output.contenttype,
                    size=output.size,
                    path=str(saved) if saved else None,
                )
            )
    return files


def _summary(task: Task, result: TaskResult, lead: str | None) -> str:
    lines = [lead] if lead else []
    lines.append(f"Task {task.id} {describe(task)} (status {task.status}).")
    facts = []
    if task.elapsedseconds:
        facts.append(f"ran {task.elapsedseconds:g} s")
    estimated = result.estimate
    if task.totalcost is not None and task.done:
        guess = f" (estimated ${estimated.usd:.4g})" if estimated and estimated.usd is not None else ""
        facts.append(f"cost ${task.totalcost.normalize():f}{guess}")
    if facts:
        lines.append("It " + ", ".join(facts) + ".")
    elif estimated is not None and estimated.usd is not None:
        lines.append(f"Estimated cost: ${estimated.usd:.4g} ({estimated.basis}).")
    if result.error:
        lines.append(f"Error: {result.error}")
    for output in result.outputs:
        size = f", {output.size} bytes" if output.size else ""
        lines.append(f"Image {output.name} ({output.contenttype}{size}): {output.url}")
        if output.path:
            lines.append(f"Saved to {output.path}")
    if result.outputs and not any(o.path for o in result.outputs):
        lines.append("Wiro keeps these links for a limited time: save the images you want to keep.")
    lines.extend(f"Warning: {warning}" for warning in result.warnings)
    if result.next:
        lines.append(result.next)
    return "\n".join(lines)


def _blocks(task: Task, output: OutputFile, local: Delivered) -> list[ContentBlock]:
    """Preview (if made) and the link to the image.

    A saved file is named in the text and in ``path``, never as a ``file://`` link: frameworks
    (langchain-mcp-adapters among them) pass every image link on to the model as an image to
    fetch, and a hosted model cannot open a file on this machine.
    """
    blocks: list[ContentBlock] = []
    if local.preview is not None:
        data, mime = local.preview
        blocks.append(ImageContent(data=data, mime_type=mime))
    blocks.append(
        ResourceLink(
            uri=output.url,
            name=output.name or f"task-{task.id}",
            title=f"Seedream image {output.name} of task {task.id}",
            description=f"Image made by Seedream 3.0 on Wiro, task {task.id}",
            mime_type=output.contenttype or None,
            size=output.size,
        )
    )
    return blocks


def pending_hint(task: Task, settings: Settings, *, waited: float = 0) -> str:
    """Tell the agent how to pick the task up: get_task with the longest wait it may ask for."""
    since = f" after waiting {waited:g} s" if waited else ""
    wait = f", wait={settings.wait_timeout:g}" if settings.wait_timeout else ""
    return (
        f"The task is not lost: it is still {task.status}{since}. "
        f'Call get_task with taskid "{task.id}"{wait} to wait for it and get the image.'
    )


def set_result(
    results: list[CallToolResult],
    seeds: list[int],
    *,
    lead: str,
    next_step: str | None = None,
    warnings: list[str] | None = None,
) -> CallToolResult:
    """One answer for a set of tasks (``count`` above 1), from each task's own result: a text that
    names every image by its seed, each task's preview and link, and ``structuredContent`` with the
    first task's fields plus one entry per task and the total cost. ``warnings``: the set's own
    (starting it), before each task's."""
    entries = [TaskResult.model_validate(r.structured_content) for r in results]
    variations = [
        Variation(
            taskid=e.taskid,
            seed=seed,
            status=e.status,
            done=e.done,
            succeeded=e.succeeded,
            totalcost=e.totalcost,
            outputs=e.outputs,
            error=e.error,
        )
        for e, seed in zip(entries, seeds, strict=True)
    ]
    costs = [v.totalcost for v in variations if v.done and v.totalcost is not None]
    total = round(sum(costs), 6) if costs else None
    first = entries[0]
    structured = first.model_copy(
        update={
            "variations": variations,
            "variationscost": total,
            "next": next_step or first.next,
            "warnings": [*(warnings or []), *(f"task {e.taskid}: {w}" for e in entries for w in e.warnings)],
        }
    )
    made = sum(1 for v in variations if v.succeeded)
    lines = [lead, f"{made} of {len(variations)} images made" + (f", ${total:g} in all." if total else ".")]
    for number, v in enumerate(variations, start=1):
        state = "made" if v.succeeded else describe_status(v)
        line = f"{number}. seed {v.seed}: task {v.taskid} {state}"
        for output in v.outputs[:1]:
            line += f": {output.url}" + (f" (saved to {output.path})" if output.path else "")
        if v.error:
            line += f" ({v.error})"
        lines.append(line)
    lines.extend(f"Warning: {warning}" for warning in structured.warnings)
    if structured.next:
        lines.append(structured.next)
    content: list[ContentBlock] = [TextContent(text="\n".join(lines))]
    for result in results:
        content.extend(block for block in result.content if not isinstance(block, TextContent))
    return CallToolResult(
        content=content,
        structured_content=structured.model_dump(mode="json"),
        is_error=not any(v.succeeded or not v.done for v in variations),
    )


def describe_status(variation: Variation) -> str:
    if variation.done:
        return "ended without an image" if not variation.error else "failed"
    return "is queued" if variation.status == TaskStatus.QUEUE else "is running"
