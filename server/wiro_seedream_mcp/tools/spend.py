"""``estimate_cost``: what a generate_image call with these inputs would cost, without starting it."""

# No `from __future__ import annotations`: the tool signature is evaluated at registration.
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from ..pricing import CostEstimate
from ..state import AppState, state_of
from ..wiro.seedream import (
    DEFAULT_GUIDANCE,
    DEFAULT_PROMPT,
    DEFAULT_SEED,
    DEFAULT_SIZE,
    DEFAULT_WATERMARK,
    GuidanceScale,
    Seed,
    SeedreamInputs,
    SizeParam,
    Watermark,
)
from .sets import Count


class SetEstimate(CostEstimate):
    """The estimate of one task, and of ``count`` of them."""

    count: int = Field(description="How many images (one task each) the total is for.")
    totalusd: float | None = Field(
        description="What that many are expected to cost in all; null when unknown."
    )


def register(server: MCPServer[AppState]) -> None:
    @server.tool(
        name="estimate_cost",
        title="Estimate what an image costs",
        description=(
            "What one generate_image task with these inputs is expected to cost, in US dollars, and "
            "where the figure comes from (Wiro's price for the model, or the average of recent tasks); "
            "with count, what that many images (one task each) cost in all. Starts nothing and costs "
            "nothing."
        ),
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True),
    )
    async def estimate_cost(
        ctx: Context[AppState],
        size: SizeParam = DEFAULT_SIZE,
        watermark: Watermark = DEFAULT_WATERMARK,
        guidanceScale: GuidanceScale = DEFAULT_GUIDANCE,  # noqa: N803 - Wiro's field name
        seed: Seed = DEFAULT_SEED,
        count: Count = 1,
    ) -> Annotated[CallToolResult, SetEstimate]:
        state = state_of(ctx)
        inputs = SeedreamInputs(
            prompt=DEFAULT_PROMPT, size=size, watermark=watermark, guidanceScale=guidanceScale, seed=seed
        )
        estimate = await state.prices.estimate(inputs, state.owner)
        total = round(estimate.usd * count, 6) if estimate.usd is not None else None
        if estimate.usd is None:
            text = f"The cost of a {size} image is not known yet: {estimate.basis}."
        elif count == 1:
            text = f"A {size} image is expected to cost ${estimate.usd:.4g} ({estimate.basis})."
        else:
            text = (
                f"{count} images at {size} (one task each) are expected to cost ${total:.4g} in all, "
                f"${estimate.usd:.4g} each ({estimate.basis})."
            )
        found = SetEstimate(**estimate.model_dump(), count=count, totalusd=total)
        return CallToolResult(
            content=[TextContent(text=text)], structured_content=found.model_dump(mode="json")
        )
