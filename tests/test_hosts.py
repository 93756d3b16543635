"""Every way a person installs the server: each README snippet, run as its host would run it,
the MCPB manifest and bundle, and the registry metadata."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.types import TextContent

from wiro_seedream_mcp import __version__
from wiro_seedream_mcp.app import build_server
from wiro_seedream_mcp.config import Settings
from wiro_seedream_mcp.emulator import EmulatorServer

from .conftest import API_KEY, API_SECRET, TOOL_NAMES
from .nodetools import ROOT, node_tool, uv_binary

README = (ROOT / "README.md").read_text()
# The snippets each host takes by hand, and the configuration reference, live in docs/.
HOSTS_DOC = (ROOT / "docs" / "hosts.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
MANIFEST = json.loads((ROOT / "manifest.json").read_text())
SERVER_JSON = json.loads((ROOT / "server.json").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

PLACEHOLDERS = {
    "your-api-key": API_KEY,
    "your-api-secret": API_SECRET,
    "/absolute/path/to/wiro-seedream-mcp": str(ROOT),
}
TOOLS = TOOL_NAMES


def snippets() -> dict[str, str]:
    found = dict(re.findall(r"<!-- host: (\S+) -->\n```\w+\n(.*?)\n```", HOSTS_DOC, flags=re.DOTALL))
    assert found, "no host snippets found in docs/hosts.md"
    return found


@dataclass
class Launch:
    command: str
    args: list[str]
    env: dict[str, str]


def _fill(text: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return text


def _expand(text: str, values: dict[str, str]) -> str:
    """What the host does with its ${...} references."""
    return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text)


def launch_of(name: str, text: str, bundle_dir: Path = ROOT) -> Launch:
    host = name.split("/", maxsplit=1)[0]
    if host == "claude-code-cli":
        words = shlex.split(_fill(text))
        assert words[:4] == ["claude", "mcp", "add", "wiro-seedream"]
        split = words.index("--")
        options, command = words[4:split], words[split + 1 :]
        env = dict(
            value.split("=", 1)
            for flag, value in zip(options[::2], options[1::2], strict=True)
            if flag == "--env"
        )
        return Launch(command[0], command[1:], env)
    data: dict[str, Any] = json.loads(_fill(text))
    if host == "mcpb":
        values = {
            "__dirname": str(bundle_dir),
            "user_config.api_key": API_KEY,
            "user_config.api_secret": API_SECRET,
            "user_config.output_dir": "",  # left empty by the person
            "user_config.wait_timeout": "50",
            "user_config.budget_usd": "",  # left empty: no limit
            "user_config.confirm": "never",
        }
        entry = data
    elif host == "vscode":
        inputs = {item["id"]: item for item in data["inputs"]}
        assert all(i["type"] == "promptString" and i["password"] is True for i in inputs.values())
        answers = {"wiro-api-key": API_KEY, "wiro-api-secret": API_SECRET}
        values = {f"input:{key}": answers[key] for key in inputs}
        entry = data["servers"]["wiro-seedream"]
        assert entry["type"] == "stdio"
        assert "mcpServers" not in data
    else:
        values = {"WIRO_API_KEY": API_KEY, "WIRO_API_SECRET": API_SECRET}  # the host's own environment
        entry = data["mcpServers"]["wiro-seedream"]
    env = {key: _expand(value, values) for key, value in entry.get("env", {}).items()}
    args = [_expand(arg, values) for arg in entry.get("args", [])]
    return Launch(entry["command"], args, env)


def runnable(launch: Launch) -> tuple[str, list[str]]:
    """uvx runs the published package; here it runs this checkout instead, the same way."""
    uv = uv_binary()
    if launch.command == "uvx":
        return uv, ["tool", "run", "--from", str(ROOT), *launch.args]
    # A host runs "uv" from its PATH, or the absolute path `install` writes.
    assert launch.command == "uv" or Path(launch.command).name in {"uv", "uv.exe"}, launch.command
    return uv, launch.args


def machine_env() -> dict[str, str]:
    """What this machine needs to reach the package index (certificates, proxies, uv settings),
    which a host would pass on from the user's session too."""
    wanted = re.compile(r"SSL|CERT|CA_BUNDLE|PROXY|^UV_|^PIP_", re.IGNORECASE)
    return {key: value for key, value in os.environ.items() if wanted.search(key)}


