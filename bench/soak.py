"""A soak: minutes of mixed calls against the emulator, watching the server's memory and files.

Run with ``uv run python bench/soak.py --minutes 10``. One server process is driven over real
stdio, as a host drives it, with rounds of:

* a burst of 64 concurrent ``generate_image`` calls;
* calls cancelled mid-wait (the server must stop their tasks);
* tasks that fail, Detail answers that fail for a while, a stalled image download;
* ``get_task``, ``list_tasks`` and resource reads.

Every 30 s it prints the server's resident memory (RSS) and open file descriptors beside the
calls made and the unexpected errors. A healthy run shows both flat after warming up, and 0
unexpected errors. It stops by itself after ``--minutes``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from wiro_seedream_mcp.emulator import FAIL_MARKER, EmulatorServer, Project, Timings, WiroEmulator
from wiro_seedream_mcp.wiro.seedream import SIZES

TIMINGS = Timings(queue=0.1, prepare=0.1, generate=0.4, postprocess=0.1)
BURST = 64


def server_pid(parent: int) -> int | None:
    """The server: the child process of this one that runs wiro_seedream_mcp."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[3]) == parent and b"wiro_seedream_mcp" in cmdline:
            return int(entry.name)
    return None


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    def __init__(self, emulator: EmulatorServer) -> None:
        self.emulator = emulator
        self.calls = 0
        self.unexpected: list[str] = []

    def check(self, result: object, *, error_expected: bool, what: str) -> None:
        self.calls += 1
        is_error = bool(getattr(result, "is_error", False))
        if is_error != error_expected:
            self.unexpected.append(f"{what}: {str(getattr(result, 'content', result))[:200]}")

    async def burst(self, client: Client, round_: int) -> None:
        async with anyio.create_task_group() as tg:
            for n in range(BURST):
                tg.start_soon(self.generate, client, f"soak round {round_} image {n}", SIZES[n % len(SIZES)])

    async def generate(self, client: Client, prompt: str, size: str) -> None:
        result = await client.call_tool("generate_image", {"prompt": prompt, "size": size, "seed": 0})
        self.check(result, error_expected=False, what="generate")

    async def cancelled(self, client: Client) -> None:
        with anyio.move_on_after(0.3):
            await client.call_tool("generate_image", {"prompt": "soak cancelled"})
        self.calls += 1

    async def failures(self, client: Client) -> None:
        failed = await client.call_tool("generate_image", {"prompt": f"soak {FAIL_MARKER}"})
        self.check(failed, error_expected=True, what="failing task")
        self.emulator.emulator.inject("/Task/Detail", "503", times=2)
        self.emulator.emulator.inject("/0.png", "trickle", times=1, delay=0.5)
        flaky = await client.call_tool("generate_image", {"prompt": "soak flaky"})
        self.check(flaky, error_expected=False, what="flaky Detail and a stalled image")

    async def looking(self, client: Client) -> None:
        listed = await client.call_tool("list_tasks", {"limit": 20})
        self.check(listed, error_expected=False, what="list_tasks")
        tasks = (listed.structured_content or {}).get("tasks", [])
        if tasks:
            looked = await client.call_tool("get_task", {"taskid": tasks[0]["taskid"]})
            self.check(looked, error_expected=False, what="get_task")
            await client.read_resource(f"wiro://tasks/{tasks[0]['taskid']}")
            self.calls += 1
        await client.read_resource("wiro://tasks")
        self.calls += 1


async def soak(minutes: float) -> int:
    with EmulatorServer(WiroEmulator(Project(), TIMINGS)) as emulator, tempfile.TemporaryDirectory() as state:
        env = {
            "WIRO_API_KEY": emulator.emulator.project.api_key,
            "WIRO_API_SECRET": emulator.emulator.project.api_secret or "",
            "WIRO_API_BASE_URL": emulator.base_url,
            "WIRO_STATE_DIR": state,
            "WIRO_OUTPUT_DIR": str(Path(state) / "images"),
            "WIRO_LOG_LEVEL": "ERROR",
            "WIRO_WAIT_TIMEOUT": "5",
        }
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "wiro_seedream_mcp", "serve"], env=env
        )
        run = Soak(emulator)
        async with Client(params) as client:
            pid = server_pid(os.getpid())
            if pid is None:
                print("could not find the server process")
                return 1
            began = time.monotonic()
            next_report = began
            round_ = 0
            print(f"{'elapsed':>8} {'calls':>7} {'unexpected':>10} {'RSS MiB':>8} {'fds':>5}")
            while time.monotonic() - began < minutes * 60:
                if time.monotonic() >= next_report:
                    print(
                        f"{time.monotonic() - began:7.0f}s {run.calls:7d} {len(run.unexpected):10d} "
                        f"{rss_kib(pid) / 1024:8.1f} {open_fds(pid):5d}",
                        flush=True,
                    )
                    next_report += 30
                async with anyio.create_task_group() as tg:
                    tg.start_soon(run.burst, client, round_)
                    tg.start_soon(run.cancelled, client)
                    tg.start_soon(run.failures, client)
                    tg.start_soon(run.looking, client)
                round_ += 1
            print(
                f"{time.monotonic() - began:7.0f}s {run.calls:7d} {len(run.unexpected):10d} "
                f"{rss_kib(pid) / 1024:8.1f} {open_fds(pid):5d}"
            )
        for problem in run.unexpected[:10]:
            print("unexpected:", problem)
        print(f"{round_} rounds, {run.calls} calls, {len(run.unexpected)} unexpected errors")
        return 1 if run.unexpected else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    sys.exit(anyio.run(soak, args.minutes))


if __name__ == "__main__":
    main()
