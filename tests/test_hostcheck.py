"""``doctor --host``: the installed entry checked with what the host runs, not with the shell."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from wiro_seedream_mcp.emulator import EmulatorServer
from wiro_seedream_mcp.hostcheck import check_host
from wiro_seedream_mcp.install import run_install

from .conftest import API_KEY, API_SECRET
from .test_install import _env


def _installed(tmp_path: Path, capfd: pytest.CaptureFixture[str], **extra: object) -> Path:
    folder = tmp_path / "Library" / "Application Support" / "Claude"
    folder.mkdir(parents=True)
    code = run_install("claude-desktop", system="Darwin", home=tmp_path, **extra)  # type: ignore[arg-type]
    assert code == 0, capfd.readouterr().out
    return folder / "claude_desktop_config.json"


def _point_at(config: Path, emulator: EmulatorServer, state: Path) -> None:
    """What a person testing against a local API would add to the entry by hand."""
    data = json.loads(config.read_text())
    data["mcpServers"]["wiro-seedream"]["env"] |= {
        "WIRO_API_BASE_URL": emulator.base_url,
        "WIRO_STATE_DIR": str(state),
    }
    config.write_text(json.dumps(data))


def test_the_installed_entry_is_checked_with_its_own_key_not_the_shells(
    emulator: EmulatorServer,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    config = _installed(
        tmp_path,
        capfd,
        env=_env(WIRO_API_KEY=API_KEY, WIRO_API_SECRET=API_SECRET),
        output_dir=tmp_path / "img",
    )
    out = capfd.readouterr().out
    assert "doctor --host claude-desktop" in out
    _point_at(config, emulator, tmp_path / "state")
    shell = {k: v for k, v in os.environ.items() if not k.startswith("WIRO_")}  # no key in the shell
    code = check_host("claude-desktop", config=config, env=shell)
    printed = capfd.readouterr().out
    assert code == 0, printed
    assert "Claude Desktop starts:" in printed
    assert "credentials: accepted on a signed request" in printed
    assert "Ready" in printed
    assert API_KEY not in printed and API_SECRET not in printed
    assert emulator.emulator.count("/Task/Detail") == 1


def test_a_wrong_key_in_the_entry_is_reported_even_with_a_good_one_in_the_shell(
    emulator: EmulatorServer,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    config = _installed(tmp_path, capfd, env=_env(WIRO_API_KEY="wrong-key-12345", WIRO_API_SECRET=API_SECRET))
    _point_at(config, emulator, tmp_path / "state")
    shell = {**os.environ, "WIRO_API_KEY": API_KEY, "WIRO_API_SECRET": API_SECRET}
    code = check_host("claude-desktop", config=config, env=shell)
    assert code == 4, capfd.readouterr().out  # REFUSED


def test_an_emulator_entry_is_ready_without_a_key(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    config = _installed(tmp_path, capfd, env=_env(), emulator=True)
    code = check_host("claude-desktop", config=config, env=_env())
    printed = capfd.readouterr().out
    assert code == 0, printed
    assert "runs the server on the built-in Wiro emulator" in printed


@pytest.mark.anyio
async def test_an_emulator_entry_makes_an_image_in_the_host(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    config = _installed(tmp_path, capfd, env=_env(), emulator=True)
    entry = json.loads(config.read_text())["mcpServers"]["wiro-seedream"]
    env = {**_env(), **entry["env"], "WIRO_LOG_LEVEL": "WARNING"}
    params = StdioServerParameters(
        command=entry["command"], args=[*entry["args"], "--emulator-speed", "50"], env=env
    )
    async with Client(params) as client:
        made = await client.call_tool("generate_image", {"prompt": "a lighthouse"})
    assert made.structured_content is not None
    assert made.structured_content["succeeded"] is True


def test_a_host_without_the_entry_says_how_to_add_it(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "claude_desktop_config.json"
    config.write_text('{"mcpServers": {}}')
    assert check_host("claude-desktop", config=config, env=_env()) == 2
    assert "wiro-seedream-mcp install claude-desktop" in capfd.readouterr().out


def test_a_command_the_host_cannot_start_is_named(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mcp.json"
    entry = {"command": "uv-not-on-the-hosts-path", "args": ["run", "wiro-seedream-mcp"], "env": {}}
    config.write_text(json.dumps({"mcpServers": {"wiro-seedream": entry}}))
    assert check_host("cursor", config=config, env=_env()) == 2
    assert "cannot start 'uv-not-on-the-hosts-path'" in capfd.readouterr().out
