"""The package's shape holds: no import circles, the Wiro client stands alone, the emulator
shares nothing with the client it checks, and no module grows past what a reader takes in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "wiro_seedream_mcp"
ROOT_NAME = "wiro_seedream_mcp"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = [ROOT_NAME, *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = sorted(PACKAGE.rglob("*.py"))
MODULES = {_module_name(path): path for path in FILES}


def _imports(
    name: str, source: str | None = None, *, is_package: bool | None = None
) -> tuple[set[str], set[str]]:
    """(modules of this package, top-level outside names) that ``name`` imports, anywhere in it:
    at the top, inside functions and under TYPE_CHECKING alike. ``source`` and ``is_package``
    stand in for the module's file (to check the walk itself)."""
    if source is None:
        source = MODULES[name].read_text()
        is_package = MODULES[name].name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    inside: set[str] = set()
    outside: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (inside if alias.name.startswith(ROOT_NAME) else outside).add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith(ROOT_NAME):
                outside.add(target)
                continue
            inside.add(target)
            for alias in node.names:  # `from . import x` where x is a module
                if f"{target}.{alias.name}" in MODULES:
                    inside.add(f"{target}.{alias.name}")
    inside = {module for module in inside if module in MODULES and module != name}
    return inside, {module.split(".")[0] for module in outside if module}


GRAPH = {name: _imports(name)[0] for name in MODULES}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle a depth-first walk of ``graph`` runs into, each as the path around it."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []
    found: list[list[str]] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return found


def test_there_are_no_import_circles() -> None:
    found = circles(GRAPH)
    assert found == [], "import circles: " + "; ".join(" -> ".join(c) for c in found)


def test_no_module_is_shadowed_by_a_package() -> None:
    # ``x.py`` beside a package ``x/`` is never imported, yet reads like the package's code.
    assert len(MODULES) == len(FILES), sorted(
        str(path.relative_to(PACKAGE)) for path in FILES if MODULES[_module_name(path)] != path
    )


def test_the_walk_sees_circles_and_real_imports() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set(), "c": {"b"}}) == []
    # The graph is the package's real one, function-level imports included.
    assert "wiro_seedream_mcp.wiro.client" in GRAPH["wiro_seedream_mcp.tools.starting"]
    assert "wiro_seedream_mcp.emulator.project" in GRAPH["wiro_seedream_mcp.emulator.app"]
    assert "wiro_seedream_mcp.demo" in GRAPH["wiro_seedream_mcp.cli"]  # imported inside main()
    # A submodule importing its own package (``from . import X``) and the package importing the
    # submodule back is a circle too, one kept alive only by the order of the imports.
    package, sub = f"{ROOT_NAME}.journal", f"{ROOT_NAME}.journal.sqlite"
    graph = {
        package: _imports(package, "from .sqlite import Journal", is_package=True)[0] | {sub},
        sub: _imports(sub, "from . import TaskJournal", is_package=False)[0],
    }
    assert graph[sub] == {package}
    assert circles(graph) == [[package, sub, package]]


@pytest.mark.parametrize("name", [n for n in MODULES if n.startswith(f"{ROOT_NAME}.wiro")])
def test_the_wiro_client_stands_alone(name: str) -> None:
    inside, outside = _imports(name)
    assert all(module.startswith(f"{ROOT_NAME}.wiro") for module in inside), inside
    assert not outside & {"mcp", "mcp_types", "starlette", "uvicorn"}, outside


@pytest.mark.parametrize("name", [n for n in MODULES if n.startswith(f"{ROOT_NAME}.emulator")])
def test_the_emulator_shares_nothing_with_the_client(name: str) -> None:
    inside, outside = _imports(name)
    assert all(module.startswith(f"{ROOT_NAME}.emulator") for module in inside), inside
    assert "mcp" not in outside


@pytest.mark.parametrize("name", list(MODULES))
def test_no_module_is_over_400_lines(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(PACKAGE)} has {lines} lines"
