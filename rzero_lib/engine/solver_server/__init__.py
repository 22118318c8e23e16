"""The frozen Solver as an OpenAI-compatible server: process manager, HTTP client, HTTP server, CLI."""
