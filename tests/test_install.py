"""``wiro-seedream-mcp install <host>`` on copies of real host configuration files."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from wiro_seedream_mcp.emulator import EmulatorServer
from wiro_seedream_mcp.install import VSCODE_INPUTS, config_path, run_install

from .conftest import API_KEY, API_SECRET
from .nodetools import ROOT, uv_binary
from .test_hosts import TOOLS, Launch, tools_through

FIXTURES = Path(__file__).parent / "fixtures" / "hosts"
EXISTING = {
    "claude-desktop": "claude_desktop_config.json",
    "cursor": "cursor-mcp.json",
    "vscode": "vscode-mcp.json",
}
KEY = {"claude-desktop": "mcpServers", "cursor": "mcpServers", "vscode": "servers"}


def _env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("WIRO_")}
    return {**base, "UV": uv_binary(), **extra}


def _install(host: str, config: Path, capsys: pytest.CaptureFixture[str], **kwargs: Any) -> tuple[int, str]:
    env = kwargs.pop("env", _env(WIRO_API_KEY=API_KEY, WIRO_API_SECRET=API_SECRET))
    code = run_install(host, config=config, env=env, **kwargs)
    return code, capsys.readouterr().out


def _backups(config: Path) -> list[Path]:
    return sorted(config.parent.glob(f"{config.name}.backup-*"))


@pytest.mark.parametrize("host", sorted(EXISTING))
def test_install_merges_into_a_file_with_other_servers(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "host" / "config.json"
    config.parent.mkdir()
    shutil.copy(FIXTURES / EXISTING[host], config)
    config.chmod(0o600)
    original_bytes = config.read_bytes()
    original = json.loads(original_bytes)

    code, out = _install(host, config, capsys, output_dir=tmp_path / "images")
    assert code == 0, out
    written = json.loads(config.read_text())
    # Everything that was there is still there, unchanged.
    for key, value in original.items():
        if key not in (KEY[host], "inputs"):
            assert written[key] == value
    for name, server in original[KEY[host]].items():
        assert written[KEY[host]][name] == server
    entry = written[KEY[host]]["wiro-seedream"]
    assert Path(entry["command"]).is_absolute() and Path(entry["command"]).name.startswith("uv")
    assert entry["args"] == ["run", "--directory", str(ROOT), "wiro-seedream-mcp"]
    assert entry["env"]["WIRO_OUTPUT_DIR"] == str(tmp_path / "images")
    if host == "vscode":
        # VS Code asks for the secrets itself: none is written into the workspace.
        assert entry["type"] == "stdio"
        assert entry["env"]["WIRO_API_KEY"] == "${input:wiro-api-key}"
        assert written["inputs"] == [*original["inputs"], *VSCODE_INPUTS]
        assert API_KEY not in config.read_text()
    else:
        assert entry["env"]["WIRO_API_KEY"] == API_KEY
        assert entry["env"]["WIRO_API_SECRET"] == API_SECRET
    # The old file is kept, byte for byte, and the new one keeps its permissions.
    [backup] = _backups(config)
    assert backup.read_bytes() == original_bytes
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert API_KEY not in out and API_SECRET not in out

    # Again: nothing changes, no second backup, no second entry or input.
    code, out = _install(host, config, capsys, output_dir=tmp_path / "images")
    assert code == 0
    assert "already has this entry; nothing changed" in out
    assert _backups(config) == [backup]
    assert json.loads(config.read_text()) == written


@pytest.mark.parametrize("host", sorted(EXISTING))
@pytest.mark.parametrize("start", ["missing", "empty"])
def test_install_into_a_new_or_empty_file(
    host: str, start: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    if start == "empty":
        shutil.copy(FIXTURES / "empty.json", config)
    code, out = _install(host, config, capsys)
    assert code == 0, out
    written = json.loads(config.read_text())
    assert list(written[KEY[host]]) == ["wiro-seedream"]
    assert "WIRO_OUTPUT_DIR" not in written[KEY[host]]["wiro-seedream"]["env"]
    assert len(_backups(config)) == (1 if start == "empty" else 0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ((FIXTURES / "vscode-with-comments.json").read_text(), "is not plain JSON (line 2"),
        ('{"mcpServers": {"a": {"command": "x"}', "is not plain JSON"),
        ('["a list"]', "does not hold a JSON object"),
        ('{"mcpServers": ["not", "an", "object"], "servers": 3}', "is not a JSON object"),
    ],
)
@pytest.mark.parametrize("host", ["claude-desktop", "vscode"])
def test_a_file_it_cannot_merge_is_refused_untouched(
    host: str, text: str, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(text)
    code, out = _install(host, config, capsys)
    assert code == 2
    assert out.startswith("Nothing was installed: ")
    assert reason in out, out
    assert "The entry, to add by hand:" in out
    assert config.read_text() == text
    assert list(tmp_path.iterdir()) == [config], "nothing else is written"
    assert API_KEY not in out


def test_dry_run_prints_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "claude_desktop_config.json"
    shutil.copy(FIXTURES / EXISTING["claude-desktop"], config)
    before = config.read_bytes()
    code, out = _install("claude-desktop", config, capsys, dry_run=True)
    assert code == 0
    assert config.read_bytes() == before and not _backups(config)
    assert '"WIRO_API_KEY": "<your WIRO_API_KEY>"' in out
    assert '"filesystem"' in out
    assert API_KEY not in out and API_SECRET not in out


def test_a_host_that_is_not_installed_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_install("claude-desktop", env=_env(), system="Darwin", home=tmp_path)
    out = capsys.readouterr().out
    assert code == 2
    assert "Claude Desktop's settings folder" in out
    assert "Library/Application Support/Claude was not found: install Claude Desktop" in out
    assert list(tmp_path.iterdir()) == []


def test_without_a_key_the_entry_says_how_to_add_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mcp.json"
    code, out = _install("cursor", config, capsys, env=_env())
    assert code == 0
    assert "No key was written" in out
    assert "WIRO_API_KEY" not in json.loads(config.read_text())["mcpServers"]["wiro-seedream"]["env"]


@pytest.mark.parametrize(
    ("host", "system", "env", "expected"),
    [
        (
            "claude-desktop",
            "Darwin",
            {},
            "home/Library/Application Support/Claude/claude_desktop_config.json",
        ),
        ("claude-desktop", "Windows", {"APPDATA": "appdata"}, "appdata/Claude/claude_desktop_config.json"),
        ("claude-desktop", "Linux", {}, "home/.config/Claude/claude_desktop_config.json"),
        ("cursor", "Windows", {}, "home/.cursor/mcp.json"),
        ("vscode", "Darwin", {}, "work/.vscode/mcp.json"),
    ],
)
def test_where_each_host_keeps_its_file(host: str, system: str, env: dict[str, str], expected: str) -> None:
    found = config_path(host, system=system, env=env, home=Path("home"), workspace=Path("work"))
    assert found == Path(expected)


def test_vscode_writes_into_the_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_install("vscode", workspace=tmp_path, env=_env(WIRO_API_KEY=API_KEY))
    assert code == 0, capsys.readouterr().out
    written = json.loads((tmp_path / ".vscode" / "mcp.json").read_text())
    assert written["servers"]["wiro-seedream"]["env"]["WIRO_API_SECRET"] == "${input:wiro-api-secret}"


def _fake_claude(folder: Path) -> Path:
    """A ``claude`` command that records its arguments, one call per line."""
    folder.mkdir()
    script = folder / "claude"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{folder}/calls"\n')
    script.chmod(0o755)
    return folder / "calls"


def test_claude_code_runs_claude_mcp_add(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calls = _fake_claude(tmp_path / "bin")
    env = _env(
        WIRO_API_KEY=API_KEY, WIRO_API_SECRET=API_SECRET, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    )
    code = run_install("claude-code", env=env, output_dir=tmp_path / "images")
    out = capsys.readouterr().out
    assert code == 0, out
    remove, add = calls.read_text().splitlines()
    assert remove == "mcp remove wiro-seedream --scope user"
    assert add.startswith("mcp add wiro-seedream --scope user --env WIRO_API_KEY=" + API_KEY)
    assert f"--env WIRO_OUTPUT_DIR={tmp_path / 'images'} -- " in add
    assert add.endswith(f"run --directory {ROOT} wiro-seedream-mcp")
    assert API_KEY not in out


def test_claude_code_without_claude_prints_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_install("claude-code", env=_env(WIRO_API_KEY=API_KEY, PATH=str(tmp_path)))
    out = capsys.readouterr().out
    assert code == 1
    assert "`claude` command was not found" in out
    assert '--env "WIRO_API_KEY=$WIRO_API_KEY"' in out
    assert API_KEY not in out


@pytest.mark.anyio
@pytest.mark.child_process
async def test_the_installed_claude_desktop_entry_starts_the_server(
    emulator: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "Library" / "Application Support" / "Claude"
    folder.mkdir(parents=True)
    code = run_install(
        "claude-desktop",
        env=_env(WIRO_API_KEY=API_KEY, WIRO_API_SECRET=API_SECRET),
        system="Darwin",
        home=tmp_path,
        output_dir=tmp_path / "images",
    )
    assert code == 0, capsys.readouterr().out
    entry = json.loads((folder / "claude_desktop_config.json").read_text())["mcpServers"]["wiro-seedream"]
    launch = Launch(entry["command"], entry["args"], entry["env"])
    assert await tools_through(launch, emulator, tmp_path) == TOOLS
