"""How quickly and how cheaply tasks are followed, against the emulator, side by side.

Run with ``uv run python bench/follow.py``. It prints, in one run:

* the time from the emulator marking a task done to the tool call returning, with the task
  socket and with polling only;
* Task/Detail calls per job, and per second of job;
* the wall time of 64 concurrent jobs over that of one job, with the inline preview made for
  each image (the default) and without it (following alone).

The emulator runs in a process of its own, as Wiro would be on other machines, so its work
does not share this process's interpreter with the server being measured.
"""

from __future__ import annotations

import multiprocessing
import random
import statistics
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from wiro_seedream_mcp.app import build_server
from wiro_seedream_mcp.config import DEFAULT_PREVIEW_SIZE, Settings, default_socket_url
from wiro_seedream_mcp.emulator import EmulatorServer, Project, Timings, WiroEmulator

# A short but realistic task: about 2.5 s from Run to done.
TIMINGS = Timings(queue=0.5, prepare=0.3, generate=1.5, postprocess=0.2)
JOBS_PER_MODE = 12
CONCURRENT = 64


@dataclass
class Sample:
    latency: float  # emulator done -> tool returned, seconds
    job_seconds: float
    details: int


def serve_emulator(conn: Connection) -> None:
    """The emulator's process: serves HTTP, and answers the benchmark's questions on ``conn``."""
    with EmulatorServer(WiroEmulator(Project(), TIMINGS)) as server:
        conn.send(server.base_url)
        while True:
            command, argument = conn.recv()
            if command == "use":
                server.use(WiroEmulator(Project(), TIMINGS, socket=argument))
                conn.send(None)
            elif command == "stats":
                emulator = server.emulator
                details: dict[str, int] = {}
                for record in emulator.requests:
                    if record.path.endswith("/Task/Detail"):
                        taskid = str(record.json().get("taskid"))
                        details[taskid] = details.get(taskid, 0) + 1
                conn.send({t: (emulator.finished_at(t), details.get(t, 0)) for t in argument})
            else:
                return


class RemoteEmulator:
    def __init__(self) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=serve_emulator, args=(child,), daemon=True)
        self.process.start()
        self.base_url: str = self.conn.recv()

    def ask(self, command: str, argument: Any = None) -> Any:
        self.conn.send((command, argument))
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(("stop", None))
        self.process.join(10)


def settings(base_url: str, socket: bool, preview: bool) -> Settings:
    project = Project()
    return Settings(
        api_key=SecretStr(project.api_key),
        api_secret=SecretStr(project.api_secret or ""),
        base_url=base_url,
        wait_timeout=60,
        socket_url=default_socket_url(base_url) if socket else None,
        preview_size=DEFAULT_PREVIEW_SIZE if preview else None,
    )


async def run_jobs(
    emulator: RemoteEmulator, socket: bool, jobs: int, stagger: float, preview: bool = True
) -> tuple[list[Sample], float]:
    emulator.ask("use", socket)
    runs: list[tuple[str, float, float]] = []  # taskid, started, returned
    began = time.monotonic()
    async with Client(build_server(settings(emulator.base_url, socket, preview))) as client:

        async def one(n: int) -> None:
            # Random start offsets sample every phase of the poll schedule.
            await anyio.sleep(random.uniform(0, stagger))
            start = time.monotonic()
            result = await client.call_tool("generate_image", {"prompt": f"bench {n}", "seed": n})
            returned = time.monotonic()
            data = result.structured_content or {}
            if not data.get("succeeded"):
                raise RuntimeError(f"job {n} failed: {result.content}")
            runs.append((data["taskid"], start, returned))

        async with anyio.create_task_group() as tg:
            for n in range(jobs):
                tg.start_soon(one, n)
    wall = time.monotonic() - began
    # time.monotonic is one system-wide clock on Linux and macOS: the two processes agree.
    stats = emulator.ask("stats", [taskid for taskid, _, _ in runs])
    samples = [
        Sample(returned - stats[taskid][0], returned - start, stats[taskid][1])
        for taskid, start, returned in runs
    ]
    return samples, wall


def summary(name: str, samples: list[Sample]) -> str:
    latencies = sorted(s.latency for s in samples)
    p90 = latencies[int(0.9 * (len(latencies) - 1))]
    details = statistics.mean(s.details for s in samples)
    rate = statistics.mean(s.details / s.job_seconds for s in samples)
    return (
        f"{name:<12} {statistics.mean(latencies):>10.3f} {statistics.median(latencies):>10.3f} "
        f"{p90:>10.3f} {max(latencies):>10.3f} {details:>13.1f} {rate:>14.2f}"
    )


async def main() -> None:
    emulator = RemoteEmulator()
    try:
        socket_samples, _ = await run_jobs(emulator, True, JOBS_PER_MODE, stagger=1.0)
        poll_samples, _ = await run_jobs(emulator, False, JOBS_PER_MODE, stagger=1.0)
        scaling = {}
        for preview in (True, False):
            _, one = await run_jobs(emulator, True, 1, stagger=0, preview=preview)
            _, many = await run_jobs(emulator, True, CONCURRENT, stagger=0, preview=preview)
            scaling[preview] = (one, many)
    finally:
        emulator.close()

    print(f"Emulated task: {TIMINGS.total:.1f} s from Run to done; {JOBS_PER_MODE} jobs per mode.\n")
    print("done -> tool returned (s)   mean     median        p90        max   Detail/job   Detail/s/job")
    print(summary("socket", socket_samples))
    print(summary("poll only", poll_samples))
    print()
    print(f"{'wall time':<28}{'1 job':>8}{f'{CONCURRENT} jobs':>10}{'ratio':>8}")
    for preview, label in ((True, "with previews (default)"), (False, "following only (no preview)")):
        one, many = scaling[preview]
        print(f"{label:<28}{one:>8.3f}{many:>10.3f}{many / one:>7.2f}x")
    print()
    print("Targets: done->returned <= 0.3 s (socket), <= 1 s (polling); <= 1 Detail/s per task;")
    print(f"{CONCURRENT} jobs <= 1.2x one job. All jobs run in one MCP session; the emulator runs in")
    print("its own process but shares this machine's cores.")


if __name__ == "__main__":
    anyio.run(main)
