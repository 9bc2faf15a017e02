"""The benchmark scripts keep working: every scenario at tiny size, on every backend.

Runs benchmarks/scenarios.py (against this checkout) and benchmarks/raw_sql.py with `--quick`
in subprocesses, as compare.py does, then renders their JSON lines with compare.py's table
code. Measures nothing; `make bench` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(script: str, backend: str, tmp_path: Path) -> list[dict[str, Any]]:
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
def compare() -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        import compare

        yield compare
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.slow
# The benchmark scripts know SQLite and PostgreSQL only (benchmarks/scenarios.py, raw_sql.py).
@pytest.mark.backends("sqlite", "postgres")
def test_every_scenario_runs_at_tiny_size(backend: str, tmp_path: Path, compare: Any) -> None:
    this = run_script("scenarios.py", backend, tmp_path)
    raw = run_script("raw_sql.py", backend, tmp_path)

    assert {line["impl"] for line in this} == {"this"}
    assert {line["impl"] for line in raw} == {"raw"}
    assert {line["backend"] for line in this + raw} == {backend}
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for line in this:
        by_scenario.setdefault(line["scenario"], []).append(line)
    assert set(by_scenario) == set(compare.SCENARIOS)
    assert {line["params"]["mode"] for line in by_scenario["drain"]} == {"explicit", "poll"}
    assert len(by_scenario["backlog_scaling"]) == 2
    for line in this + raw:
        assert line["count"] > 0
        assert line["seconds"] > 0
    assert by_scenario["e2e_latency"][0]["latency_ms"]["p99"] > 0
    assert by_scenario["memory"][0]["rss_peak_mib"] > 0
    assert {line["scenario"] for line in raw} == set(compare.RAW_SCENARIOS)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith("bench_")]
    assert leftovers == []  # every SQLite file was deleted after its case

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
    assert f"| drain | {backend} | poll, C=2 B=5 | msgs/s |" in markdown
    assert f"| backlog_scaling | {backend} |" in markdown
    assert "### Targets" in markdown
    assert "Failed runs" not in markdown
