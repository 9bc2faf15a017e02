"""`pgqrs run --processes P`: drain throughput of one PostgreSQL backlog with P = 1, 2, 4.

Each case bulk-loads a fresh schema with a backlog (20,000 messages; bench_support.bulk_load,
not timed), starts `python -m pgqrs run processes:handle --processes P --concurrency C` as an
operator would (P = 1 is the plain single process, no supervisor), and times until no message
is left unarchived (read every 20 ms behind the library's back), then stops it with SIGTERM
(not timed). The handler is CPU-light: it hashes the payload. Every message must be archived
exactly once and the worker must exit 0, or the run fails. Rounds rotate the order of P.

    python benchmarks/processes.py                        # 20,000 messages, P=1,2,4, C=4, B=1
    python benchmarks/processes.py --processes 1,2 --concurrency 2 --batch 10 --rounds 3
    python benchmarks/processes.py --quick                # tiny: checks the script works

One JSON line per run on stdout (bench_support.result; `seconds` from the start of the command,
`drain_s` from the first archived message, so without the interpreters' start-up), then a
table of medians and speed-ups against P = 1 on stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_config
import bench_support as support
import psycopg

import pgqrs

HERE = Path(__file__).resolve().parent
QUEUE = "bench"


async def handle(message: pgqrs.QueueMessage) -> None:
    """The handler the workers run (`processes:handle`, imported from this folder)."""
    hashlib.sha256(json.dumps(message.payload).encode()).hexdigest()


async def handle_batch(messages: list[pgqrs.QueueMessage]) -> None:
    for message in messages:
        await handle(message)


def prepare(target: support.Target) -> int:
    """Install the schema, create the queue; its id."""
    env = {**os.environ, "PGQRS_DSN": target.dsn, "PGQRS_SCHEMA": target.schema}
    for args in (["install"], ["queue", "create", QUEUE]):
        subprocess.run(
            [sys.executable, "-m", "pgqrs", *args], env=env, check=True, capture_output=True
        )
    with psycopg.connect(target.dsn) as conn:
        row = conn.execute(
            f'SELECT id FROM "{target.schema}".pgqrs_queues WHERE queue_name = %s', (QUEUE,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def one_run(dsn: str, processes: int, s: dict[str, Any]) -> dict[str, Any]:
    count = s["messages"]
    with support.fresh_target("postgres", dsn) as target:
        queue_id = prepare(target)
        support.bulk_load(target, queue_id, visible=count, archived=0)
        handler = "processes:handle" if s["batch"] == 1 else "processes:handle_batch"
        command = [sys.executable, "-m", "pgqrs", "run", handler, "-q", QUEUE]
        command += ["--processes", str(processes), "--concurrency", str(s["concurrency"])]
        command += ["--no-scheduler", "--log-level", "WARNING", "--poll-interval", "50"]
        if s["batch"] > 1:
            command += ["--batch", str(s["batch"])]
        # stderr to a file: a pipe nobody reads could fill and block the workers.
        with tempfile.TemporaryFile("w+") as log:
            seconds, drain_s, out, cpu_s = timed_drain(target, queue_id, command, count, log)
    handled = sum(
        int(line.split()[3].rstrip(","))
        for line in out.splitlines()
        if line.startswith("pgqrs run: handled")
    )
    if handled != count:  # each message handled exactly once, by one of the processes
        raise RuntimeError(f"{handled} messages handled, {count} expected")
    params = {
        "processes": processes,
        "consumers": s["concurrency"],
        "batch": s["batch"],
        "messages": count,
    }
    return support.result(
        "processes",
        "this",
        "postgres",
        params,
        count,
        seconds,
        drain_s=round(drain_s, 4),
        drain_msgs_per_s=round(count / drain_s, 1),
        client_cpu_s=round(cpu_s, 2),
        client_cores=round(cpu_s / seconds, 2),  # cores the workers kept busy, on average
    )


def timed_drain(
    target: support.Target, queue_id: int, command: list[str], count: int, log: Any
) -> tuple[float, float, str, float]:
    """Seconds from the start of `command` until the backlog is archived, the same from the
    first archived message, what the command printed once stopped with SIGTERM, and the CPU
    seconds its processes used."""
    env = {**os.environ, "PGQRS_DSN": target.dsn, "PGQRS_SCHEMA": target.schema}
    cpu_before = _children_cpu()
    started = time.perf_counter()
    worker = subprocess.Popen(
        command, cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=log, text=True
    )
    first = None
    try:
        with psycopg.connect(target.dsn, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    f'SELECT count(*) FROM "{target.schema}".pgqrs_messages '
                    "WHERE queue_id = %s AND archived_at IS NULL",
                    (queue_id,),
                ).fetchone()
                assert row is not None
                now = time.perf_counter()
                if first is None and row[0] < count:
                    first = now
                if row[0] == 0:
                    break
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker exited early: {tail(log)}")
                time.sleep(0.02)  # sampling the backlog, not synchronising
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)
        if worker.returncode != 0:
            raise RuntimeError(f"the worker exited {worker.returncode}: {tail(log)}")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert first is not None
    return now - started, now - first, out, _children_cpu() - cpu_before


def _children_cpu() -> float:
    """CPU seconds of the processes this one has waited for, their own children included
    (the supervisor waits for its children): the workers' CPU, start-up and stop included."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def tail(log: Any) -> str:
    log.seek(0)
    return str(log.read()[-2000:])


def table(lines: list[dict[str, Any]], counts: list[int]) -> str:
    """Medians per P and their ratio to P = the first count, as markdown."""

    def median(p: int, key: str) -> float:
        return statistics.median(line[key] for line in lines if line["params"]["processes"] == p)

    base = {key: median(counts[0], key) for key in ("msgs_per_s", "drain_msgs_per_s")}
    rows = [
        "| processes | msgs/s (from start) | speed-up | msgs/s (after start-up) | speed-up "
        "| worker CPU (cores) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for p in counts:
        total, drain = median(p, "msgs_per_s"), median(p, "drain_msgs_per_s")
        rows.append(
            f"| {p} | {total:,.0f} | {total / base['msgs_per_s']:.2f}x "
            f"| {drain:,.0f} | {drain / base['drain_msgs_per_s']:.2f}x "
            f"| {median(p, 'client_cores'):.2f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--processes", type=bench_config.int_list, default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=4, help="poll loops per process")
    parser.add_argument("--batch", type=int, default=1, help="messages per claim")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--dsn", default=bench_config.PG_DSN, help="PostgreSQL DSN")
    parser.add_argument("--backend", default="postgres", choices=["postgres"])
    args = parser.parse_args(argv)
    s = {"messages": args.messages, "concurrency": args.concurrency, "batch": args.batch}
    counts, rounds = args.processes, args.rounds
    if args.quick:
        s, counts, rounds = {"messages": 200, "concurrency": 2, "batch": 1}, [1, 2], 1
    lines = []
    for r in range(rounds):
        shift = r % len(counts)
        for p in counts[shift:] + counts[:shift]:
            line = one_run(args.dsn, p, s)
            support.emit(line)
            lines.append(line)
    print(table(lines, counts), file=sys.stderr)


if __name__ == "__main__":
    main()
