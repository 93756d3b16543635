"""Four images from one call against one image, side by side, on the emulator.

Run with ``uv run python bench/sets.py``. It prints, in one run, the median wall time of a
``generate_image`` call with ``count`` 1 and with ``count`` 4 (the set's tasks run at once), their
ratio, and the size of the four-image answer with its previews against the hosts' 1 MB limit.

The emulator runs in a process of its own (as in ``bench/follow.py``), with tasks of about 2.5 s.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.follow import RemoteEmulator, settings
from wiro_seedream_mcp.app import build_server

ROUNDS = 5
LIMIT = 1_000_000


async def timed(client: Client, count: int, seed: int) -> tuple[float, int]:
    """One call's wall time, and its answer's size in bytes."""
    began = time.monotonic()
    result = await client.call_tool(
        "generate_image", {"prompt": f"bench set {seed}", "seed": seed, "count": count}
    )
    took = time.monotonic() - began
    data = result.structured_content or {}
    made = [v for v in data.get("variations") or [data] if v.get("succeeded")]
    if len(made) != count:
        raise RuntimeError(f"count {count}: {len(made)} made: {result.content}")
    return took, len(result.model_dump_json(by_alias=True, exclude_none=True))


async def main() -> None:
    emulator = RemoteEmulator()
    try:
        emulator.ask("use", True)
        one: list[float] = []
        four: list[float] = []
        sizes: list[int] = []
        async with Client(build_server(settings(emulator.base_url, socket=True, preview=True))) as client:
            for n in range(ROUNDS):  # alternated, so a slower moment of the machine hits both
                took, _ = await timed(client, 1, 1000 + 10 * n)
                one.append(took)
                took, size = await timed(client, 4, 5000 + 10 * n)
                four.append(took)
                sizes.append(size)
    finally:
        emulator.close()
    ratio = statistics.median(four) / statistics.median(one)
    print(f"{'call':<10} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, times in (("count 1", one), ("count 4", four)):
        print(f"{name:<10} {statistics.median(times):>9.3f} {min(times):>7.3f} {max(times):>7.3f}")
    print(f"four images / one image: {ratio:.2f}x (goal: at most 1.2x)")
    print(f"answer with four previews: {max(sizes):,} bytes, {max(sizes) / LIMIT:.0%} of 1 MB")


if __name__ == "__main__":
    anyio.run(main)
