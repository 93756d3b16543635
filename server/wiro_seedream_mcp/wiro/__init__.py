"""A small async client for the Wiro task API, with no MCP in it.

Import the parts from their modules: ``client.WiroClient``, ``signing.WiroAuth``,
``models.Task``, ``seedream.SeedreamInputs``, ``errors.WiroError``.
"""
