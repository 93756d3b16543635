"""The MCP server: one MCPServer, one shared HTTP client, the tools.

Tool functions stay thin: check the input, call the Wiro client, hand the task to
:mod:`.results`. Waiting lives in :mod:`.follow`, the API in :mod:`.wiro`, the task journal
in :mod:`.journal`, resources and prompts in :mod:`.catalog`.
"""

# No `from __future__ import annotations` here: the tool signatures are evaluated when the
# tools are registered, and get_task's wait bound is a value known only then.
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from . import __version__
from .catalog import TaskList, describe_entry, register_catalog, summarize
from .config import ConfigError, Settings
from .follow import PROGRESS_TOTAL, TaskFollower, stop_quietly
from .journal import Journal, JournalEntry
from .results import TaskResult, pending_hint, task_result
from .state import AppState, state_of
from .wiro.client import WiroClient, exactly_one
from .wiro.errors import CODE_NOT_FOUND, WiroConnectionError, WiroError, WiroHTTPError
from .wiro.models import RunReceipt, Task, TaskStatus
from .wiro.seedream import (
    DEFAULT_GUIDANCE,
    DEFAULT_SEED,
    DEFAULT_SIZE,
    DEFAULT_WATERMARK,
    CallbackUrl,
    GuidanceScale,
    MaybeText,
    Prompt,
    Seed,
    SeedreamInputs,
    SizeParam,
    Watermark,
    optional_text,
)

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Makes images from text with ByteDance Seedream 3.0 on Wiro.ai. Each generate_image call starts "
    "one paid Wiro task and waits for it, reporting progress; the result shows a small preview and "
    "links the image (a public URL kept for a limited time, and a saved file when the server is set "
    "up to save). If the wait ends before the image is ready, the result gives the task id: call "
    "get_task with it and wait instead of generating again. kill_task stops a running task, "
    "cancel_task removes a queued one. list_tasks shows recent tasks, also after a restart."
)

TaskOutcome = Annotated[CallToolResult, TaskResult]


def load_settings() -> tuple[Settings, str | None]:
    """Settings from the environment; a bad value is reported by every tool, not a crash at start."""
    try:
        return Settings.from_env(), None
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return Settings(), f"The server's configuration is invalid: {exc}. Fix it and restart the server."


def build_server(settings: Settings | None = None) -> MCPServer[AppState]:
    problem: str | None = None
    if settings is None:
        settings, problem = load_settings()
    for note in settings.notes:
        log.warning("%s", note)

    journal = Journal(settings.state_dir)

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        if problem is None and settings.has_credentials:
            log.info(
                "ready: Wiro at %s, %s authentication",
                settings.base_url,
                "signature" if settings.signed else "key-only",
            )
        elif problem is None:
            log.warning("WIRO_API_KEY is not set: tools will answer with a configuration error")
        state = AppState(settings=settings, journal=journal, problem=problem)
        try:
            yield state
        finally:
            await state.aclose()

    server: MCPServer[AppState] = MCPServer(
        "wiro-seedream",
        title="Seedream 3.0 images (Wiro)",
        description="Text-to-image with ByteDance Seedream 3.0 through the Wiro.ai task API.",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
    )
    _register_tools(server, settings.wait_timeout)
    register_catalog(server, journal)
    return server


def _follower(ctx: Context[AppState], state: AppState, task: Task) -> TaskFollower:
    async def progress(value: float, message: str) -> None:
        await ctx.report_progress(value, PROGRESS_TOTAL, message)

    return TaskFollower(
        state.client(),
        task.id,
        token=task.socketaccesstoken or None,
        socket_url=state.settings.socket_url,
        on_progress=progress,
        on_task=state.journal.update,
        status=task.status,
    )


async def _finished(state: AppState, task: Task, **options: Any) -> CallToolResult:
    """The result for a task that ended: journal it, deliver its images, describe it."""
    await state.journal.update(task)
    delivered = await state.delivery.deliver(task, await state.journal.get(task.id))
    return task_result(task, delivered=delivered, **options)


async def _journal_entry(journal: Journal, taskid: str | None, token: str | None) -> Task | None:
    """The task as the journal last recorded it, as a Task; None when it is not there."""
    entry: JournalEntry | None = None
    if taskid:
        entry = await journal.get(taskid.strip())
    elif token:
        entry = await journal.by_token(token.strip())
    return None if entry is None else entry.as_task()


async def _run(client: WiroClient, inputs: SeedreamInputs) -> RunReceipt:
    """Start the task; a failure says whether a paid task may have started all the same."""
    try:
        return await client.run(inputs)
    except WiroError as exc:
        error = _tool_error(exc, "start the task")
        if _may_have_run(exc):
            log.warning("Run failed after the request may have reached Wiro: %s", exc)
            error = ToolError(
                f"{error} The request may have reached Wiro and started a (paid) task all the same. "
                "It was not sent again, so that nothing is paid for twice: look at the task list in "
                "the Wiro dashboard before trying again."
            )
        raise error from exc


