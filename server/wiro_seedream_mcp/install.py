"""``wiro-seedream-mcp install <host>``: write this server into a host's MCP configuration.

The entry starts the server the way that works on this machine: ``uv run --directory <checkout>``
from a checkout, ``uvx wiro-seedream-mcp`` from an installed package, with the absolute path of
``uv`` (desktop apps start servers with a minimal ``PATH``); ``--emulator`` makes an entry that
runs on the built-in emulator, to try a host without a key. The host's file is merged, never
replaced: other servers and settings stay as they are, and :mod:`.hostfile` keeps links, backups
and owner-only modes. A file that is not plain JSON is refused untouched. Secrets are written only
where the host has no secure input of its own (VS Code asks for them itself, ``inputs``), and a key
already in the entry is kept unless a new one is given.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .console import say
from .hostfile import HostFileError, read_text, write

NAME = "wiro-seedream"
PACKAGE = "wiro-seedream-mcp"
HOSTS = ("claude-desktop", "cursor", "vscode", "claude-code")
TITLES = {
    "claude-desktop": "Claude Desktop",
    "cursor": "Cursor",
    "vscode": "VS Code",
    "claude-code": "Claude Code",
}
SECRETS = ("WIRO_API_KEY", "WIRO_API_SECRET")
VSCODE_INPUTS = [
    {"type": "promptString", "id": "wiro-api-key", "description": "Wiro API key", "password": True},
    {
        "type": "promptString",
        "id": "wiro-api-secret",
        "description": "Wiro API secret (empty for a key-only project)",
        "password": True,
    },
]
UV_INSTALL = (
    "install uv: `curl -LsSf https://astral.sh/uv/install.sh | sh` on macOS and Linux, "
    '`powershell -c "irm https://astral.sh/uv/install.ps1 | iex"` on Windows'
)


class InstallError(Exception):
    """Why nothing was written, in words for the person."""


EMULATOR_ARGS = ["serve", "--emulator"]


@dataclass
class Entry:
    """How a host starts the server."""

    command: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def emulator(self) -> bool:
        """Whether the entry runs the server on the built-in emulator."""
        return self.args[-len(EMULATOR_ARGS) :] == EMULATOR_ARGS


def checkout_root() -> Path | None:
    """The checkout this module runs from, if it runs from one (not an installed package)."""
    root = Path(__file__).resolve().parents[2]
    with contextlib.suppress(OSError):
        if f'name = "{PACKAGE}"' in (root / "pyproject.toml").read_text():
            return root
    return None


def find_uv(env: Mapping[str, str] | None = None) -> str:
    """The absolute path of uv: the one running this command, else the one on PATH."""
    env = os.environ if env is None else env
    running = env.get("UV", "")
    if running and Path(running).is_file():
        return str(Path(running).resolve())
    found = shutil.which("uv", path=env.get("PATH"))
    if found is None:
        raise InstallError(f"uv was not found, and the host needs it to start the server: {UV_INSTALL}")
    return str(Path(found).resolve())


def launch(uv: str, root: Path | None, *, emulator: bool = False) -> Entry:
    extra = EMULATOR_ARGS if emulator else []
    if root is not None:
        return Entry(uv, ["run", "--directory", str(root), PACKAGE, *extra])
    return Entry(uv, ["tool", "run", PACKAGE, *extra])


def config_path(host: str, *, system: str, env: Mapping[str, str], home: Path, workspace: Path) -> Path:
    """Where ``host`` keeps its MCP servers on ``system`` ("Darwin", "Windows" or "Linux")."""
    if host == "claude-desktop":
        if system == "Darwin":
            folder = home / "Library" / "Application Support" / "Claude"
        elif system == "Windows":
            folder = Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "Claude"
        else:
            folder = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "Claude"
        return folder / "claude_desktop_config.json"
    if host == "cursor":
        return home / ".cursor" / "mcp.json"
    if host == "vscode":
        return workspace / ".vscode" / "mcp.json"
    raise InstallError(f"host must be one of {', '.join(HOSTS)}; got {host!r}")


def server_env(
    host: str, secrets: Mapping[str, str], output_dir: Path | None, *, emulator: bool = False
) -> dict[str, str]:
    env: dict[str, str] = {}
    if emulator:
        env = {}  # the emulator needs no key, and a key left in the entry would not be used
    elif host == "vscode":
        env = {"WIRO_API_KEY": "${input:wiro-api-key}", "WIRO_API_SECRET": "${input:wiro-api-secret}"}
    else:
        env = {name: secrets[name] for name in SECRETS if secrets.get(name)}
    if output_dir is not None:
        env["WIRO_OUTPUT_DIR"] = str(output_dir)
    return env


def servers_key(host: str) -> str:
    """The key a host's file keeps its MCP servers under."""
    return "servers" if host == "vscode" else "mcpServers"


