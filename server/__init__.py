"""The web layer: Starlette app, routes, WebSocket endpoint, auth, settings and CLI."""
