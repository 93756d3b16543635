"""Entry point for the MCP bundle: serves MCP over stdio."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wiro_seedream_mcp.cli import main

if __name__ == "__main__":
    main(["serve"])
