"""Creating the app (token rules, DSN or store, mounting) and `pgqrs dashboard`'s errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.routing import Mount

import pgqrs
from pgqrs.cli.main import cli
from pgqrs.dashboard import create_app
from pgqrs.dashboard.auth import COOKIE, TOKEN_ENV

from .support import TOKEN


def test_write_needs_a_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    dsn = f"sqlite://{tmp_path / 'pgqrs.db'}"
    with pytest.raises(pgqrs.ConfigError, match="need a token"):
        create_app(dsn, write=True)
    with pytest.raises(pgqrs.ConfigError, match="need a token"):
        create_app(dsn, write=True, token="   ")
    with pytest.raises(pgqrs.ConfigError, match="at least 16 characters"):
        create_app(dsn, write=True, token="short")
    with pytest.raises(pgqrs.ConfigError, match="only used with write actions"):
        create_app(dsn, token=TOKEN)
    with pytest.raises(TypeError, match="DSN, a Config or a Store"):
        create_app(42)  # type: ignore[arg-type]
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert isinstance(create_app(dsn, write=True), Starlette)
    assert isinstance(create_app(dsn), Starlette)  # the variable alone enables nothing


async def test_a_dsn_is_opened_and_closed_by_the_lifespan(tmp_path: Path) -> None:
    dsn = f"sqlite://{tmp_path / 'pgqrs.db'}"
    async with await pgqrs.connect(dsn) as store:
        await pgqrs.admin(store).install()
        await store.queue("jobs")
    app = create_app(dsn)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert 'data-queue="jobs"' in (await client.get("/queues")).text
        opened = await app.state.dashboard.store()
    with pytest.raises(pgqrs.PgqrsError, match="closed"):
        await opened.get_queue("jobs")


async def test_mounted_under_a_prefix(tmp_path: Path) -> None:
    """Mounted, its lifespan does not run: the store opens on the first request; links and the
    session cookie stay under the mount point."""
    dsn = f"sqlite://{tmp_path / 'pgqrs.db'}"
    async with await pgqrs.connect(dsn) as store:
        await pgqrs.admin(store).install()
        await store.queue("jobs")
    dashboard = create_app(dsn, write=True, token=TOKEN)
    outer = Starlette(routes=[Mount("/ops/pgqrs", app=dashboard)])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        page = (await client.get("/ops/pgqrs/queues")).text
        assert 'data-queue="jobs"' in page
        assert 'href="/ops/pgqrs/workers"' in page
        answer = await client.post("/ops/pgqrs/login", data={"token": TOKEN})
        assert answer.headers["location"] == "/ops/pgqrs/queues"
        assert "path=/ops/pgqrs;" in answer.headers["set-cookie"].lower()
        follow = await client.get(answer.headers["location"])
        assert "Log out" in follow.text
        assert COOKIE in client.cookies
    await dashboard.state.dashboard.close()


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env or {})
    return result.exit_code, result.stderr.strip()


def test_cli_refuses_bad_token_combinations(tmp_path: Path) -> None:
    db = tmp_path / "pgqrs.db"
    assert run_cli("--dsn", f"sqlite://{db}", "install")[0] == 0
    dsn = ["--dsn", f"sqlite://{db}"]
    code, err = run_cli(*dsn, "dashboard", "--write", env={TOKEN_ENV: ""})
    assert code == 1
    assert err.startswith("Error: the dashboard's write actions need a token")
    assert len(err.splitlines()) == 1
    code, err = run_cli(*dsn, "dashboard", "--token", TOKEN)
    assert code == 1
    assert "only used with write actions" in err
    code, err = run_cli(*dsn, "dashboard", "--write", "--token", "short")
    assert code == 1
    assert "at least 16 characters" in err
    code, err = run_cli("--dsn", f"sqlite://{tmp_path / 'missing.db'}", "dashboard")
    assert code == 1
    assert "not installed" in err


def test_cli_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn raises ImportError
    code, err = run_cli("dashboard")
    assert (code, err) == (1, "the dashboard needs: pip install 'pgqrs-py[dashboard]'")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_cli_serves_until_interrupted(tmp_path: Path) -> None:
    """`pgqrs dashboard` in a real process: pages over HTTP, writes behind the token, and a
    clean exit on SIGINT."""
    dsn = f"sqlite://{tmp_path / 'pgqrs.db'}"
    assert run_cli("--dsn", dsn, "install")[0] == 0
    assert run_cli("--dsn", dsn, "queue", "create", "jobs")[0] == 0
    port = free_port()
    env = {**os.environ, "PGQRS_DASHBOARD_TOKEN": TOKEN}
    command = [sys.executable, "-m", "pgqrs", "--dsn", dsn, "dashboard", "--port", str(port)]
    child = subprocess.Popen([*command, "--write"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                page = httpx.get(f"{url}/queues", timeout=2)
                break
            except httpx.TransportError:
                assert child.poll() is None, child.stderr.read() if child.stderr else ""
                assert time.monotonic() < deadline, "the dashboard did not answer"
                time.sleep(0.05)
        assert 'data-queue="jobs"' in page.text
        assert httpx.post(f"{url}/dead-letters/archive", data={"queue": "jobs"}).status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        archived = httpx.post(f"{url}/dead-letters/archive", data={"queue": "jobs"}, headers=bearer)
        assert archived.status_code == 303
    finally:
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=20)
    assert child.returncode == 0, err
    assert f"on http://127.0.0.1:{port}/ (write actions need the token)" in err
