"""``install`` changes a host's file the way a careful person would: links, modes, keys, backups."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from wiro_seedream_mcp import hostfile
from wiro_seedream_mcp.install import run_install

from .conftest import API_KEY, API_SECRET
from .nodetools import ROOT
from .test_install import _backups, _env, _install


def _entry(config: Path) -> dict[str, object]:
    entry: dict[str, object] = json.loads(config.read_text())["mcpServers"]["wiro-seedream"]
    return entry


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_linked_config_stays_a_link_and_its_target_gets_the_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dotfiles = tmp_path / "dotfiles" / "cursor.json"
    dotfiles.parent.mkdir()
    dotfiles.write_text('{"mcpServers": {"other": {"command": "x"}}}\n')
    config = tmp_path / "home" / "mcp.json"
    config.parent.mkdir()
    config.symlink_to(dotfiles)

    code, out = _install("cursor", config, capsys)
    assert code == 0, out
    assert config.is_symlink() and config.resolve() == dotfiles.resolve()
    written = json.loads(dotfiles.read_text())
    assert set(written["mcpServers"]) == {"other", "wiro-seedream"}
    # The backup sits beside the file that was changed.
    [backup] = _backups(dotfiles)
    assert json.loads(backup.read_text()) == {"mcpServers": {"other": {"command": "x"}}}


def test_a_world_readable_config_becomes_owner_only_once_it_holds_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mcp.json"
    config.write_text("{}\n")
    config.chmod(0o644)
    code, out = _install("cursor", config, capsys)
    assert code == 0, out
    assert _entry(config)["env"] == {"WIRO_API_KEY": API_KEY, "WIRO_API_SECRET": API_SECRET}
    assert _mode(config) == 0o600
    [backup] = _backups(config)
    assert _mode(backup) == 0o600
    # A new file is owner-only too.
    fresh = tmp_path / "new" / "mcp.json"
    fresh.parent.mkdir()
    assert _install("cursor", fresh, capsys)[0] == 0
    assert _mode(fresh) == 0o600


def test_running_again_without_a_key_keeps_the_key_in_the_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mcp.json"
    assert _install("cursor", config, capsys, output_dir=tmp_path / "a")[0] == 0
    code, out = _install("cursor", config, capsys, env=_env(), output_dir=tmp_path / "b")
    assert code == 0, out
    env = _entry(config)["env"]
    assert env == {
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_OUTPUT_DIR": str(tmp_path / "b"),
    }
    assert "The key already in the entry was kept" in out
    assert "No key was written" not in out
    assert API_KEY not in out
    # A new key replaces it, with its own secret (or none, for a key-only project).
    code, out = _install(
        "cursor", config, capsys, env=_env(WIRO_API_KEY="another-key-456"), output_dir=tmp_path / "b"
    )
    assert _entry(config)["env"] == {
        "WIRO_API_KEY": "another-key-456",
        "WIRO_OUTPUT_DIR": str(tmp_path / "b"),
    }


def test_nothing_changed_asks_for_no_restart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mcp.json"
    first = _install("cursor", config, capsys)[1]
    again = _install("cursor", config, capsys)[1]
    assert "Restart Cursor to load it." in first
    assert "nothing changed" in again
    assert "Restart" not in again
    assert "doctor --host cursor --config" in again


def test_a_read_only_config_is_refused_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mcp.json"
    config.write_text('{"mcpServers": {}}\n')
    config.chmod(0o444)
    code, out = _install("cursor", config, capsys)
    assert code == 2
    assert "read-only" in out and "chmod u+w" in out
    assert config.read_text() == '{"mcpServers": {}}\n'
    assert _backups(config) == []


def test_backups_never_overwrite_or_follow_what_is_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every run in the same second: the clock cannot tell the backups apart.
    monkeypatch.setattr("wiro_seedream_mcp.hostfile.time.strftime", lambda _: "20260101-000000")
    config = tmp_path / "mcp.json"
    config.write_text('{"mcpServers": {}, "original": true}\n')
    victim = tmp_path / "victim"
    victim.write_text("not yours\n")
    (tmp_path / "mcp.json.backup-20260101-000000").symlink_to(victim)

    assert _install("cursor", config, capsys)[0] == 0
    assert _install("cursor", config, capsys, env=_env(WIRO_API_KEY="another-key-456"))[0] == 0
    assert victim.read_text() == "not yours\n"
    second, third = (tmp_path / f"mcp.json.backup-20260101-000000-{n}" for n in (2, 3))
    assert json.loads(second.read_text()) == {"mcpServers": {}, "original": True}
    assert _entry(Path(third))["env"]["WIRO_API_KEY"] == API_KEY  # type: ignore[index]


def test_an_edit_made_while_installing_is_not_lost(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text("{}\n")
    old = hostfile.read_text(config)
    config.write_text('{"theme": "the host saved this meanwhile"}\n')
    with pytest.raises(hostfile.HostFileError, match="changed while this ran"):
        hostfile.write(config, "{}\n", old, secret=True)
    assert config.read_text() == '{"theme": "the host saved this meanwhile"}\n'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".mcp.json.")] == []


def test_a_folder_that_cannot_be_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Path("/proc/wiro-seedream-no-such-folder/mcp.json")
    code, out = _install("cursor", config, capsys)
    assert code == 2
    assert out.startswith(
        "Nothing was installed: the folder /proc/wiro-seedream-no-such-folder cannot be made"
    )
    assert "Traceback" not in out


def test_vscode_never_writes_into_the_servers_own_checkout(capsys: pytest.CaptureFixture[str]) -> None:
    before = (ROOT / ".vscode" / "mcp.json").exists()
    code = run_install("vscode", workspace=ROOT, env=_env(WIRO_API_KEY=API_KEY))
    out = capsys.readouterr().out
    assert code == 2
    assert "this server's own checkout" in out and "--workspace" in out
    assert (ROOT / ".vscode" / "mcp.json").exists() == before


def test_the_vscode_entry_to_add_by_hand_asks_vscode_for_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".vscode").mkdir()
    (tmp_path / ".vscode" / "mcp.json").write_text("{ not json")
    code = run_install("vscode", workspace=tmp_path, env=_env(WIRO_API_KEY=API_KEY))
    out = capsys.readouterr().out
    assert code == 2
    assert '"WIRO_API_KEY": "${input:wiro-api-key}"' in out
    assert "<your WIRO_API_KEY>" not in out


def test_an_emulator_entry_needs_no_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mcp.json"
    code, out = _install("cursor", config, capsys, emulator=True)
    assert code == 0, out
    entry = _entry(config)
    assert entry["args"] == ["run", "--directory", str(ROOT), "wiro-seedream-mcp", "serve", "--emulator"]
    assert "WIRO_API_KEY" not in entry["env"]  # type: ignore[operator]
    assert "built-in Wiro emulator" in out and "nothing is paid" in out
    assert "No key was written" not in out
