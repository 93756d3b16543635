"""``wiro-seedream-mcp doctor --host <host>``: check the entry a host has, the way the host runs it.

A shell's ``WIRO_API_KEY`` says nothing about what a desktop host starts: the host runs the
entry's command with the entry's arguments and environment, and little else of the shell. This
reads the installed entry and runs the doctor with exactly that command and environment (plus the
few variables any program needs), so "ready" means ready in the host.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .console import say
from .install import (
    EMULATOR_ARGS,
    HOSTS,
    NAME,
    PACKAGE,
    TITLES,
    InstallError,
    host_file,
    read_config,
    servers_key,
)

READY, BAD_CONFIG = 0, 2
# What a host passes to the servers it starts besides the entry's own variables, roughly: where
# home is, a short PATH, the temp folder, and on Windows what any program needs to start.
KEPT = ("HOME", "USERPROFILE", "TMPDIR", "TEMP", "TMP", "LANG", "SYSTEMROOT", "APPDATA", "LOCALAPPDATA")
HOST_PATH = os.pathsep.join(["/usr/local/bin", "/usr/bin", "/bin"])
# Doctor's own checks take seconds; a command that hangs past this is reported, not waited on.
CHECK_TIMEOUT = 120


def installed_entry(
    host: str, *, config: Path | None, workspace: Path | None, env: Mapping[str, str], home: Path | None
) -> tuple[Path, dict[str, Any] | None]:
    """The host's file and this server's entry in it (None when it has none)."""
    if host == "claude-code":
        path = config or (home or Path.home()) / ".claude.json"
    else:
        path = config or host_file(host, env=env, home=home, workspace=workspace)
    data, _ = read_config(path)
    servers = data.get(servers_key(host))
    entry = servers.get(NAME) if isinstance(servers, dict) else None
    return path, entry if isinstance(entry, dict) else None


def check_host(
    host: str,
    *,
    config: Path | None = None,
    workspace: Path | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> int:
    """Run the doctor as ``host`` runs the server; the doctor's exit code, or 2 when it cannot."""
    env = os.environ if env is None else env
    if host not in HOSTS:
        say(f"--host must be one of {', '.join(HOSTS)}; got {host!r}")
        return BAD_CONFIG
    try:
        command, words, host_env = _launch(host, config=config, workspace=workspace, env=env, home=home)
    except InstallError as exc:
        say(f"Not ready: {exc}")
        return BAD_CONFIG
    if words[-len(EMULATOR_ARGS) :] == EMULATOR_ARGS:
        return _check_emulated(TITLES[host], command, words[: -len(EMULATOR_ARGS)], host_env)
    return _run(command, [*_base(words), "doctor"], host_env)


def _launch(
    host: str, *, config: Path | None, workspace: Path | None, env: Mapping[str, str], home: Path | None
) -> tuple[str, list[str], dict[str, str]]:
    """The command, arguments and environment ``host`` starts the installed entry with."""
    title = TITLES[host]
    path, entry = installed_entry(host, config=config, workspace=workspace, env=env, home=home)
    if entry is None:
        raise InstallError(f"{path} has no {NAME!r} server. Add it with: wiro-seedream-mcp install {host}")
    command, args = entry.get("command"), entry.get("args", [])
    variables = entry.get("env", {})
    if not isinstance(command, str) or not isinstance(args, list) or not isinstance(variables, dict):
        raise InstallError(f"the {NAME!r} entry in {path} has no usable command, args and env")
    words = [str(a) for a in args]
    say(f"{title} starts: {shlex.join([command, *words])}  (from {path})")
    found = command if Path(command).is_absolute() else shutil.which(command, path=HOST_PATH)
    if found is None or not os.access(found, os.X_OK):
        raise InstallError(
            f"{title} cannot start {command!r}: it is not an executable file (a desktop host's PATH is "
            f"short, {HOST_PATH}); run install {host} again to write its full path"
        )
    host_env = {name: env[name] for name in KEPT if env.get(name)} | {"PATH": HOST_PATH}
    for name, value in variables.items():
        if isinstance(value, str) and value.startswith("${input:"):
            say(f"  {name} is asked for by {title} when it starts the server; it is checked there, not here")
            continue
        host_env[name] = str(value)
    return found, words, host_env


def _base(args: list[str]) -> list[str]:
    """The entry's arguments up to the server's own subcommand (``serve`` and its options)."""
    if PACKAGE in args:
        return args[: len(args) - args[::-1].index(PACKAGE)]
    return args[: args.index("serve")] if "serve" in args else args


def _check_emulated(title: str, command: str, args: list[str], env: dict[str, str]) -> int:
    code = _run(command, [*args, "--version"], env, quiet=True)
    if code != 0:
        say(f"Not ready: the command {title} runs exited {code} (above)")
        return BAD_CONFIG
    say(f"Ready: {title} runs the server on the built-in Wiro emulator (test pictures, nothing paid).")
    return READY


def _run(command: str, args: list[str], env: dict[str, str], *, quiet: bool = False) -> int:
    try:
        done = subprocess.run(  # noqa: S603 - the host's own entry, run as the host would
            [command, *args], env=env, capture_output=quiet, timeout=CHECK_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        say(f"Not ready: {shlex.join([command, *args])} could not be run ({exc})")
        return BAD_CONFIG
    if quiet and done.returncode != 0:
        say(done.stderr.decode(errors="replace")[-2000:])
    return done.returncode
