"""The promises each name the tests that hold them (docs/development.md): those tests must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_promise_names_tests_that_exist() -> None:
    readme = (ROOT / "docs" / "development.md").read_text()
    table = readme.split("| Promise | Test |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    assert len(rows) >= 6
    for row in rows:
        promise, tests = (cell.strip() for cell in row.strip("|").split("|"))
        named = re.findall(r"`([^`]+)`", tests)
        assert named, promise
        current: Path | None = None
        for name in named:
            path, _, function = name.partition("::")
            if path.endswith(".py"):
                current = ROOT / path
                assert current.is_file(), f"{promise}: {path} does not exist"
            else:
                function = path
            if function:
                assert current is not None, promise
                defined = {
                    node.name
                    for node in ast.walk(ast.parse(current.read_text()))
                    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                }
                assert function in defined, f"{promise}: {function} is not in {current.name}"
