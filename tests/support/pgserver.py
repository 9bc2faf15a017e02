"""A private PostgreSQL server for the fault tests: theirs alone to stop, crash and restart.

`PgServer` runs `initdb` into a temporary directory and starts the newest server found under
/usr/lib/postgresql/*/bin on a free TCP port of 127.0.0.1 (trust authentication, TCP on loopback
only, the unix socket in the data directory itself). Nothing here ever touches the shared
server on 127.0.0.1:5432.

PostgreSQL refuses to run as root: when the tests run as root, every server program runs as the
`postgres` user (`runuser -u postgres -- ...`) and the directory is handed over to it.

Tuned for speed, not for surviving the machine: `fsync=off` (and no full-page writes) only
matter when the operating system itself goes down. An immediate shutdown is a crash of the
server's processes; the WAL they wrote before acknowledging a commit is in the kernel's page
cache and stays there, so crash recovery replays every acknowledged commit. `synchronous_commit`
stays `on` on purpose: with it off, an acknowledged commit may still sit in shared memory when
the server crashes, and a test would count that as a lost message.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

StopMode = Literal["smart", "fast", "immediate"]

START_TIMEOUT_SECONDS = 30


def newest_bin_dir() -> Path:
    """The bin directory of the newest PostgreSQL installed under /usr/lib/postgresql."""
    found: list[tuple[tuple[int, ...], Path]] = []
    for path in Path("/usr/lib/postgresql").glob("*/bin"):
        version = tuple(int(part) for part in re.findall(r"\d+", path.parent.name))
        if version and (path / "pg_ctl").exists():
            found.append((version, path))
    if not found:
        raise RuntimeError("no PostgreSQL server found under /usr/lib/postgresql/*/bin")
    return max(found)[1]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgServer:
    """One throw-away cluster: `start()`, `stop(mode)`, `restart(mode)`, `cleanup()`."""

    def __init__(self) -> None:
        self.bin = newest_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="pgqrs-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.running = False
        self._as_postgres = os.geteuid() == 0
        self._initialised = False

    # -- addresses -----------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the server (initdb first, the first time); returns once it accepts connections."""
        if not self._initialised:
            self._initdb()
        self._pg_ctl("start", "-w", "-t", str(START_TIMEOUT_SECONDS), "-l", str(self.log))
        self.running = True

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server. `immediate` is a crash of its processes: recovery runs at start."""
        self._pg_ctl("stop", "-w", "-t", str(START_TIMEOUT_SECONDS), "-m", mode)
        self.running = False

    def restart(self, mode: Literal["fast", "immediate"] = "fast") -> None:
        self.stop(mode)
        self.start()

    def ensure_running(self) -> None:
        """Bring the server back if a test left it down (a failed test mid-outage)."""
        if not self.running or not self._responds():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
            self.start()

    def cleanup(self) -> None:
        """Stop the server if it runs (immediately: its data is thrown away) and delete it all."""
        if self._initialised:
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    # -- internals -------------------------------------------------------------------------------
    def _initdb(self) -> None:
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.data}'",
            "max_connections": "200",
            "shared_buffers": "32MB",
            # Speed over surviving an OS crash (module docstring): a process crash keeps the WAL.
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "on",
            "wal_level": "minimal",
            "max_wal_senders": "0",
            "checkpoint_timeout": "30min",
            "max_wal_size": "1GB",
            "log_min_messages": "warning",
            "log_connections": "off",
            "log_disconnections": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# pgqrs fault tests (tests/support/pgserver.py)\n")
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")
        self._initialised = True

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), *args)

    def _run(self, *command: str) -> None:
        argv = ["runuser", "-u", "postgres", "--", *command] if self._as_postgres else list(command)
        done = subprocess.run(argv, capture_output=True, text=True, cwd=self.root, check=False)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(
                done.returncode,
                argv,
                output=done.stdout,
                stderr=f"{done.stderr}\n--- server log ---\n{self.log_text()[-4000:]}",
            )

    def _responds(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0):
                return True
        except OSError:
            return False
