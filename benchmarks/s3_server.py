"""moto's S3 server on 127.0.0.1 for the S3 benchmarks: prints its endpoint, serves until
stdin closes (bench_support.s3_endpoint starts it, in a process of its own).

It is the tests' server (tests/support/s3server.py): one request at a time, which gives S3's
atomic conditional writes. Needs moto[server] and boto3 (compare.py installs them in
venv-this).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.s3server import S3Server


def main() -> None:
    server = S3Server()
    server.start()
    try:
        print(server.endpoint, flush=True)
        sys.stdout = sys.stderr  # nobody reads the pipe further: a full one would block us
        sys.stdin.read()  # until the benchmark process closes the pipe or exits
    finally:
        server.stop()


if __name__ == "__main__":
    main()