def read_config(path: Path) -> tuple[dict[str, Any], str | None]:
    """The file's settings and its text (None when there is no file)."""
    try:
        text = read_text(path)
    except HostFileError as exc:
        raise InstallError(str(exc)) from exc
    if text is None:
        return {}, None
    if not text.strip():
        return {}, text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InstallError(
            f"{path} is not plain JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}; comments and "
            "trailing commas count), so it was left as it is. Fix it and run this again, or add the "
            "entry by hand."
        ) from exc
    if not isinstance(data, dict):
        raise InstallError(f"{path} does not hold a JSON object, so it was left as it is")
    return data, text


def merged(host: str, data: dict[str, Any], entry: Entry, path: Path) -> dict[str, Any]:
    """``data`` with this server's entry in it, everything else as it was."""
    key = servers_key(host)
    servers = data.get(key, {})
    if not isinstance(servers, dict):
        raise InstallError(f'"{key}" in {path} is not a JSON object, so the file was left as it is')
    env = dict(entry.env)
    before = servers.get(NAME)
    kept = before.get("env") if isinstance(before, dict) else None
    if host != "vscode" and "WIRO_API_KEY" not in env and isinstance(kept, dict) and not entry.emulator:
        # No new key: the one already in the entry stays (with its secret).
        env = {**{k: v for k, v in kept.items() if k in SECRETS and isinstance(v, str)}, **env}
    item: dict[str, Any] = {"command": entry.command, "args": entry.args, "env": env}
    if host == "vscode":
        item = {"type": "stdio", **item}
        inputs = data.get("inputs", [])
        if not isinstance(inputs, list):
            raise InstallError(f'"inputs" in {path} is not a JSON list, so the file was left as it is')
        known = {i.get("id") for i in inputs if isinstance(i, dict)}
        data = {**data, "inputs": [*inputs, *(i for i in VSCODE_INPUTS if i["id"] not in known)]}
    return {**data, key: {**servers, NAME: item}}


def _shown(text: str, secrets: Mapping[str, str]) -> str:
    """``text`` with the secrets' values replaced by placeholders."""
    for name in SECRETS:
        value = secrets.get(name)
        if value:
            text = text.replace(value, f"<your {name}>")
    return text


def install_json(
    host: str, path: Path, entry: Entry, *, dry_run: bool, secrets: Mapping[str, str]
) -> tuple[bool, dict[str, Any]]:
    """Merge the entry into a JSON host's file: whether the file changed, and the entry's env as
    written (or as it would be, on a dry run)."""
    data, old = read_config(path)
    new = merged(host, data, entry, path)
    text = json.dumps(new, indent=2, ensure_ascii=False) + "\n"
    title = TITLES[host]
    written: dict[str, Any] = new[servers_key(host)][NAME]["env"]
    if dry_run:
        say(f"{title}: {path} would read (secrets shown as placeholders):")
        say(_shown(text, {**secrets, **{k: v for k, v in written.items() if k in SECRETS}}))
        return False, written
    if new == data:
        say(f"{title}: {path} already has this entry; nothing changed.")
        return False, written
    holds_key = host != "vscode" and "WIRO_API_KEY" in written
    try:
        backup = write(path, text, old, secret=holds_key)
    except HostFileError as exc:
        raise InstallError(str(exc)) from exc
    except OSError as exc:
        raise InstallError(f"{path} cannot be written ({exc.strerror or exc})") from exc
    replaced = NAME in data.get(servers_key(host), {})
    say(f"{title}: {'replaced' if replaced else 'added'} the {NAME!r} server in {path}.")
    if "WIRO_API_KEY" in written and "WIRO_API_KEY" not in secrets and host != "vscode":
        say("  The key already in the entry was kept (set WIRO_API_KEY to write a new one).")
    if backup is not None:
        say(f"  The old file is kept as {backup}.")
    return True, written


def claude_code_command(entry: Entry, *, shown: bool) -> list[str]:
    """``claude mcp add`` for the user's scope; ``shown`` puts shell references in place of secrets."""
    words = ["claude", "mcp", "add", NAME, "--scope", "user"]
    for name, value in entry.env.items():
        words += ["--env", f"{name}=${name}" if shown and name in SECRETS else f"{name}={value}"]
    return [*words, "--", entry.command, *entry.args]


