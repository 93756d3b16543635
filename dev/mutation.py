"""Mutation testing with mutmut 3 on the modules where a bug costs money or data.

    uv run python dev/mutation.py                    # every mutant of those modules
    uv run python dev/mutation.py --sample 300       # a fixed sample (what CI runs)
    uv run python dev/mutation.py --min-score 90     # fail below 90 % killed

The modules and the tests are in pyproject.toml ([tool.mutmut]). mutmut looks for the code in
./, src/ or source/; this project keeps it in server/, so the mutated copy of server/ is put
first on the import path here, the original taken off it, and mutant names lose the
``server.`` prefix as they would lose ``src.``. Tests that start the server in a child process
cannot see a mutant and are left out (marker ``child_process``). Results stay in mutants/ (a
second run only tests what changed); `uv run mutmut browse` shows the survivors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"


def _mutmut(
    *args: str, capture: bool = False, generate_only: bool = False
) -> subprocess.CompletedProcess[str]:
    """mutmut in a child process, with the import path this layout needs; ``generate_only``
    stops it once the mutants exist, before it collects test statistics or runs anything."""
    stop = "m.collect_or_load_stats = lambda *a, **k: sys.exit(0)\n" if generate_only else ""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import mutmut.__main__ as m\n"
        "original = m.setup_source_paths\n"
        "def setup():\n"
        "    original()\n"
        "    server = Path('server').resolve()\n"
        "    sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() != server]\n"
        "    sys.path.insert(0, str(Path('mutants/server').resolve()))\n"
        "m.setup_source_paths = setup\n"
        "import mutmut.utils.format_utils as f\n"
        "strip = f.strip_prefix\n"
        "def strip_both(s, *, prefix, strict=False):\n"
        "    s = strip(s, prefix=prefix, strict=strict)\n"
        "    return strip(s, prefix='server.') if prefix == 'src.' else s\n"
        "f.strip_prefix = strip_both\n"
        f"{stop}"
        "m.cli(sys.argv[1:])\n"
    )
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run(  # noqa: S603 - this interpreter, running mutmut
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, text=True, check=False, capture_output=capture
    )


def _names() -> list[str]:
    """Every mutant mutmut generated, by name."""
    listed = _mutmut("results", "--all", "true", capture=True)
    return sorted(line.split(":")[0].strip() for line in listed.stdout.splitlines() if "__mutmut_" in line)


def _sample(names: list[str], size: int) -> list[str]:
    """A fixed sample: the same mutants every run, spread over every module."""
    ranked = sorted(names, key=lambda name: hashlib.sha256(name.encode()).hexdigest())
    return sorted(ranked[:size])


def _score(names: list[str] | None) -> tuple[int, int, dict[str, int]]:
    """(killed, tested, count by verdict) over ``names`` (all when None)."""
    listed = _mutmut("results", "--all", "true", capture=True)
    wanted = set(names) if names is not None else None
    verdicts: dict[str, int] = {}
    for line in listed.stdout.splitlines():
        name, _, verdict = line.partition(":")
        name, verdict = name.strip(), verdict.strip()
        if "__mutmut_" not in name or (wanted is not None and name not in wanted):
            continue
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
    killed = verdicts.get("killed", 0) + verdicts.get("timeout", 0)
    tested = killed + verdicts.get("survived", 0)
    return killed, tested, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=0, help="test only this many mutants (0 = all)")
    parser.add_argument("--min-score", type=float, default=0.0, help="fail below this %% killed")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    children = ["--max-children", str(args.max_children)]
    chosen: list[str] | None = None
    if args.sample:
        # Generate every mutant, without testing any, and pick from what was generated.
        _mutmut("run", *children, generate_only=True)
        names = _names()
        if not names:
            print("mutmut generated no mutants", file=sys.stderr)
            return 2
        chosen = _sample(names, args.sample)
        if _mutmut("run", *children, *chosen).returncode != 0:
            return 2
    elif _mutmut("run", *children).returncode != 0:
        return 2
    killed, tested, verdicts = _score(chosen)
    score = 100.0 * killed / tested if tested else 0.0
    print(json.dumps({"killed": killed, "tested": tested, "score": round(score, 1), "verdicts": verdicts}))
    if score < args.min_score:
        print(f"mutation score {score:.1f}% is below {args.min_score:g}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