def _may_have_run(exc: WiroError) -> bool:
    """Whether a failed Run may still have started a task: the answer was lost, not a refusal."""
    if isinstance(exc, WiroConnectionError):
        return exc.sent
    return isinstance(exc, WiroHTTPError) and (exc.status is None or exc.status >= 500)


async def _stop(state: AppState, action: str, call: Awaitable[Task], *, refused: str) -> CallToolResult:
    """Kill or Cancel, as the person asked: the task as it now is, or why Wiro refused."""
    try:
        task = await call
    except WiroError as exc:
        error = _tool_error(exc, f"{action} the task")
        if exc.code == CODE_NOT_FOUND and "state" in exc.message.lower():
            # The task exists but is past (or not yet at) the point where this action applies.
            error = ToolError(f"{error} {refused}")
        raise error from exc
    await state.journal.update(task)
    return task_result(task, lead=f"{action.capitalize()} requested.")


def _tool_error(exc: WiroError, action: str) -> ToolError:
    about = f" (task {exc.taskid})" if exc.taskid else ""
    return ToolError(f"Wiro could not {action}{about}: {exc}")


def _register_tools(server: MCPServer[AppState], wait_limit: float) -> None:
    _register_generate(server)
    _register_task_tools(server, wait_limit)


def _register_generate(server: MCPServer[AppState]) -> None:
    @server.tool(
        name="generate_image",
        title="Generate an image with Seedream 3.0",
        description=(
            "Make one image from a text prompt with ByteDance Seedream 3.0 on Wiro.ai. Starts a paid "
            "task and waits for it, reporting progress; returns the image as a link with its task id. "
            "If the image is not ready in time, returns the task id instead: then call get_task with "
            "wait, do not generate again. Cancelling the call stops the task on Wiro."
        ),
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    )
    async def generate_image(
        ctx: Context[AppState],
        prompt: Prompt,
        size: SizeParam = DEFAULT_SIZE,
        watermark: Watermark = DEFAULT_WATERMARK,
        guidanceScale: GuidanceScale = DEFAULT_GUIDANCE,
        seed: Seed = DEFAULT_SEED,
        callbackUrl: CallbackUrl = None,
        wait: Annotated[
            bool,
            Field(
                title="Wait",
                description=(
                    "Wait for the image (true, the default) or return the task id right after the "
                    "task was started (false), to pick it up later with get_task."
                ),
            ),
        ] = True,
    ) -> TaskOutcome:
        try:
            inputs = SeedreamInputs(
                prompt=prompt,
                size=size,
                watermark=watermark,
                guidanceScale=guidanceScale,
                seed=seed,
                callbackUrl=callbackUrl,
            )
        except ValidationError as exc:
            raise ToolError(f"invalid input: {exc}") from exc
        state = state_of(ctx)
        client = state.client()
        # Once Run is sent, its answer is awaited even if the call is cancelled meanwhile: it
        # carries the id of a task that is paid for, needed to stop it and never to lose it.
        with anyio.CancelScope(shield=True):
            receipt = await _run(client, inputs)
            # From here on the task exists and is paid for: every way out reports its id, and
            # the journal has it before anything else happens.
            await state.journal.accepted(receipt.taskid, receipt.socketaccesstoken, inputs.to_wire())
        accepted = Task(
            id=receipt.taskid, socketaccesstoken=receipt.socketaccesstoken, status=TaskStatus.QUEUE
        )
        follower = _follower(ctx, state, accepted)
        try:
            await anyio.lowlevel.checkpoint()  # a cancellation that came during Run lands here
            if not wait:
                return task_result(
                    accepted, lead="Task started.", next_step=pending_hint(accepted, state.settings)
                )
            await follower.note(TaskStatus.QUEUE)
            task = await follower.wait(state.settings.wait_timeout)
        except anyio.get_cancelled_exc_class():
            log.warning("task %s: the call was cancelled; stopping the task", receipt.taskid)
            await stop_quietly(client, receipt.taskid, follower.status)
            raise
        except Exception as exc:
            log.warning("task %s: following it failed", receipt.taskid, exc_info=True)
            return task_result(
                accepted.model_copy(update={"status": follower.status}),
                error=f"the task was started, but checking on it failed: {exc}",
                next_step=pending_hint(accepted, state.settings),
            )
        if task.done:
            return await _finished(state, task, cancelled_is_error=True)
        return task_result(
            task, next_step=pending_hint(task, state.settings, waited=state.settings.wait_timeout)
        )


