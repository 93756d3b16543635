"""``wiro-seedream-mcp doctor`` against the emulator: every verdict and its exit code."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest

from wiro_seedream_mcp.doctor import BAD_CONFIG, NO_CREDENTIALS, READY, REFUSED, UNREACHABLE, run_doctor
from wiro_seedream_mcp.emulator import EmulatorServer, Project

from .conftest import API_KEY, API_SECRET
from .rawstdio import SCRIPT


def doctor_command(tmp_path: os.PathLike[str], **env: str) -> subprocess.CompletedProcess[str]:
    """The real command, in a child process."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WIRO_")}
    return subprocess.run(
        [str(SCRIPT), "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, "WIRO_STATE_DIR": str(tmp_path), **env},
    )


Doctor = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def doctor(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Doctor:
    """The command's checks in this process, with exactly the given WIRO_ settings: what the
    command prints and its exit code (the test above runs the real command once)."""

    def run(tmp_path: os.PathLike[str], **env: str) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as patched:
            for name in [name for name in os.environ if name.startswith("WIRO_")]:
                patched.delenv(name)
            for name, value in {"WIRO_STATE_DIR": str(tmp_path), **env}.items():
                patched.setenv(name, value)
            capsys.readouterr()
            code = run_doctor()
            out = capsys.readouterr()
        return subprocess.CompletedProcess(["doctor"], code, out.out, out.err)

    return run


@pytest.mark.parametrize("where", ["command", "in-process"])
def test_accepted_keys(
    doctor: Doctor, emulator: EmulatorServer, tmp_path: os.PathLike[str], where: str
) -> None:
    check = doctor_command if where == "command" else doctor
    out = check(
        tmp_path, WIRO_API_KEY=API_KEY, WIRO_API_SECRET=API_SECRET, WIRO_API_BASE_URL=emulator.base_url
    )
    assert out.returncode == READY, out.stdout
    assert "credentials: accepted on a signed request (key, nonce and signature)" in out.stdout
    assert "price: about $0.03 for a 1024x1024 image (Wiro's price: $0.03 per request)" in out.stdout
    assert "WIRO_BUDGET_USD    (not set: no limit)" in out.stdout
    assert "WIRO_CONFIRM       never" in out.stdout
    assert f"task socket: answers at ws://127.0.0.1:{emulator.port}/v1/socket" in out.stdout
    assert "Ready" in out.stdout
    assert f"set ({len(API_KEY)} characters, not shown)" in out.stdout
    assert API_KEY not in out.stdout + out.stderr
    assert API_SECRET not in out.stdout + out.stderr
    # The check is harmless: one Detail, no task started.
    assert emulator.emulator.tasks == {}
    assert emulator.emulator.count("/Task/Detail") == 1


def test_project_that_needs_a_secret(
    doctor: Doctor, emulator: EmulatorServer, tmp_path: os.PathLike[str]
) -> None:
    out = doctor(tmp_path, WIRO_API_KEY=API_KEY, WIRO_API_BASE_URL=emulator.base_url)
    assert out.returncode == REFUSED
    assert "uses signature authentication. Set WIRO_API_SECRET" in out.stdout


def test_wrong_secret(doctor: Doctor, emulator: EmulatorServer, tmp_path: os.PathLike[str]) -> None:
    out = doctor(
        tmp_path, WIRO_API_KEY=API_KEY, WIRO_API_SECRET="not-it-0000", WIRO_API_BASE_URL=emulator.base_url
    )
    assert out.returncode == REFUSED
    assert "REFUSED on a signed request" in out.stdout
    assert "not-it-0000" not in out.stdout


def test_key_only_project(
    doctor: Doctor, emulator_factory: Callable[..., EmulatorServer], tmp_path: os.PathLike[str]
) -> None:
    server = emulator_factory(project=Project(api_key="solo", api_secret=None))
    out = doctor(tmp_path, WIRO_API_KEY="solo", WIRO_API_BASE_URL=server.base_url)
    assert out.returncode == READY, out.stdout
    assert "accepted on a key-only request" in out.stdout


def test_no_credentials(doctor: Doctor, emulator: EmulatorServer, tmp_path: os.PathLike[str]) -> None:
    out = doctor(tmp_path, WIRO_API_BASE_URL=emulator.base_url, WIRO_API_SECRET="${user_config.api_secret}")
    assert out.returncode == NO_CREDENTIALS
    assert "WIRO_API_KEY is not set" in out.stdout
    assert "left blank in the host" in out.stdout


def test_no_key_and_no_network_names_the_missing_key_first(
    doctor: Doctor, tmp_path: os.PathLike[str]
) -> None:
    out = doctor(tmp_path, WIRO_API_BASE_URL="http://127.0.0.1:9/v1")
    assert out.returncode == NO_CREDENTIALS
    assert "credentials: WIRO_API_KEY is not set" in out.stdout
    verdicts = [line for line in out.stdout.splitlines() if line.startswith("Not ready:")]
    assert verdicts[0].startswith("Not ready: WIRO_API_KEY is not set"), out.stdout
    assert "Wiro dashboard" in verdicts[0]
    assert any("cannot be reached" in line for line in verdicts[1:]), out.stdout
    assert "Ready:" not in out.stdout


def test_an_output_folder_that_cannot_be_written_is_not_ready(
    doctor: Doctor, emulator: EmulatorServer, tmp_path: os.PathLike[str]
) -> None:
    from pathlib import Path

    blocker = Path(tmp_path) / "a-file"
    blocker.write_text("not a folder")
    out = doctor(
        tmp_path,
        WIRO_API_KEY=API_KEY,
        WIRO_API_SECRET=API_SECRET,
        WIRO_API_BASE_URL=emulator.base_url,
        WIRO_OUTPUT_DIR=str(blocker / "images"),
    )
    assert out.returncode == BAD_CONFIG, out.stdout
    assert f"Not ready: WIRO_OUTPUT_DIR ({blocker / 'images'}) cannot be written" in out.stdout
    assert "Ready:" not in out.stdout


def test_doctor_creates_no_folder(
    doctor: Doctor, emulator: EmulatorServer, tmp_path: os.PathLike[str]
) -> None:
    from pathlib import Path

    wanted = Path(tmp_path) / "pictures" / "seedream"
    out = doctor(
        tmp_path,
        WIRO_API_KEY=API_KEY,
        WIRO_API_SECRET=API_SECRET,
        WIRO_API_BASE_URL=emulator.base_url,
        WIRO_OUTPUT_DIR=str(wanted),
    )
    assert out.returncode == READY, out.stdout
    assert f"{wanted} does not exist yet; it is created when first needed" in out.stdout
    assert not wanted.parent.exists()


@pytest.mark.parametrize(("wait", "warned"), [("50", False), ("70", True)])
def test_a_wait_longer_than_claude_desktop_allows_is_pointed_out(
    doctor: Doctor, emulator: EmulatorServer, tmp_path: os.PathLike[str], wait: str, warned: bool
) -> None:
    out = doctor(
        tmp_path,
        WIRO_API_KEY=API_KEY,
        WIRO_API_SECRET=API_SECRET,
        WIRO_API_BASE_URL=emulator.base_url,
        WIRO_WAIT_TIMEOUT=wait,
    )
    assert out.returncode == READY
    assert ("Claude Desktop gives up on a call after about 60 s" in out.stdout) is warned


def test_the_spend_settings_are_shown(
    doctor: Doctor, emulator: EmulatorServer, tmp_path: os.PathLike[str]
) -> None:
    out = doctor(
        tmp_path,
        WIRO_API_KEY=API_KEY,
        WIRO_API_SECRET=API_SECRET,
        WIRO_API_BASE_URL=emulator.base_url,
        WIRO_BUDGET_USD="5",
        WIRO_MAX_TASK_USD="0.10",
        WIRO_CONFIRM="0.5",
    )
    assert out.returncode == READY
    assert "WIRO_BUDGET_USD    $5 a day" in out.stdout
    assert "WIRO_MAX_TASK_USD  $0.1 a task" in out.stdout
    assert "WIRO_CONFIRM       above $0.5" in out.stdout


def test_a_one_character_value_is_one_character(doctor: Doctor, tmp_path: os.PathLike[str]) -> None:
    out = doctor(tmp_path, WIRO_API_SECRET="x", WIRO_API_BASE_URL="http://127.0.0.1:9/v1")
    assert "set (1 character, not shown)" in out.stdout


def test_unreachable(doctor: Doctor, tmp_path: os.PathLike[str]) -> None:
    out = doctor(tmp_path, WIRO_API_KEY="k", WIRO_API_BASE_URL="http://127.0.0.1:9/v1")
    assert out.returncode == UNREACHABLE
    assert "cannot be reached at http://127.0.0.1:9/v1" in out.stdout


@pytest.mark.parametrize(
    ("name", "value"), [("WIRO_WAIT_TIMEOUT", "soon"), ("WIRO_OUTPUT_DIR", "relative/dir")]
)
def test_invalid_setting(doctor: Doctor, tmp_path: os.PathLike[str], name: str, value: str) -> None:
    out = doctor(tmp_path, **{name: value})
    assert out.returncode == BAD_CONFIG
    assert f"Invalid setting: {name}" in out.stdout


def test_socket_switched_off_or_missing(
    doctor: Doctor, emulator_factory: Callable[..., EmulatorServer], tmp_path: os.PathLike[str]
) -> None:
    server = emulator_factory(socket=False)
    common = {"WIRO_API_KEY": API_KEY, "WIRO_API_SECRET": API_SECRET, "WIRO_API_BASE_URL": server.base_url}
    refused = doctor(tmp_path, **common)
    assert refused.returncode == READY  # polling still works
    assert "task socket: not reachable" in refused.stdout
    off = doctor(tmp_path, **common, WIRO_SOCKET_URL="off")
    assert "task socket: off" in off.stdout


def test_an_unusable_journal_is_reported_and_left_as_it_is(
    doctor: Doctor, emulator: EmulatorServer, tmp_path: os.PathLike[str]
) -> None:
    from pathlib import Path

    journal = Path(tmp_path) / "tasks.sqlite3"
    journal.write_bytes(b"not a database")
    out = doctor(
        tmp_path, WIRO_API_KEY=API_KEY, WIRO_API_SECRET=API_SECRET, WIRO_API_BASE_URL=emulator.base_url
    )
    assert f"task journal: {journal} is NOT usable (file is not a database)" in out.stdout
    assert journal.read_bytes() == b"not a database"  # doctor only looks


def test_a_folder_that_cannot_be_made_is_not_ready(
    doctor: Doctor, emulator: EmulatorServer, tmp_path: os.PathLike[str]
) -> None:
    # /proc takes no new folders, whatever the permission bits say; saving there would fail.
    out = doctor(
        tmp_path,
        WIRO_API_KEY=API_KEY,
        WIRO_API_SECRET=API_SECRET,
        WIRO_API_BASE_URL=emulator.base_url,
        WIRO_OUTPUT_DIR="/proc/wiro-seedream-out",
    )
    assert out.returncode == BAD_CONFIG, out.stdout
    assert "/proc/wiro-seedream-out does not exist, and it cannot be made in /proc" in out.stdout
    assert "Ready:" not in out.stdout


def test_each_problem_is_said_once(
    doctor: Doctor, emulator: EmulatorServer, tmp_path: os.PathLike[str]
) -> None:
    from pathlib import Path

    blocker = Path(tmp_path) / "a-file"
    blocker.write_text("not a folder")
    out = doctor(
        tmp_path,
        WIRO_API_BASE_URL=emulator.base_url,
        WIRO_OUTPUT_DIR=str(blocker / "images"),
        WIRO_STATE_DIR=str(blocker / "state"),
    )
    assert out.returncode == NO_CREDENTIALS, out.stdout
    lines = [line for line in out.stdout.splitlines() if line.startswith("Not ready:")]
    assert len(lines) == len(set(lines)) == 3, lines
    # A journal folder that cannot be made has no journal to describe.
    assert "task journal:" not in out.stdout
