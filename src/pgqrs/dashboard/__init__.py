"""The web dashboard: a Starlette app over a Store (`pgqrs dashboard`, or mounted in your own
ASGI server). Needs the `dashboard` extra: `pip install 'pgqrs-py[dashboard]'`."""

from .app import create_app

__all__ = ["create_app"]
