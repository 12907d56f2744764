"""Thin adapters over the Assistant facade: the CLI, the HTTP API, the OpenAI-compatible API and the web UI."""
