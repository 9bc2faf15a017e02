"""The benchmark scripts keep working: every scenario at tiny size, on every backend.

Runs benchmarks/scenarios.py (against this checkout) and benchmarks/raw_sql.py (SQLite and
PostgreSQL only) with `--quick` in subprocesses, as compare.py does, then renders their JSON
lines with compare.py's table code. Turso and S3 run the queue scenarios only; the S3 cases
start their own moto server. Measures nothing; `make bench` does.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(script: str, backend: str, tmp_path: Path) -> list[dict[str, Any]]:
    if script == "raw_sql.py" and backend not in ("sqlite", "postgres"):
        return []  # the raw-SQL baseline is SQLite/PostgreSQL only
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--backend", backend],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PGQRS_BENCH_TMP": str(tmp_path)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.fixture
def compare() -> Iterator[ModuleType]:
    """benchmarks/compare.py, imported as the script imports its neighbours (from its folder)."""
    saved = list(sys.path)
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("compare")
    finally:
        sys.path[:] = saved


@pytest.mark.slow
def test_every_scenario_runs_at_tiny_size(
    backend: str, tmp_path: Path, compare: ModuleType
) -> None:
    this = run_script("scenarios.py", backend, tmp_path)
    raw = run_script("raw_sql.py", backend, tmp_path)
    full = backend in ("sqlite", "postgres")

    assert {line["impl"] for line in this} == {"this"}
    assert {line["impl"] for line in raw} == ({"raw"} if full else set())
    assert {line["backend"] for line in this + raw} == {backend}
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for line in this:
        by_scenario.setdefault(line["scenario"], []).append(line)
    expected = compare.SCENARIOS if full else compare.bench_config.QUEUE_SCENARIOS
    assert set(by_scenario) == set(expected)
    assert {line["params"]["mode"] for line in by_scenario["drain"]} == {"explicit", "poll"}
    for line in this + raw:
        assert line["count"] > 0
        assert line["seconds"] > 0
    for line in by_scenario["drain"] + by_scenario["enqueue_batch"]:
        assert line["params"]["messages"] == line["count"]
    if full:
        assert len(by_scenario["backlog_scaling"]) == 2
        assert by_scenario["e2e_latency"][0]["latency_ms"]["p99"] > 0
        assert by_scenario["memory"][0]["rss_peak_mib"] > 0
        assert by_scenario["workflow_memory"][0]["rss_peak_mib"] > 0
        assert {line["scenario"] for line in raw} == set(compare.RAW_SCENARIOS)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith("bench_")]
    assert leftovers == []  # every file, cache directory and bucket was deleted after its case

    result = {
        "started": "now",
        "duration_s": 1.0,
        "reps": 1,
        "quick": True,
        "commit": "test",
        "machine": {
            "cpu": "cpu",
            "cores": 1,
            "memory": "1 GiB RAM",
            "os": "os",
            "python": "3",
            "postgres": "PostgreSQL",
            "sqlite": "SQLite",
            "psycopg": "3",
        },
        "load": {"min": 0, "median": 0, "max": 0},
        "versions": {},
        "runs": this + raw,
    }
    markdown = compare.render_markdown(result)
    consumers = 1 if backend == "s3" else 2  # an S3 object has one writing store
    assert f"| drain | {backend} | poll, C={consumers} B=5 | msgs/s |" in markdown
    assert (f"| backlog_scaling | {backend} |" in markdown) == full
    capacity_row = f"| capacity | {backend} | producer + C=2 consumers, B=10 | msgs/s |"
    assert (capacity_row in markdown) == full
    assert "### Targets" in markdown
    assert "Failed runs" not in markdown
    if not full:  # this library only: pgqrs 0.15.3 and raw SQL are n/a
        drain_rows = [r for r in markdown.splitlines() if r.startswith("| drain |")]
        assert drain_rows
        assert all("| n/a | n/a | - | - |" in r for r in drain_rows)


def test_plan_runs_turso_and_s3_without_reference_or_raw(compare: ModuleType) -> None:
    """The full plan: pgqrs 0.15.3 on PostgreSQL only, raw SQL on SQLite/PostgreSQL only, S3
    with one consumer, no B=1 and its 2,000-message drains said in the parameters."""
    cases = compare.plan(compare.SCENARIOS, ("postgres", "sqlite", "turso", "s3"), False)
    impls: dict[tuple[str, str], set[str]] = {}
    for case in cases:
        impls.setdefault((case.scenario, case.backend), set()).update(case.impls())

    assert impls["drain", "postgres"] == {"this", "pgqrs", "raw"}
    assert impls["drain", "sqlite"] == {"this", "raw"}
    assert impls["capacity", "postgres"] == {"this", "pgqrs"}  # issue 16: no raw baseline
    assert impls["capacity", "sqlite"] == {"this"}
    capacity = [c.args for c in cases if c.scenario == "capacity" and c.backend == "postgres"]
    assert sorted(capacity) == sorted(
        ("--consumers", c, "--batches", b) for c in ("2", "4") for b in ("10", "50")
    )
    # issue 13: one case (one process, one result line) per kind of limits and batch size
    limited = [c.args for c in cases if c.scenario == "drain_limited" and c.backend == "postgres"]
    assert sorted(limited) == sorted(
        ("--limits", k, "--batches", b) for k in ("one", "queue", "keys") for b in ("10", "100")
    )
    assert impls["drain_limited", "postgres"] == {"this"}
    for backend in ("turso", "s3"):
        assert {s for s, b in impls if b == backend} == {"enqueue_single", "enqueue_batch", "drain"}
        assert all(
            impls[s, backend] == {"this"} for s in ("enqueue_single", "enqueue_batch", "drain")
        )
    s3_drains = [c.args for c in cases if c.scenario == "drain" and c.backend == "s3"]
    assert sorted(s3_drains) == sorted(
        ("--modes", m, "--consumers", "1", "--batches", b)
        for m in ("explicit", "poll")
        for b in ("10", "100")
    )
    turso_drains = [c for c in cases if c.scenario == "drain" and c.backend == "turso"]
    assert len(turso_drains) == 12  # the whole grid, as on SQLite
    params = {"mode": "poll", "consumers": 1, "batch": 10, "messages": 2_000}
    assert compare.show_params("drain", params) == "poll, C=1 B=10, 2,000 msgs"
    assert compare.show_params("drain", {**params, "messages": 10_000}) == "poll, C=1 B=10"


@pytest.mark.slow
@pytest.mark.backends("postgres")  # benchmarks/processes.py measures PostgreSQL only
def test_processes_script_runs_at_tiny_size(backend: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "processes.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["params"]["processes"] for line in lines] == [1, 2]
    assert all(line["count"] == 200 and line["drain_msgs_per_s"] > 0 for line in lines)
    assert "| 2 | " in proc.stderr  # the table of speed-ups


@pytest.mark.backends("postgres")  # the script runs both backends; once is enough
def test_cpu_per_message_script_runs_at_tiny_size(backend: str, tmp_path: Path) -> None:
    tiny = ["--rounds", "1", "--messages", "60", "--enqueues", "20"]
    proc = subprocess.run(
        [sys.executable, str(BENCH / "cpu_per_message.py"), *tiny],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 8  # three drains and an enqueue on each of two backends
    assert all("msgs/s, user" in line and "sys" in line for line in lines)
