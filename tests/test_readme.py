"""What the README tells a newcomer, checked against the code and the CI script that it describes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wiro_seedream_mcp.install import VSCODE_INPUTS, config_path, launch, server_env
from wiro_seedream_mcp.ui.page import HERE as UI

from .nodetools import ROOT
from .test_hosts import HOSTS_DOC, README, snippets

DOCS = ROOT / "docs"
DEVELOPMENT = (DOCS / "development.md").read_text()

PLACEHOLDER_ROOT = "/absolute/path/to/wiro-seedream-mcp"
PLACEHOLDER_IMAGES = "/absolute/path/to/your/images"


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_the_set_up_has_exactly_two_commands() -> None:
    block = re.search(r"```sh\n(.*?)```", _section("Set up"), flags=re.DOTALL)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["uv run wiro-seedream-mcp demo", "uv run pytest"]


def test_it_leads_with_what_works_from_a_checkout() -> None:
    install = README.index("uv run wiro-seedream-mcp install claude-desktop")
    free = README.index("uv run wiro-seedream-mcp install claude-desktop --emulator")
    published = README.index("**Once the package is published**")
    assert free <= install < published < README.index("uvx"), "uvx is offered before it can work"
    assert "not found in the package registry" in README[published:]
    published = HOSTS_DOC.index("**Once the package is published**")
    assert "not found in the package registry" in HOSTS_DOC[published:]
    assert HOSTS_DOC.index("<!-- host: claude-desktop/local -->") < published


def test_it_says_how_to_install_uv_get_a_key_and_what_it_costs() -> None:
    assert "curl -LsSf https://astral.sh/uv/install.sh | sh" in README
    assert "irm https://astral.sh/uv/install.ps1 | iex" in README
    assert "Wiro dashboard" in README and "API key and API secret" in README
    costs = README[README.index("**What an image costs.**") :][:600]
    assert "`totalcost`" in costs and "failed tasks are not charged" in costs


def test_it_says_why_to_save_images() -> None:
    keep = README[README.index("**Keep your images.**") :][:400]
    assert "limited time" in keep and "`WIRO_OUTPUT_DIR`" in keep
    for name in ("claude-desktop/local", "vscode/local"):
        assert "WIRO_OUTPUT_DIR" in snippets()[name], f"{name} does not save images"


def test_it_names_where_claude_desktop_keeps_its_file() -> None:
    mac = config_path("claude-desktop", system="Darwin", env={}, home=Path("~"), workspace=Path())
    windows = config_path(
        "claude-desktop", system="Windows", env={"APPDATA": "%APPDATA%"}, home=Path("~"), workspace=Path()
    )
    linux = config_path("claude-desktop", system="Linux", env={}, home=Path("~"), workspace=Path())
    for text in (README, HOSTS_DOC):
        assert f"`{mac.parent}/` on\nmacOS" in text
        assert "`" + str(windows.parent).replace("/", "\\") + "\\` on Windows" in text
        assert f"`{linux.parent}/` on Linux" in text
    assert mac.name == windows.name == linux.name == "claude_desktop_config.json"
    assert f"`{mac.name}`" in README


def test_the_snippets_are_what_install_writes() -> None:
    entry = launch("uv", Path(PLACEHOLDER_ROOT))
    desktop = json.loads(snippets()["claude-desktop/local"])["mcpServers"]["wiro-seedream"]
    assert [desktop["command"], *desktop["args"]] == [entry.command, *entry.args]
    secrets = {"WIRO_API_KEY": "your-api-key", "WIRO_API_SECRET": "your-api-secret"}
    assert desktop["env"] == server_env("claude-desktop", secrets, Path(PLACEHOLDER_IMAGES))
    vscode = json.loads(snippets()["vscode/local"])
    assert vscode["inputs"] == VSCODE_INPUTS
    assert vscode["servers"]["wiro-seedream"]["env"] == server_env("vscode", {}, Path(PLACEHOLDER_IMAGES))


def test_it_says_what_skips_outside_ci_and_how_to_run_it() -> None:
    development = DEVELOPMENT
    for needed in (
        "uv sync --all-groups",
        "uv sync --project examples/langchain",
        "WIRO_TEST_MCPB_BUNDLE",
        "WIRO_TEST_INSPECTOR",
        "WIRO_TEST_TS_SDK",
        "WIRO_TEST_APP_TOOLS",
        "apt-get install chromium",
        "uv sync --group browser",
        "tmpfs",
    ):
        assert needed in development, needed
    pins = r"((?:@[\w-]+/)?[\w-]+@\d+\.\d+\.\d+)"
    pinned = set(re.findall(pins, (ROOT / ".ci" / "run").read_text()))
    ext_apps = json.loads((UI / "vendor" / "ext-apps.json").read_text())
    pinned.add(f"{ext_apps['package']}@{ext_apps['version']}")  # .ci/run takes it from that record
    assert pinned and pinned <= set(re.findall(pins, development))
    assert "zod@4.6.7" in pinned and "esbuild@0.28.2" in pinned


def test_it_has_one_picture_of_how_it_works() -> None:
    picture = re.findall(r"```mermaid\n(.*?)```", _section("How it works"), flags=re.DOTALL)
    assert len(picture) == 1
    for part in ("Host", "wiro-seedream-mcp", "Wiro API", "WIRO_OUTPUT_DIR"):
        assert part in picture[0]
    assert README.count("```mermaid") == 1


def test_it_is_the_newcomers_path_and_short() -> None:
    assert README.count("```json") == 0  # the entries by hand are in docs/hosts.md
    assert len(README.splitlines()) <= 250
    for title in ("Set up", "Add it to your host", "What it costs", "Where to go next", "Development"):
        assert f"\n## {title}\n" in README, title
    # Each guide is linked from the README once, in its list of where to go next.
    for guide in ("configuration", "hosts", "frameworks", "remote", "development", "layout"):
        assert _section("Where to go next").count(f"(docs/{guide}.md)") == 1, guide


LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors for a page's headings."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


@pytest.mark.parametrize("page", ["README.md", *(f"docs/{p.name}" for p in sorted(DOCS.glob("*.md")))])
def test_every_link_in_the_docs_resolves(page: str) -> None:
    source = ROOT / page
    for target in LINK.findall(source.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (source.parent / path).resolve() if path else source
        assert resolved.exists(), f"{page}: {target} does not exist"
        assert ROOT in resolved.parents or resolved == ROOT, f"{page}: {target} leaves the repository"
        if anchor:
            assert anchor in _anchors(resolved.read_text()), (
                f"{page}: no heading for #{anchor} in {path or page}"
            )


def test_the_link_check_bites() -> None:
    assert "the-image-viewer" in _anchors(README)
    assert "where-to-go-next" in _anchors(README)
    assert LINK.findall("see [x](docs/nowhere.md#a) and [y](https://e.example)") == [
        "docs/nowhere.md#a",
        "https://e.example",
    ]


def test_it_shows_the_viewer_as_the_browser_tests_last_saw_it() -> None:
    viewer = _section("The image viewer")
    shots = re.findall(r"\((docs/[\w-]+\.png)\)", viewer)
    assert shots == [
        *("docs/viewer-dark-360.png", "docs/gallery.png", "docs/viewer.png"),
        *("docs/contact-sheet.png", "docs/gallery-set.png"),
    ]
    for shot in shots:  # written by tests/browser/test_view.py with WIRO_TEST_ARTEFACTS=docs
        assert (ROOT / shot).read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), shot
    for host in ("claude.ai", "Claude Desktop", "ChatGPT", "VS Code", "Goose", "Microsoft 365"):
        assert host in viewer, host


def test_every_test_variable_ci_sets_is_explained() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    for name in sorted(set(re.findall(r"\b(WIRO_(?:TEST|FUZZ)_[A-Z0-9_]+)", ci))):
        assert f"| `{name}` |" in DEVELOPMENT, name


def test_the_http_quick_start_names_the_key_the_emulator_takes() -> None:
    from wiro_seedream_mcp.emulator import DEFAULT_KEY, DEFAULT_SECRET

    start = _section("Where to go next")
    assert "serve --http --emulator" in start
    assert f"Authorization: Bearer {DEFAULT_KEY}:{DEFAULT_SECRET}" in start


def test_every_test_has_a_time_limit(pytestconfig: pytest.Config) -> None:
    # A deadline regression fails its test instead of stalling the run (CI has 90 minutes).
    assert 60 <= float(pytestconfig.getini("timeout")) <= 600
