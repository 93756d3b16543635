"""Refresh the vendored MCP Apps client (``@modelcontextprotocol/ext-apps``, its ``app-with-deps``
build) from the npm registry, or check the vendored copy against an installed package.

    uv run python dev/vendor_ext_apps.py [--version 2.0.4]   # fetch with `npm pack`, copy, record
    uv run python dev/vendor_ext_apps.py --check NODE_MODULES  # byte-identical to that install?

The view (``server/wiro_seedream_mcp/ui/``) inlines the file at run time, so the page needs no
network; ``ext-apps.json`` beside it records the package, the exact version and the file's SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@modelcontextprotocol/ext-apps"
BUILD = "dist/src/app-with-deps.js"
VENDOR = Path(__file__).resolve().parents[1] / "server" / "wiro_seedream_mcp" / "ui" / "vendor"
RECORD = VENDOR / "ext-apps.json"
CLIENT = VENDOR / "app-with-deps.js"
LICENSE = VENDOR / "LICENSE"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def refresh(version: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is needed to fetch the package")
    with tempfile.TemporaryDirectory() as work:
        packed = subprocess.run(  # noqa: S603 - fixed arguments
            [npm, "pack", f"{PACKAGE}@{version}", "--silent"],
            cwd=work,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        with tarfile.open(Path(work) / packed) as archive:
            build = archive.extractfile(f"package/{BUILD}")
            license_file = archive.extractfile("package/LICENSE")
            manifest = archive.extractfile("package/package.json")
            if build is None or license_file is None or manifest is None:
                sys.exit(f"{packed} lacks {BUILD}, LICENSE or package.json")
            data, license_text, meta = build.read(), license_file.read(), json.loads(manifest.read())
    if meta.get("version") != version:
        sys.exit(f"npm gave {PACKAGE} {meta.get('version')}, not {version}")
    CLIENT.write_bytes(data)
    LICENSE.write_bytes(license_text)
    record = {
        "package": PACKAGE,
        "version": version,
        "file": BUILD,
        "sha256": sha256(data),
        "license": meta.get("license"),
    }
    RECORD.write_text(json.dumps(record, indent=2) + "\n")
    print(f"vendored {PACKAGE}@{version} {BUILD}: {len(data)} bytes, sha256 {record['sha256']}")


def check(node_modules: Path) -> int:
    record = json.loads(RECORD.read_text())
    installed = node_modules / PACKAGE
    version = json.loads((installed / "package.json").read_text()).get("version")
    problems = []
    if version != record["version"]:
        problems.append(f"{installed} is version {version}, the vendored copy is {record['version']}")
    if CLIENT.read_bytes() != (installed / record["file"]).read_bytes():
        problems.append(f"{CLIENT.name} differs from {installed / record['file']}")
    if sha256(CLIENT.read_bytes()) != record["sha256"]:
        problems.append(f"{CLIENT.name} does not match the SHA-256 in {RECORD.name}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{CLIENT.name} is byte-identical to {PACKAGE}@{version}")
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", help="the exact version to vendor (default: the recorded one)")
    parser.add_argument(
        "--check", type=Path, metavar="NODE_MODULES", help="compare with an installed package"
    )
    args = parser.parse_args()
    if args.check is not None:
        sys.exit(check(args.check))
    refresh(args.version or json.loads(RECORD.read_text())["version"])


if __name__ == "__main__":
    main()
