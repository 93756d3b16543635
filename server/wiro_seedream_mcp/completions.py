"""Argument completion (``completion/complete``): the caller's own task ids for the task resources,
newest first, a task's output names, and the numbers of the ``seedream_ideas`` prompt's ideas."""

from __future__ import annotations

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer
from mcp.types import (
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
)

from .config import Settings
from .journal import JournalUnavailableError, TaskJournal
from .state import AppState, caller_of
from .wiro.seedream import EXAMPLE_PROMPTS

TASK = "wiro://tasks/{taskid}"
OUTPUT = "wiro://tasks/{taskid}/outputs/{name}"
# The most values one answer carries (the spec's limit).
MOST = 100
# How many of the caller's newest tasks are offered.
NEWEST = 200


def _offer(values: list[str], typed: str) -> Completion:
    matching = [value for value in values if value.startswith(typed)]
    return Completion(values=matching[:MOST], total=len(matching), has_more=len(matching) > MOST)


def register_completions(server: MCPServer[AppState], journal: TaskJournal, settings: Settings) -> None:
    @server.completion()  # type: ignore[no-untyped-call, untyped-decorator]  # the SDK leaves it untyped
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        typed = argument.value.strip()
        if isinstance(ref, PromptReference):
            ideas = [str(n) for n in range(1, len(EXAMPLE_PROMPTS) + 1)]
            wanted = ref.name == "seedream_ideas" and argument.name == "pick"
            return _offer(ideas, typed) if wanted else None
        if ref.uri not in (TASK, OUTPUT) or argument.name not in ("taskid", "name"):
            return None
        try:
            return _offer(await _values(ref.uri, argument.name, context), typed)
        except JournalUnavailableError:
            return Completion(values=[], total=0, has_more=False)

    async def _values(uri: str, name: str, context: CompletionContext | None) -> list[str]:
        who = caller_of(settings, get_access_token())
        owner = who.owner if who.scoped else None  # only the caller's own tasks are offered
        if name == "taskid":
            return [entry.taskid for entry in await journal.recent(NEWEST, owner)]
        taskid = ((context.arguments if context else None) or {}).get("taskid", "")
        entry = await journal.get(taskid, owner) if taskid and uri == OUTPUT else None
        names = [str(output.get("name", "")) for output in entry.outputs] if entry else []
        return [name for name in names if name]
