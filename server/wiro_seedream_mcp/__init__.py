"""MCP server for ByteDance Seedream 3.0 text-to-image on Wiro.ai."""

__version__ = "0.1.0"
