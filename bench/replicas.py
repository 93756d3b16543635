"""Two replicas of ``serve --http`` on one PostgreSQL journal, behind a round-robin front, under
many concurrent sessions from several people, against the emulator.

Run with ``uv run python bench/replicas.py`` (``--sessions``, ``--users``, ``--job`` to change the
load). PostgreSQL: the server ``WIRO_BENCH_POSTGRES_URL`` (or ``WIRO_TEST_POSTGRES_URL``) names,
else a throwaway cluster this script starts from Debian's ``postgresql`` package.

Each session is its own MCP client over streamable HTTP (the SDK's), with its person's own Wiro
key as the bearer token, and makes one ``generate_image`` call that waits for the image. Printed:
errors, the p50/p99 time of a call over the emulated job's time, the RSS of each server process,
and whether every task is journaled once and seen only by the person who started it.
"""

# ruff: noqa: E402 - the path is set before the imports (see below)
from __future__ import annotations

import sys
from pathlib import Path

# The repository's root, for the test suite's round-robin front (tests/http/front.py).
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2 as httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from wiro_seedream_mcp.emulator import Timings

# Each client would load the CA store (tens of ms) though nothing here uses TLS: one for all.
TLS = ssl.create_default_context()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fresh_database(server: str) -> Iterator[str]:
    """A new database on ``server`` for this run, dropped afterwards."""
    import asyncpg

    name = f"wiro_bench_{secrets.token_hex(4)}"

    async def run(statement: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    anyio.run(run, f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    finally:
        anyio.run(run, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL URL: the one the environment names, or a throwaway cluster in a temp folder."""
    named = os.environ.get("WIRO_BENCH_POSTGRES_URL") or os.environ.get("WIRO_TEST_POSTGRES_URL")
    if named:
        yield from fresh_database(named)
        return
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        sys.exit("no PostgreSQL: apt-get install postgresql, or set WIRO_BENCH_POSTGRES_URL")
    bin_dir = found[-1].parent
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="wiro-bench-pg-"))
    if as_pg:
        shutil.chown(folder, "postgres")
    port = free_port()
    data = folder / "data"
    subprocess.run(
        [*as_pg, str(bin_dir / "initdb"), "-D", str(data), "-U", "wiro", "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=300"
    subprocess.run(
        [
            *as_pg,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-w",
            "-o",
            options,
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield from fresh_database(f"postgresql://wiro@127.0.0.1:{port}/postgres")
    finally:
        subprocess.run(
            [*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu(self) -> float:
        """CPU seconds used so far (user and system)."""
        return cpu_of(self.process.pid)

    def rss(self) -> tuple[int, int]:
        """(current, peak) resident memory in KiB."""
        values = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
        return values["VmRSS"], values["VmHWM"]


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn(command: list[str], env: dict[str, str], log: Path, ready: str) -> Replica:
    """A process of its own (none under another's GIL), on a free port put in for ``{port}``;
    returned once ``ready`` (a URL path) answers."""
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [part.replace("{port}", str(port)) for part in command], env=env, stdout=out, stderr=out, cwd=ROOT
        )
    replica = Replica(process, port)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            sys.exit(f"{command[2]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{replica.origin}{ready}", timeout=1).status_code < 500:
                return replica
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"{command[2]} did not start")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@dataclass
class Outcome:
    user: int
    seconds: float
    taskid: str = ""
    error: str = ""


@dataclass
class Load:
    """``sessions`` MCP sessions, each connected first; then each makes its call, all at once
    (``ramp`` 0) or one after another over ``ramp`` seconds."""

    url: str
    keys: list[str]
    sessions: int
    ramp: float = 0.0
    offset: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    ready: int = 0
    all_ready: anyio.Event = field(default_factory=anyio.Event)

    def _counted(self) -> None:
        if self.ready + len(self.outcomes) >= self.sessions:
            self.all_ready.set()

    async def session(self, n: int, start: anyio.Event) -> None:
        user = n % len(self.keys)
        headers = {"authorization": f"Bearer {self.keys[user]}"}
        try:
            async with (
                httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(120.0), verify=TLS) as http,
                Client(streamable_http_client(self.url, http_client=http)) as client,
            ):
                await client.list_tools()
                self.ready += 1
                self._counted()
                await start.wait()
                await anyio.sleep(self.ramp * n / self.sessions)
                began = time.perf_counter()
                seed = self.offset + n + 1
                result = await client.call_tool(
                    "generate_image", {"prompt": f"bench image {seed}", "seed": seed}
                )
                took = time.perf_counter() - began
                structured = result.structured_content or {}
                taskid = str(structured.get("taskid", ""))
                failed = "" if not result.is_error and structured.get("succeeded") else "not succeeded"
                self.outcomes.append(Outcome(user, took, taskid, failed))
        except Exception as exc:  # every failure counts as an error of this session
            leaf: BaseException = exc
            while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
                leaf = leaf.exceptions[0]
            self.outcomes.append(Outcome(user, 0.0, error=f"{type(leaf).__name__}: {leaf}"[:300]))
            self._counted()

    async def run(self) -> float:
        start = anyio.Event()
        async with anyio.create_task_group() as tg:
            for n in range(self.sessions):
                tg.start_soon(self.session, n, start)
            # Every session connected and listed its tools: then the calls go.
            await self.all_ready.wait()
            began = time.perf_counter()
            start.set()
        return time.perf_counter() - began


@dataclass
class Round:
    name: str
    outcomes: list[Outcome]
    wall: float
    cpu: list[float]

    def line(self, job: float) -> str:
        times = [o.seconds for o in self.outcomes if not o.error]
        errors = sum(1 for o in self.outcomes if o.error)
        if not times:
            return f"{self.name}: errors {errors}, no call succeeded"
        p50, p99 = statistics.median(times), percentile(times, 0.99)
        return (
            f"{self.name}: errors {errors}; p50 {p50:.2f} s = {p50 / job:.2f}x the job, "
            f"p99 {p99:.2f} s = {p99 / job:.2f}x the job"
        )


def run_round(name: str, load: Load, processes: list[Replica]) -> Round:
    """One load, with the CPU each process used while it ran (this process last: the clients)."""
    before = [p.cpu() for p in processes] + [cpu_of(os.getpid())]
    wall = anyio.run(load.run)
    after = [p.cpu() for p in processes] + [cpu_of(os.getpid())]
    return Round(name, load.outcomes, wall, [b - a for a, b in zip(before, after, strict=True)])


async def audit(url: str, keys: list[str], outcomes: list[Outcome]) -> tuple[int, int]:
    """(tasks missing from their owner's list, tasks seen by someone else)."""
    missing = wrong = 0
    mine: dict[int, set[str]] = {}
    for outcome in outcomes:
        if outcome.taskid:
            mine.setdefault(outcome.user, set()).add(outcome.taskid)
    for user, key in enumerate(keys):
        async with (
            httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=60) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            listed = await client.call_tool("list_tasks", {"limit": 100})
            seen = {t["taskid"] for t in (listed.structured_content or {}).get("tasks", [])}
        expected = mine.get(user, set())
        missing += len(expected - seen)
        wrong += len(seen - expected)
    return missing, wrong


async def count_tasks(database: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(database)
    try:
        return int(await conn.fetchval("SELECT COUNT(*) FROM tasks"))
    finally:
        await conn.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def report(
    args: argparse.Namespace, job: float, rounds: list[Round], rss: list[tuple[int, int, int]]
) -> None:
    print(
        f"{args.sessions} sessions from {args.users} people, each one generate_image that waits for its image"
    )
    print("through a round-robin front to 2 replicas sharing one PostgreSQL journal, against the emulator")
    print(f"emulated job (Run to image): {job:.2f} s")
    for one in rounds:
        print(one.line(job))
        for error in [o for o in one.outcomes if o.error][:5]:
            print(f"  person {error.user}: {error.error}")
    names = ["replica 0", "replica 1", "emulator", "front", "clients"]
    cores = os.cpu_count() or 1
    for one in rounds:
        shares = ", ".join(f"{name} {used:.1f}" for name, used in zip(names, one.cpu, strict=True))
        per_call = 1000 * sum(one.cpu[:2]) / max(1, args.sessions)
        print(
            f"CPU s while {one.name.split(' (')[0]} ran ({one.wall:.1f} s x {cores} cores = "
            f"{one.wall * cores:.0f}): {shares}; replicas {per_call:.0f} ms a call"
        )
    for n, (idle, now, peak) in enumerate(rss):
        print(
            f"replica {n}: RSS {idle / 1024:.0f} MiB idle, {now / 1024:.0f} MiB after, "
            f"peak {peak / 1024:.0f} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--job", type=float, default=6.0, help="the emulated job's seconds (Run to image)")
    args = parser.parse_args()
    if 2 * args.sessions / args.users > 100:
        sys.exit("list_tasks shows 100 tasks at most: use more users for this many sessions")
    # The emulator's own timings (6 s from Run to image), scaled to the job asked for.
    speed = Timings().total / args.job
    job = Timings().total / speed
    keys = [
        (f"bench-key-{u:02d}-{secrets.token_hex(4)}", f"bench-secret-{secrets.token_hex(8)}")
        for u in range(args.users)
    ]
    bearers = [f"{k}:{s}" for k, s in keys]
    python = [sys.executable, "-m"]
    with postgres() as database, tempfile.TemporaryDirectory(prefix="wiro-bench-http-") as folder:
        logs = Path(folder)
        base = {"PATH": os.environ.get("PATH", ""), "HOME": folder, "WIRO_LOG_LEVEL": "WARNING"}
        (key, secret), others = keys[0], keys[1:]
        also = [arg for k, s in others for arg in ("--also", f"{k}:{s}")]
        emulator = spawn(
            [
                *python,
                "wiro_seedream_mcp",
                "emulator",
                "--port",
                "{port}",
                "--speed",
                str(speed),
                "--api-key",
                key,
                "--api-secret",
                secret,
                *also,
            ],
            base,
            logs / "emulator.log",
            "/v1/Tool/Detail",
        )
        env = {
            **base,
            "WIRO_API_BASE_URL": f"{emulator.origin}/v1",
            "WIRO_JOURNAL_URL": database,
            "WIRO_HTTP_AUTH": "key",
            "WIRO_HTTP_MAX_RUNNING": str(args.sessions),
            "WIRO_WAIT_TIMEOUT": str(max(50.0, args.job * 4)),
            "WIRO_PREVIEW": "off",
            "WIRO_HTTP_STATE_KEYS": secrets.token_urlsafe(32),
        }
        serve = [*python, "wiro_seedream_mcp", "serve", "--http", "--stateless", "--port", "{port}"]
        replicas = [spawn(serve, env, logs / f"replica-{n}.log", "/healthz") for n in range(2)]
        front = spawn(
            [*python, "tests.http.front", "{port}", *(r.origin for r in replicas)],
            base,
            logs / "front.log",
            "/healthz",
        )
        url = f"{front.origin}/mcp"
        try:
            idle = [r.rss()[0] for r in replicas]
            everyone = [*replicas, emulator, front]
            rounds = [
                run_round("all at once", Load(url, bearers, args.sessions), everyone),
                run_round(
                    f"arriving over {job:g} s (one job)",
                    Load(url, bearers, args.sessions, ramp=job, offset=args.sessions),
                    everyone,
                ),
            ]
            rss = [(i, *r.rss()) for i, r in zip(idle, replicas, strict=True)]
            outcomes = [o for one in rounds for o in one.outcomes]
            missing, wrong = anyio.run(audit, url, bearers, outcomes)
            journaled = anyio.run(count_tasks, database)
        finally:
            for process in (front.process, *(r.process for r in replicas), emulator.process):
                stop(process)
        sent = (logs / "front.log").read_text().rpartition("sent ")[2].split()
    report(args, job, rounds, rss)
    answered = sum(1 for o in outcomes if o.taskid)
    print(f"requests per replica through the front: {', '.join(sent)}")
    print(f"tasks journaled: {journaled}; calls answered with a task id: {answered} of {len(outcomes)}")
    print(f"tasks missing from their owner's list_tasks: {missing}; seen by another person: {wrong}")


if __name__ == "__main__":
    main()
