"""``python -m wiro_seedream_mcp``: the same command line as ``wiro-seedream-mcp``."""

from .cli import main

if __name__ == "__main__":
    main()
