"""A Wiro task -> an MCP tool result: text, previews, resource links, saved files, structured output."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx2 as httpx
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field

from .config import Settings
from .journal import Journal, JournalEntry
from .media import MediaError, download, file_name, preview_async, save_async, sniff
from .wiro.models import Task, TaskOutput, TaskStatus

log = logging.getLogger(__name__)


class OutputFile(BaseModel):
    url: str = Field(description="Public link to the file; Wiro keeps it for a limited time.")
    name: str = Field(description="File name, e.g. 0.png.")
    contenttype: str = Field(description="MIME type, e.g. image/png.")
    size: int | None = Field(description="Size in bytes, when Wiro reports it.")
    path: str | None = Field(
        default=None, description="Where the image was saved on this machine (when WIRO_OUTPUT_DIR is set)."
    )


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
    warnings: list[str] = Field(
        default_factory=list,
        description="Things that went wrong without failing the call, e.g. a failed save.",
    )


@dataclass
class Delivered:
    """What was done locally with one output: saved file, inline preview, problems."""

    path: Path | None = None
    preview: tuple[str, str] | None = None  # (base64, mime type)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Delivery:
    """Everything needed to hand a finished task's images to the person."""

    http: httpx.AsyncClient
    settings: Settings
    journal: Journal

    @staticmethod
    async def saved_path(entry: JournalEntry | None, name: str) -> Path | None:
        """Where the journal says output ``name`` was saved, if that file is still there."""
        if entry is None or name not in entry.saved:
            return None
        path = Path(entry.saved[name])
        return path if await anyio.Path(path).is_file() else None

    async def image_bytes(self, output: TaskOutput, saved: Path | None) -> bytes:
        """The output's bytes: from the saved file when there is one, else downloaded."""
        if saved is not None:
            data = await anyio.Path(saved).read_bytes()
            if sniff(data[:16]) is not None:
                return data
        return (await download(self.http, output.url)).data

    async def deliver(self, task: Task, entry: JournalEntry | None) -> dict[str, Delivered]:
        """Save and preview each output of a succeeded task, as configured. Never raises.

        ``entry`` is the task's journal record: where outputs were saved before, and its prompt.
        """
        settings = self.settings
        if not task.succeeded or (settings.output_dir is None and settings.preview_size is None):
            return {}
        prompt = _prompt(task, entry)
        done: dict[str, Delivered] = {}
        for index, output in enumerate(task.outputs):
            result = done[output.name] = Delivered()
            known = await self.saved_path(entry, output.name)
            try:
                data = await self.image_bytes(output, known)
            except (MediaError, OSError) as exc:
                result.warnings.append(f"{output.name}: {exc}; the image is still at its URL")
                continue
            result.path = known
            if settings.output_dir is not None and known is None:
                result.path = await self._save(settings.output_dir, task, index, output, prompt, data, result)
            if settings.preview_size is not None:
                try:
                    result.preview = await preview_async(data, settings.preview_size)
                except Exception as exc:  # a picture Pillow cannot read must not fail the call
                    result.warnings.append(f"{output.name}: no preview ({exc})")
        return done

    async def _save(
        self,
        folder: Path,
        task: Task,
        index: int,
        output: TaskOutput,
        prompt: str,
        data: bytes,
        result: Delivered,
    ) -> Path | None:
        kind = sniff(data[:16])
        extension = kind[1] if kind else "img"
        try:
            path = await save_async(folder, file_name(task.id, index, prompt, extension), data)
        except (MediaError, OSError) as exc:
            result.warnings.append(f"{output.name}: not saved ({exc}); the image is still at its URL")
            return None
        log.info("task %s: saved %s", task.id, path)
        await self.journal.saved(task.id, output.name, path)
        return path


def _prompt(task: Task, entry: JournalEntry | None) -> str:
    """The prompt the task was started with: as journaled, else as Wiro echoes it."""
    if entry is not None and entry.parameters.get("prompt"):
        return str(entry.parameters["prompt"])
    parameters = task.parameters if isinstance(task.parameters, dict) else {}
    return str(parameters.get("prompt") or "image")


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
        elapsedseconds=task.elapsedseconds,
        error=error,
        next=next_step,
        warnings=list(warnings or []) + [w for d in delivered.values() for w in d.warnings],
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
    if task.totalcost is not None and task.done:
        facts.append(f"cost ${task.totalcost.normalize():f}")
    if facts:
        lines.append("It " + ", ".join(facts) + ".")
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
    """Preview (if made), the link to the image, and the saved file (if saved)."""
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
    if local.path is not None:
        blocks.append(
            ResourceLink(
                uri=local.path.as_uri(),
                name=local.path.name,
                title=f"Saved image of task {task.id}",
                description=f"The image of task {task.id}, saved on this machine",
                mime_type=output.contenttype or None,
                size=local.path.stat().st_size,
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
