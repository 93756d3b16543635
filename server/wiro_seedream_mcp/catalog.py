"""What a person or a host can browse: the task journal as resources, and prompt ideas.

* ``wiro://tasks``: recent tasks, newest first (JSON);
* ``wiro://tasks/{taskid}``: one task (JSON), refreshed from Wiro when it can be;
* ``wiro://tasks/{taskid}/outputs/{name}``: an output image's bytes, fetched through this
  server, for clients that cannot open https links;
* the ``seedream_ideas`` prompt: the model's five example prompts to start from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import BaseModel, Field

from .budget import by_day, totals, totals_of
from .config import Settings
from .journal import JournalEntry, JournalUnavailableError, TaskJournal
from .media import MediaError
from .state import AppState, Caller, caller_of, state_of
from .tools.common import not_yours, reach
from .wiro.errors import WiroError, WiroNotFoundError
from .wiro.seedream import EXAMPLE_PROMPTS

RECENT = 20
# How much of a prompt a listing shows: enough to recognise the task, small enough that a
# listing of 100 tasks stays far below the hosts' 1 MB result limit.
PROMPT_SHOWN = 200
# Seedream makes one image a task: a listing shows at most this many links of one task.
IMAGES_SHOWN = 2
# A listing stops adding tasks before its JSON passes this size, far below the 1 MB limit.
LISTING_BUDGET = 600_000


class TaskSummary(BaseModel):
    taskid: str = Field(description="Wiro's task id.")
    status: str = Field(description="The last status recorded.")
    done: bool
    succeeded: bool
    prompt: str = Field(description="The prompt the task was started with, when known.")
    created: str = Field(description="When the task was recorded, ISO 8601 UTC.")
    images: list[str] = Field(description="Links to the produced images.")
    saved: list[str] = Field(description="Where the images were saved on this machine.")


class TaskList(BaseModel):
    tasks: list[TaskSummary] = Field(description="Recent tasks, newest first.")
    spent_today: float | None = Field(
        default=None, description="What this key's finished tasks cost today (local time), in USD."
    )
    spent_this_month: float | None = Field(
        default=None, description="What this key's finished tasks cost this month, in USD."
    )
    warnings: list[str] = Field(
        default_factory=list, description="Problems with the task journal, when there are any."
    )


class SpendReport(BaseModel):
    """Spend per day, and the limits that apply to it."""

    today: float = Field(description="USD spent today (local time) on finished tasks.")
    this_month: float = Field(description="USD spent this month on finished tasks.")
    days: list[dict[str, Any]] = Field(description="Per local day, newest first: day, usd, tasks.")
    budget_usd: float | None = Field(description="WIRO_BUDGET_USD, the daily limit, if set.")
    max_task_usd: float | None = Field(description="WIRO_MAX_TASK_USD, the per-task limit, if set.")
    confirm: str = Field(
        description="WIRO_CONFIRM: never, always, or the amount above which the person is asked."
    )


async def spend_of(journal: TaskJournal, owner: str) -> tuple[float, float] | None:
    """(today, this month), or None when the journal cannot say."""
    try:
        return await totals(journal, owner)
    except JournalUnavailableError:
        return None


def summarize(entry: JournalEntry) -> TaskSummary:
    return TaskSummary(
        taskid=entry.taskid,
        status=entry.status,
        done=entry.done,
        succeeded=entry.succeeded,
        prompt=_shorten(str(entry.parameters.get("prompt", "")), PROMPT_SHOWN),
        created=_iso(entry.created),
        images=[str(o["url"]) for o in entry.outputs if o.get("url")][:IMAGES_SHOWN],
        saved=list(entry.saved.values())[:IMAGES_SHOWN],
    )


class TaskOutputView(BaseModel):
    name: str
    url: str = Field(description="Wiro's link to the image, kept by Wiro for a limited time.")
    contenttype: str
    size: int | None = Field(description="Bytes, as Wiro reports them.")
    path: str | None = Field(description="Where the image was saved on this machine, if it was.")


class TaskView(BaseModel):
    """One task, with one type per field: booleans, numbers, and times as ISO 8601 UTC."""

    taskid: str
    tasktoken: str
    status: str
    done: bool
    succeeded: bool
    parameters: dict[str, Any] = Field(description="The task's inputs, as generate_image takes them.")
    created: str = Field(description="When the task was recorded, ISO 8601 UTC.")
    updated: str = Field(description="When the record last changed, ISO 8601 UTC.")
    outputs: list[TaskOutputView]
    totalcost: float | None = Field(description="What Wiro charged, in USD, once it says.")
    error: str | None


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")


def view_of(entry: JournalEntry) -> TaskView:
    """The journal's entry as a person reads it (Wiro's own record keeps strings for everything)."""
    task = entry.as_task()
    parameters = dict(entry.parameters)
    if isinstance(parameters.get("watermark"), str):  # sent to Wiro as "true" / "false"
        parameters["watermark"] = parameters["watermark"] == "true"
    return TaskView(
        taskid=entry.taskid,
        tasktoken=entry.token,
        status=entry.status,
        done=entry.done,
        succeeded=entry.succeeded,
        parameters=parameters,
        created=_iso(entry.created),
        updated=_iso(entry.updated),
        outputs=[
            TaskOutputView(
                name=o.name, url=o.url, contenttype=o.contenttype, size=o.size, path=entry.saved.get(o.name)
            )
            for o in task.outputs
        ],
        totalcost=float(task.totalcost) if task.totalcost is not None else None,
        error=entry.error,
    )


def listing(
    entries: list[JournalEntry], warnings: list[str], spend: tuple[float, float] | None = None
) -> TaskList:
    """The entries as a task list that stays within :data:`LISTING_BUDGET`, saying so when cut."""
    tasks: list[TaskSummary] = []
    size = 0
    for entry in entries:
        summary = summarize(entry)
        size += len(summary.model_dump_json())
        if size > LISTING_BUDGET:
            warnings = [
                *warnings,
                f"{len(entries) - len(tasks)} older task(s) left out to keep the answer small",
            ]
            break
        tasks.append(summary)
    today, month = spend if spend is not None else (None, None)
    return TaskList(tasks=tasks, spent_today=today, spent_this_month=month, warnings=warnings)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_entry(item: TaskSummary) -> str:
    prompt = item.prompt if len(item.prompt) <= 60 else item.prompt[:57] + "..."
    where = item.saved[0] if item.saved else (item.images[0] if item.images else "")
    return f"- {item.taskid} [{item.status}] {item.created} {prompt!r} {where}".rstrip()


async def entry_of(state: AppState, taskid: str) -> JournalEntry:
    """The caller's task, refreshed from Wiro when credentials allow, else as the journal has it."""
    problem: WiroError | None = None
    try:
        await reach(state, taskid)
    except ToolError as exc:
        raise ResourceNotFoundError(str(exc)) from None
    if state.wiro is not None:
        try:
            with anyio.move_on_after(state.settings.answer_margin / 2):
                await state.journal.update(await state.wiro.detail(taskid=taskid))
        except WiroNotFoundError:
            pass
        except WiroError as exc:
            problem = exc
    try:
        entry = await state.journal.get(taskid, state.scope)
    except JournalUnavailableError as exc:
        raise ResourceError(str(exc)) from exc
    if entry is None and problem is not None:
        raise ResourceError(f"task {taskid} could not be read from Wiro: {problem}") from problem
    if entry is None and state.caller.scoped:
        raise ResourceNotFoundError(not_yours(taskid))  # the same words as for another caller's task
    if entry is None:
        raise ResourceNotFoundError(f"no task {taskid!r}: Wiro and the local task journal do not know it")
    return entry


