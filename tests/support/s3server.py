"""A real S3 API on loopback for the tests: moto's server, with requests handled one at a time.

moto checks `If-Match` / `If-None-Match` and then writes, in two steps; S3 does both atomically.
Handling one request at a time gives the tests S3's atomic conditional writes, so a race
between two writers has exactly one winner, as it would on S3.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import boto3
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


class S3Server(ThreadedMotoServer):
    """`start()` binds 127.0.0.1 on `port` (0: a free one); moto's data lives in the process,
    so a server started again on the same port serves the same buckets."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        # Seconds the server waits before answering a PUT it has already carried out: the
        # client's request lands, its reply comes too late (a timeout after the fact).
        self.late_put_replies = 0.0
        self._client: Any = None
        self._client_lock = threading.Lock()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def one_at_a_time(environ: Any, start_response: Any) -> Iterable[bytes]:
            with lock:
                body = list(app(environ, start_response))
                if environ.get("REQUEST_METHOD") == "PUT" and self.late_put_replies:
                    time.sleep(self.late_put_replies)  # the fault: a reply that comes late
                return body

        self._server = make_server(
            self._ip_address, self._port, one_at_a_time, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """The variables a store (or a child process) reads to reach this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, **CREDENTIALS}

    def client(self) -> Any:
        """A boto3 client of this server, made on first use and shared: making one loads
        botocore's S3 model (about 0.3 s, over a second on a loaded machine), and every S3
        test creates its bucket with it. boto3 clients are thread-safe."""
        with self._client_lock:
            if self._client is None:
                self._client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.endpoint,
                    region_name=CREDENTIALS["AWS_REGION"],
                    aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                )
            return self._client
