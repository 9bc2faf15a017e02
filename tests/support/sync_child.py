"""A program that uses the blocking API and never closes its store.

Usage: python -m tests.support.sync_child MODE QUEUE

`exit`: enqueue one message, then let the interpreter exit with the store still open.
`collected`: enqueue one message, drop the store (garbage-collected unclosed), wait until its
producer row reads stopped (the store closed itself in the background), then exit with a
second store still open. Either way the process must exit at once, status 0.
"""

from __future__ import annotations

import gc
import sys

import pgqrs
import pgqrs.sync
from tests.support.sync_api import child_config, wait_for, workers_of


def main(mode: str, queue: str) -> None:
    store = pgqrs.sync.connect_with(child_config())
    print(pgqrs.sync.produce(store, queue, {"from": mode}), flush=True)
    if mode == "exit":
        globals()["kept"] = store  # alive until the interpreter exits
        return
    del store
    gc.collect()
    watcher = pgqrs.sync.connect_with(child_config())
    globals()["kept"] = watcher

    def stopped() -> bool:
        return all(w.status == pgqrs.WorkerStatus.Stopped for w in workers_of(watcher, queue))

    wait_for(stopped)
    print("stopped", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
