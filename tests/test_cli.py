from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import pytest

from wiro_seedream_mcp import __version__
from wiro_seedream_mcp.demo import run_demo
from wiro_seedream_mcp.emulator import EmulatorServer
from wiro_seedream_mcp.emulator.pictures import png_size

from .conftest import API_KEY, API_SECRET, TOOL_NAMES
from .rawstdio import SCRIPT


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIRO_")}
    return {**env, **extra}


def test_version() -> None:
    out = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"wiro-seedream-mcp {__version__}"
    module = subprocess.run(
        [sys.executable, "-m", "wiro_seedream_mcp", "--version"], capture_output=True, text=True, check=True
    )
    assert module.stdout == out.stdout


def test_demo_without_credentials_uses_the_emulator(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(SCRIPT), "demo", "--size", "1280x720", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(),
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "built-in Wiro emulator" in out.stdout
    assert f"tools: {', '.join(TOOL_NAMES)}" in out.stdout
    assert "status:   task_postprocess_end (succeeded: True)" in out.stdout
    assert "fetched:  PNG 1280x720" in out.stdout
    assert "preview:  image/jpeg" in out.stdout
    [saved] = tmp_path.glob("*.png")
    assert png_size(saved.read_bytes()) == (1280, 720)
    assert str(saved) in out.stdout


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Demo:
    """``demo`` in this process with exactly the given WIRO_ settings (the test above runs the real
    command): what it prints and its exit code. The server it talks to is still a child process."""

    def run(env: dict[str, str], out: str | None = None) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as patched:
            for name in [name for name in os.environ if name.startswith("WIRO_")]:
                patched.delenv(name)
            for name, value in env.items():
                patched.setenv(name, value)
            capsys.readouterr()
            code = run_demo(prompt=None, size="1024x1024", out=out)
            said = capsys.readouterr()
        return subprocess.CompletedProcess(["demo"], code, said.out, said.err)

    return run


Demo = Callable[..., subprocess.CompletedProcess[str]]


def test_demo_on_a_local_api_says_so_and_keeps_its_tasks_out_of_the_journal(
    demo: Demo, emulator: EmulatorServer, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    out = demo(
        {
            "WIRO_API_KEY": API_KEY,
            "WIRO_API_SECRET": API_SECRET,
            "WIRO_API_BASE_URL": emulator.base_url,
            "WIRO_STATE_DIR": str(state),
        }
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (
        f"Using the API at {emulator.base_url} (WIRO_API_KEY is set): this runs one task there." in out.stdout
    )
    assert "paid" not in out.stdout
    assert len(emulator.emulator.tasks) == 1
    assert not state.exists(), "the demo's local task went into the real journal"


def test_demo_with_a_refused_key_says_no_task_was_started(
    demo: Demo, emulator: EmulatorServer, tmp_path: Path
) -> None:
    out = demo(
        {
            "WIRO_API_KEY": "not-a-key",
            "WIRO_API_SECRET": "not-a-secret",
            "WIRO_API_BASE_URL": emulator.base_url,
            "WIRO_STATE_DIR": str(tmp_path),
        }
    )
    assert out.returncode == 1
    assert "No task was started" in out.stdout
    assert "None" not in out.stdout
    assert "Project authorization is not valid." in out.stdout
    assert emulator.emulator.tasks == {}


def test_demo_refuses_an_unknown_size() -> None:
    out = subprocess.run(
        [str(SCRIPT), "demo", "--size", "999x999"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        check=False,
    )
    assert out.returncode == 2
    assert "--size must be one of" in out.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_emulator_subcommand_serves_until_stopped() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [str(SCRIPT), "emulator", "--port", str(port), "--key-only", "--api-key", "cli-key"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_env(),
    )
    try:
        deadline = time.monotonic() + 20
        answer = None
        while answer is None:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/v1/Task/Detail",
                    json={"taskid": "1"},
                    headers={"x-api-key": "cli-key"},
                )
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the emulator did not start listening"
                assert proc.poll() is None, "the emulator exited early"
                time.sleep(0.05)
        assert answer.json() == {"result": False, "errors": [{"code": 1, "message": "There is no task yet."}]}
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
    assert f"export WIRO_API_BASE_URL=http://127.0.0.1:{port}/v1" in stderr
    assert "unset WIRO_API_SECRET" in stderr


def test_demo_that_could_not_save_the_image_says_so_and_fails(demo: Demo) -> None:
    out = demo({}, out="/proc/wiro-seedream-demo")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "The image was made but NOT saved in /proc/wiro-seedream-demo" in out.stdout
    assert "Open the saved file" not in out.stdout


def test_a_busy_port_is_one_line_before_anything_says_it_serves(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for command in (["serve", "--http", "--emulator"], ["emulator"]):
            out = subprocess.run(
                [str(SCRIPT), *command, "--port", port],
                capture_output=True,
                text=True,
                timeout=60,
                env=_clean_env(WIRO_STATE_DIR=str(tmp_path), WIRO_HTTP_AUTH="none"),
                check=False,
            )
            said = out.stdout + out.stderr
            assert out.returncode == 2, said
            assert f"port {port} on 127.0.0.1 is already in use" in said and "--port PORT" in said
            for noise in ("Errno", "Traceback", "Point the server at it", "serving"):
                assert noise not in said, said