def _register_task_tools(server: MCPServer[AppState], wait_limit: float) -> None:
    @server.tool(
        name="get_task",
        title="Get a Seedream task",
        description=(
            "Look up a Wiro task by its taskid or its tasktoken (give exactly one): its status, and its "
            "images once it has finished. With wait, keeps waiting (reporting progress) up to that many "
            "seconds for it to finish: the way to pick up a task that generate_image handed back "
            "before its image was ready. Cancelling this call does not stop the task."
        ),
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    async def get_task(
        ctx: Context[AppState],
        taskid: Annotated[MaybeText, optional_text("The task id that generate_image returned.")] = None,
        tasktoken: Annotated[
            MaybeText, optional_text("The task's token (socketaccesstoken), instead of taskid.")
        ] = None,
        wait: Annotated[
            float,
            Field(
                ge=0,
                le=wait_limit,
                title="Wait",
                description=(
                    f"Seconds to wait for the task to finish, 0 to {wait_limit:g}; 0 (the default) "
                    "answers at once."
                ),
            ),
        ] = 0,
    ) -> TaskOutcome:
        _exactly_one(taskid=taskid, tasktoken=tasktoken)
        state = state_of(ctx)
        client = state.client()
        try:
            task = await client.detail(taskid=taskid, tasktoken=tasktoken)
            if not task.done and wait > 0:
                task = await _follower(ctx, state, task).wait(wait)
        except (WiroConnectionError, WiroHTTPError) as exc:
            remembered = await _journal_entry(state.journal, taskid, tasktoken)
            if remembered is None:
                raise _tool_error(exc, "look up the task") from exc
            return task_result(
                remembered,
                warnings=[f"Wiro could not be reached ({exc}); this is the task as last recorded here."],
                next_step=f'Call get_task with taskid "{remembered.id}" again later.',
            )
        except WiroError as exc:
            raise _tool_error(exc, "look up the task") from exc
        if task.done:
            return await _finished(state, task)
        await state.journal.update(task)
        return task_result(task, next_step=pending_hint(task, state.settings, waited=wait))

    @server.tool(
        name="kill_task",
        title="Kill a running Seedream task",
        description=(
            "Stop a task that is already running on Wiro, by taskid or socketaccesstoken (give exactly "
            "one). It ends as task_cancel and produces no image. For a task still in the queue, use "
            "cancel_task."
        ),
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
        ),
    )
    async def kill_task(
        ctx: Context[AppState],
        taskid: Annotated[MaybeText, optional_text("The id of the task to stop.")] = None,
        socketaccesstoken: Annotated[MaybeText, optional_text("The task's token, instead of taskid.")] = None,
    ) -> TaskOutcome:
        _exactly_one(taskid=taskid, socketaccesstoken=socketaccesstoken)
        state = state_of(ctx)
        return await _stop(
            state,
            "kill",
            state.client().kill(taskid=taskid, socketaccesstoken=socketaccesstoken),
            refused="A task still in the queue is removed with cancel_task.",
        )

    @server.tool(
        name="cancel_task",
        title="Cancel a queued Seedream task",
        description=(
            "Remove a task from Wiro's queue before it starts, by taskid. Wiro refuses once the task "
            "has started: stop a running task with kill_task."
        ),
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
        ),
    )
    async def cancel_task(
        ctx: Context[AppState],
        taskid: Annotated[str, Field(min_length=1, description="The id of the queued task to cancel.")],
    ) -> TaskOutcome:
        _exactly_one(taskid=taskid)
        state = state_of(ctx)
        return await _stop(
            state,
            "cancel",
            state.client().cancel(taskid=taskid),
            refused="If the task is already running, stop it with kill_task.",
        )

    @server.tool(
        name="list_tasks",
        title="List recent Seedream tasks",
        description=(
            "The most recent tasks this server started or looked up, newest first, from its local task "
            "journal (it survives restarts): id, status, prompt, image links and saved files. Use "
            "get_task for a task's current state."
        ),
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    async def list_tasks(
        ctx: Context[AppState],
        limit: Annotated[
            int, Field(ge=1, le=100, title="Limit", description="How many tasks to list, 1 to 100.")
        ] = 20,
    ) -> Annotated[CallToolResult, TaskList]:
        entries = await state_of(ctx).journal.recent(limit)
        listed = TaskList(tasks=[summarize(entry) for entry in entries])
        lines = [f"{len(entries)} recent task(s), newest first:"] if entries else ["No tasks recorded yet."]
        lines.extend(describe_entry(item) for item in listed.tasks)
        return CallToolResult(
            content=[TextContent(text="\n".join(lines))], structured_content=listed.model_dump(mode="json")
        )


def _exactly_one(**fields: str | None) -> None:
    try:
        exactly_one(**fields)
    except ValueError as exc:
        raise ToolError(f"{str(exc).capitalize()}.") from None
