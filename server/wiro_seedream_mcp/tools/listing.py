"""``list_tasks``: the recent tasks of the local journal."""

# No `from __future__ import annotations`: the tool signature is evaluated at registration.
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from ..catalog import TaskList, describe_entry, listing, spend_of
from ..journal import JournalUnavailableError
from ..state import AppState, state_of


def register(server: MCPServer[AppState]) -> None:
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
            int,
            Field(strict=True, ge=1, le=100, title="Limit", description="How many tasks to list, 1 to 100."),
        ] = 20,
    ) -> Annotated[CallToolResult, TaskList]:
        state = state_of(ctx)
        try:
            entries = await state.journal.recent(limit, state.scope)
        except JournalUnavailableError as exc:
            raise ToolError(f"{exc}. {state.journal.advice}".strip()) from exc
        spend = await spend_of(state.journal, state.owner)
        listed = listing(entries, [], spend)
        lines = (
            [f"{len(listed.tasks)} recent task(s), newest first:"] if entries else ["No tasks recorded yet."]
        )
        lines.extend(describe_entry(item) for item in listed.tasks)
        if spend is not None:
            lines.append(f"Spent on finished tasks: ${spend[0]:.4g} today, ${spend[1]:.4g} this month.")
        lines.extend(f"Warning: {warning}" for warning in listed.warnings)
        return CallToolResult(
            content=[TextContent(text="\n".join(lines))], structured_content=listed.model_dump(mode="json")
        )