def install_claude_code(entry: Entry, *, dry_run: bool, env: Mapping[str, str]) -> int:
    shown = " ".join(
        shlex.quote(w) if "$" not in w else f'"{w}"' for w in claude_code_command(entry, shown=True)
    )
    claude = shutil.which("claude", path=env.get("PATH"))
    if dry_run or claude is None:
        if claude is None and not dry_run:
            say("Claude Code's `claude` command was not found on PATH. Run this where it is:")
        say(shown)
        return 0 if dry_run else 1
    words = claude_code_command(entry, shown=False)
    # An entry of the same name is replaced, as for the other hosts.
    subprocess.run([claude, "mcp", "remove", NAME, "--scope", "user"], capture_output=True, check=False)  # noqa: S603
    done = subprocess.run([claude, *words[1:]], capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        say(f"`claude mcp add` failed (exit {done.returncode}): {_shown(done.stderr.strip(), entry.env)}")
        return 1
    say(f"Claude Code: added the {NAME!r} server for your user (`claude mcp list` shows it).")
    return 0


def _secrets(host: str, env: Mapping[str, str]) -> dict[str, str]:
    """The key and secret to write, from the environment or asked for at the terminal."""
    if host == "vscode":
        return {}  # VS Code asks for them itself and keeps them in its secret storage
    found = {name: env[name].strip() for name in SECRETS if env.get(name, "").strip()}
    if "WIRO_API_KEY" not in found and sys.stdin.isatty():
        say("Your Wiro project's API key and secret are on the Wiro dashboard, under Projects.")
        found["WIRO_API_KEY"] = getpass.getpass("Wiro API key (not shown): ").strip()
        found["WIRO_API_SECRET"] = getpass.getpass("Wiro API secret (empty for a key-only project): ").strip()
    return {name: value for name, value in found.items() if value}


def run_install(
    host: str,
    *,
    dry_run: bool = False,
    config: Path | None = None,
    workspace: Path | None = None,
    output_dir: Path | None = None,
    emulator: bool = False,
    env: Mapping[str, str] | None = None,
    system: str | None = None,
    home: Path | None = None,
) -> int:
    env = os.environ if env is None else env
    if host not in HOSTS:
        say(f"host must be one of {', '.join(HOSTS)}; got {host!r}")
        return 2
    entry: Entry | None = None
    secrets: dict[str, str] = {}
    changed = True
    written: dict[str, Any] = {}
    try:
        entry = launch(find_uv(env), checkout_root(), emulator=emulator)
        secrets = {} if emulator else _secrets(host, env)
        entry.env = server_env(host, secrets, output_dir, emulator=emulator)
        if host == "claude-code":
            return install_claude_code(entry, dry_run=dry_run, env=env)
        path = config or host_file(host, env=env, system=system, home=home, workspace=workspace)
        _check_host_folder(host, path, named=config is not None)
        changed, written = install_json(host, path, entry, dry_run=dry_run, secrets=secrets)
    except InstallError as exc:
        say(f"Nothing was installed: {exc}")
        if entry is not None and host != "claude-code":
            say("The entry, to add by hand:")
            say(_shown(json.dumps(merged(host, {}, entry, Path()), indent=2), secrets))
        return 2
    if emulator:
        say(
            "  This entry runs on the built-in Wiro emulator: test pictures, nothing is paid, no key is "
            "needed. Run install again without --emulator to use Wiro."
        )
    elif host != "vscode" and "WIRO_API_KEY" not in written:
        say(
            "  No key was written (WIRO_API_KEY is not set here): the server will start, and ask for "
            "one on every call. Set WIRO_API_KEY (and WIRO_API_SECRET) and run this again, or try it "
            "for free with --emulator."
        )
    if not dry_run:
        check = shlex.join(doctor_command(entry, host, config))
        restart = f"Restart {TITLES[host]} to load it. " if changed else ""
        say(f"{restart}To check the setup as {TITLES[host]} runs it: {check}")
    return 0


def host_file(
    host: str,
    *,
    env: Mapping[str, str],
    system: str | None = None,
    home: Path | None = None,
    workspace: Path | None = None,
) -> Path:
    """Where ``host`` keeps its servers on this machine; never inside this server's own checkout."""
    folder = (workspace or Path.cwd()).resolve()
    root = checkout_root()
    if host == "vscode" and root is not None and (folder == root or root in folder.parents):
        raise InstallError(
            f"{folder} is this server's own checkout, not your project: name your project's folder "
            "with --workspace DIR (VS Code reads .vscode/mcp.json of the workspace it opens)"
        )
    return config_path(
        host, system=system or platform.system(), env=env, home=home or Path.home(), workspace=folder
    )


def doctor_command(entry: Entry, host: str, config: Path | None) -> list[str]:
    """The command that checks the installed entry with what the host runs."""
    args = entry.args[: -len(EMULATOR_ARGS)] if entry.emulator else entry.args
    named = ["--config", str(config)] if config is not None else []
    return [entry.command, *args, "doctor", "--host", host, *named]


def _check_host_folder(host: str, path: Path, *, named: bool) -> None:
    """A host that keeps its file in a folder of its own has been installed and opened once."""
    if host == "vscode":
        if not path.parent.parent.is_dir():
            raise InstallError(f"the workspace {path.parent.parent} does not exist")
    elif not named and not path.parent.is_dir():
        raise InstallError(
            f"{TITLES[host]}'s settings folder {path.parent} was not found: install {TITLES[host]} and "
            "open it once, or name the file with --config."
        )