async def tools_through(launch: Launch, emulator: EmulatorServer, tmp_path: Path) -> list[str]:
    command, args = runnable(launch)
    env = {
        **machine_env(),
        **launch.env,
        "WIRO_API_BASE_URL": emulator.base_url,
        "WIRO_STATE_DIR": str(tmp_path / "state"),
        "WIRO_LOG_LEVEL": "WARNING",
    }
    async with Client(StdioServerParameters(command=command, args=args, env=env, cwd=tmp_path)) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        # A signed call reaches the emulator: the key and secret came through the host's config.
        probe = await client.call_tool("get_task", {"taskid": "777"})
    text = probe.content[0]
    assert isinstance(text, TextContent)
    assert "There is no task yet." in text.text, text.text
    return names


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(snippets()))
async def test_readme_host_config_starts_the_server(
    name: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    launch = launch_of(name, snippets()[name])
    assert await tools_through(launch, emulator, tmp_path) == TOOLS


def test_every_host_has_a_snippet_that_works_from_a_checkout() -> None:
    assert set(snippets()) == {
        "claude-desktop/local",  # Cursor takes the same entry
        "vscode/local",
        "claude-code-cli/local",
        "claude-code-json/local",
        "mcpb/bundle",
        "claude-desktop/uvx",  # the published package's form, marked as such
    }


def test_readme_bundle_snippet_is_the_manifest() -> None:
    assert json.loads(snippets()["mcpb/bundle"]) == MANIFEST["server"]["mcp_config"]


# -- the MCPB manifest ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_manifest_lists_what_the_server_serves() -> None:
    server = build_server(Settings())
    async with Client(server) as client:  # the tools a model is offered (app-only ones are not)
        offered = [t.name for t in (await client.list_tools()).tools]
    assert [tool["name"] for tool in MANIFEST["tools"]] == offered
    assert [p["name"] for p in MANIFEST["prompts"]] == [p.name for p in await server.list_prompts()]
    assert MANIFEST["version"] == PYPROJECT["project"]["version"] == __version__


def test_manifest_user_config() -> None:
    config = MANIFEST["user_config"]
    assert MANIFEST["manifest_version"] == "0.3"
    assert MANIFEST["server"]["type"] == "python"
    assert (ROOT / MANIFEST["server"]["entry_point"]).is_file()
    assert config["api_key"]["sensitive"] is True
    assert config["api_key"]["required"] is True
    assert config["api_secret"]["sensitive"] is True
    assert config["api_secret"]["required"] is False
    assert config["output_dir"]["type"] == "directory"
    assert config["wait_timeout"]["type"] == "number"
    referenced = re.findall(r"\$\{user_config\.(\w+)\}", json.dumps(MANIFEST["server"]["mcp_config"]))
    assert sorted(referenced) == sorted(config)
    assert MANIFEST["privacy_policies"]


def test_packed_bundle_holds_the_server_and_nothing_else() -> None:
    bundle = node_tool("WIRO_TEST_MCPB_BUNDLE", "a bundle packed by `mcpb pack`")
    names = zipfile.ZipFile(bundle).namelist()
    for needed in (
        "manifest.json",
        "pyproject.toml",
        "uv.lock",
        "LICENSE",
        "server/main.py",
        "server/wiro_seedream_mcp/app.py",
        "server/wiro_seedream_mcp/wiro/client.py",
        "server/wiro_seedream_mcp/ui/view.html",
        "server/wiro_seedream_mcp/ui/vendor/app-with-deps.js",
        "server/wiro_seedream_mcp/ui/vendor/LICENSE",
    ):
        assert needed in names, needed
    for name in names:
        assert name.split("/")[0] in IN_THE_BUNDLE, name
        assert "__pycache__" not in name
        assert not name.endswith((".pyc", ".mcpb"))


# What a bundle may hold at its top level: the server and what describes it, nothing else.
IN_THE_BUNDLE = {
    "manifest.json",
    "pyproject.toml",
    "uv.lock",
    "LICENSE",
    "README.md",
    "server.json",
    "server",
}
# What a checkout gathers as it is used (test runs, editors, hosts, screenshots, logs).
LEFTOVERS = [
    ".hypothesis/examples/0a1b/2c3d",
    ".vscode/mcp.json",
    ".cursor/mcp.json",
    ".idea/workspace.xml",
    "artefacts/viewer.png",
    "mutants/server/x.py",
    ".env",
    "serve.log",
    ".pytest_cache/v/cache/lastfailed",
    "server/wiro_seedream_mcp/__pycache__/app.cpython-311.pyc",
    "claude_desktop_config.json.backup-20260101-000000",
]


def test_a_used_checkout_packs_only_the_server(tmp_path: Path) -> None:
    cli = node_tool("WIRO_TEST_MCPB_CLI", "the MCPB CLI (npm @anthropic-ai/mcpb)")
    tracked = (
        subprocess.run(
            ["git", "ls-files", "-z"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    checkout = tmp_path / "checkout"
    for name in filter(None, tracked):
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, checkout / name)
    for name in LEFTOVERS:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text("left over\n")
    bundle = tmp_path / "wiro.mcpb"
    packed = subprocess.run(
        [str(cli), "pack", str(checkout), str(bundle)], capture_output=True, text=True, check=False
    )
    assert packed.returncode == 0, packed.stdout + packed.stderr
    names = zipfile.ZipFile(bundle).namelist()
    assert "server/wiro_seedream_mcp/app.py" in names
    outside = [name for name in names if name.split("/")[0] not in IN_THE_BUNDLE or "__pycache__" in name]
    assert outside == []


@pytest.mark.anyio
async def test_packed_bundle_runs_as_a_host_runs_it(emulator: EmulatorServer, tmp_path: Path) -> None:
    bundle = node_tool("WIRO_TEST_MCPB_BUNDLE", "a bundle packed by `mcpb pack`")
    unpacked = tmp_path / "bundle"
    zipfile.ZipFile(bundle).extractall(unpacked)
    launch = launch_of(
        "mcpb/bundle",
        json.dumps(json.loads((unpacked / "manifest.json").read_text())["server"]["mcp_config"]),
        unpacked,
    )
    assert await tools_through(launch, emulator, tmp_path) == TOOLS


# -- the registry metadata ------------------------------------------------------------------


def test_server_json_matches_the_package() -> None:
    marker = re.search(r"<!-- mcp-name: (\S+) -->", README)
    assert marker is not None
    assert SERVER_JSON["name"] == marker.group(1)
    assert len(SERVER_JSON["description"]) <= 100
    assert SERVER_JSON["version"] == PYPROJECT["project"]["version"]
    [package] = SERVER_JSON["packages"]
    assert package["registryType"] == "pypi"
    assert package["identifier"] == PYPROJECT["project"]["name"]
    assert package["version"] == PYPROJECT["project"]["version"]
    assert package["runtimeHint"] == "uvx"
    assert package["transport"] == {"type": "stdio"}
    variables = {v["name"]: v for v in package["environmentVariables"]}
    assert variables["WIRO_API_KEY"]["isSecret"] is True
    assert variables["WIRO_API_KEY"]["isRequired"] is True
    assert variables["WIRO_API_SECRET"]["isSecret"] is True
    assert variables["WIRO_API_SECRET"]["isRequired"] is False
    for name in variables:
        assert f"| `{name}` |" in CONFIGURATION, f"{name} is not in docs/configuration.md's table"
