"""What a finished task does on this machine: fetch its images, check them, save them, make the
inline preview, and record in the journal where they went. Returns plain data
(:class:`Delivered`); turning it into an MCP result is :mod:`.results`' job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx2 as httpx

from .config import PREVIEW_SIZE_RANGE, Settings
from .follow import left
from .journal import JournalEntry, TaskJournal
from .media import MediaError, Sources, check_image_async, download, file_name, save_async, sniff
from .wiro.models import Task, TaskOutput

log = logging.getLogger(__name__)


@dataclass
class Delivered:
    """What was done locally with one output: saved file, inline preview, problems."""

    path: Path | None = None
    size: int | None = None  # bytes of the saved file
    preview: tuple[str, str] | None = None  # (base64, mime type)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Delivery:
    """Everything needed to hand a finished task's images to the person."""

    http: httpx.AsyncClient
    settings: Settings
    journal: TaskJournal

    @property
    def sources(self) -> Sources:
        return Sources.for_api(self.settings.base_url, self.settings.download_hosts)

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
        return (await download(self.http, output.url, sources=self.sources)).data

    async def deliver(
        self, task: Task, entry: JournalEntry | None, *, until: float | None = None, smaller: bool = False
    ) -> dict[str, Delivered]:
        """Save and preview each output of a succeeded task, as configured. Never raises.

        ``entry`` is the task's journal record (where outputs were saved before, its prompt);
        ``until`` is the time (``anyio.current_time()``) by which the call must answer: a
        download still running then is left, with a warning that names its URL. ``smaller``: a
        preview half the configured size (one of several in an answer).
        """
        settings = self.settings
        preview_size = settings.preview_size
        if smaller and preview_size is not None:
            preview_size = max(PREVIEW_SIZE_RANGE[0], preview_size // 2)
        if not task.succeeded or (settings.output_dir is None and settings.preview_size is None):
            return {}
        prompt = _prompt(task, entry)
        done: dict[str, Delivered] = {}
        for index, output in enumerate(task.outputs):
            result = done[output.name] = Delivered()
            known = await self.saved_path(entry, output.name)
            data: bytes | None = None
            with anyio.move_on_after(left(until)):
                try:
                    data = await self.image_bytes(output, known)
                except (MediaError, OSError) as exc:
                    result.warnings.append(f"{output.name}: {exc}; the image is still at {output.url}")
                    continue
            if data is None:
                result.warnings.append(
                    f"{output.name}: not fetched within the call's time limit; the image is still at "
                    f"{output.url}"
                )
                continue
            try:
                checked = await check_image_async(data, preview_size)
            except MediaError as exc:
                result.warnings.append(f"{output.name}: not kept ({exc}); Wiro's link is {output.url}")
                continue
            result.preview = checked.preview
            if checked.preview_problem:
                result.warnings.append(f"{output.name}: {checked.preview_problem}")
            result.path = known
            if settings.output_dir is not None and known is None:
                result.path = await self._save(settings.output_dir, task, index, output, prompt, data, result)
            if result.path is not None:
                result.size = len(data)
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
            result.warnings.append(f"{output.name}: not saved ({exc}); the image is still at {output.url}")
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