async def output_bytes(state: AppState, taskid: str, name: str) -> tuple[bytes, str]:
    """One output image's bytes and MIME type, from the saved file or fetched from its link."""
    entry = await entry_of(state, taskid)
    task = entry.as_task()
    found = next((o for o in task.outputs if o.name == name), None)
    if found is None:
        names = ", ".join(o.name for o in task.outputs) or "none yet"
        raise ResourceNotFoundError(f"task {taskid} has no output {name!r} (outputs: {names})")
    delivery = state.delivery
    try:
        with anyio.fail_after(state.settings.answer_margin):
            return await delivery.image_bytes(
                found, await delivery.saved_path(entry, name)
            ), found.contenttype
    except TimeoutError as exc:
        raise ResourceError(
            f"output {name} of task {taskid} could not be fetched within {state.settings.answer_margin:g} s; "
            f"it is at {found.url}"
        ) from exc
    except (MediaError, OSError) as exc:
        raise ResourceError(f"output {name} of task {taskid} could not be read: {exc}") from exc


def register_catalog(server: MCPServer[AppState], journal: TaskJournal, settings: Settings) -> None:
    # Static resources get no request context: the caller comes from the request's access token.
    def caller() -> Caller:
        return caller_of(settings, get_access_token())

    @server.resource(
        "wiro://tasks",
        name="recent-tasks",
        title="Recent Seedream tasks",
        description=f"The {RECENT} most recent tasks in the local task journal, newest first.",
        mime_type="application/json",
    )
    async def recent_tasks() -> str:
        who = caller()
        try:
            entries = await journal.recent(RECENT, who.owner if who.scoped else None)
        except JournalUnavailableError as exc:
            raise ResourceError(str(exc)) from exc
        listed = listing(entries, journal.warnings(), await spend_of(journal, who.owner))
        return listed.model_dump_json(indent=2)

    @server.resource(
        "wiro://spend",
        name="spend",
        title="Spend on Seedream tasks",
        description="What this key's finished tasks cost per day (last 31 days), today and this month, "
        "with the budget settings.",
        mime_type="application/json",
    )
    async def spend() -> str:
        try:
            days = await by_day(journal, caller().owner)
        except JournalUnavailableError as exc:
            raise ResourceError(str(exc)) from exc
        today, month = totals_of(days)
        threshold = settings.confirm_above
        confirm = "never" if threshold is None else "always" if threshold == 0 else f"above ${threshold:g}"
        return SpendReport(
            today=today,
            this_month=month,
            days=[{"day": d.day, "usd": d.usd, "tasks": d.tasks} for d in days],
            budget_usd=settings.budget_usd,
            max_task_usd=settings.max_task_usd,
            confirm=confirm,
        ).model_dump_json(indent=2)

    @server.resource(
        "wiro://tasks/{taskid}",
        name="task",
        title="A Seedream task",
        description="One task as JSON: status, inputs, images and where they are saved, cost, times.",
        mime_type="application/json",
    )
    async def task(taskid: str, ctx: Context[AppState]) -> str:
        entry = await entry_of(state_of(ctx), taskid)
        return view_of(entry).model_dump_json(indent=2)

    @server.resource(
        "wiro://tasks/{taskid}/outputs/{name}",
        name="task-output",
        title="A Seedream image",
        description="The bytes of one output image of a task, fetched through this server.",
        mime_type="image/png",
    )
    async def output(taskid: str, name: str, ctx: Context[AppState]) -> bytes:
        data, _ = await output_bytes(state_of(ctx), taskid, name)
        return data

    @server.prompt(
        name="seedream_ideas",
        title="Seedream image ideas",
        description="Start from one of Seedream 3.0's example prompts on Wiro (pick 1-5), or see all five.",
    )
    def seedream_ideas(
        pick: Annotated[
            str | None,
            Field(description="Which idea to use, 1 to 5; leave empty to see all five."),
        ] = None,
    ) -> str:
        count = len(EXAMPLE_PROMPTS)
        if pick is not None and pick.strip():
            number = pick.strip()
            if not number.isdigit() or not 1 <= int(number) <= count:
                raise MCPError(
                    code=INVALID_PARAMS,
                    message=f"pick must be a number from 1 to {count}, or empty for all; got {pick[:20]!r}",
                )
            idea = EXAMPLE_PROMPTS[int(number) - 1]
            return f"Generate an image with Seedream 3.0 (generate_image) from this prompt:\n\n{idea}"
        listing = "\n".join(f"{n}. {idea}" for n, idea in enumerate(EXAMPLE_PROMPTS, start=1))
        # The person's own message: they ask the model to offer the ideas, then generate their choice.
        return (
            f"Show me these {count} image ideas for Seedream 3.0 and let me pick one (or change it); "
            f"then generate my choice with generate_image:\n\n{listing}"
        )
