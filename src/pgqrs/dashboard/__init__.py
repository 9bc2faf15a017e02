"""The web dashboard: a Starlette app over a Store (`pgqrs dashboard`, or mounted in your own ASGI server)."""
