"""The pure core: plain dicts in, Decision + JSON Patch out.

No server, no Kubernetes client, no asyncio, no files, no environment, no clock:
the shells (CLI, HTTP server) pass everything in. An import-linter contract in
pyproject.toml keeps it so.
"""
