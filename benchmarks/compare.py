"""Side-by-side benchmark: this checkout vs pgqrs 0.15.3 (Rust core) vs hand-written SQL.

    python benchmarks/compare.py                 # full sizes, 3 repetitions (`make bench`)
    python benchmarks/compare.py --quick --reps 1 --scenario drain
    python benchmarks/compare.py --scenario drain --consumers 1 --batches 10,100 --reps 2
    python benchmarks/compare.py --render benchmarks/results/latest.json   # table + chart again

What it does:
1. Creates two virtualenvs under `--workdir` (default benchmarks/results/work): `venv-this`
   with this checkout installed editable plus the `bench`, `turso` and `s3` extras
   (matplotlib, pyturso, boto3) and moto's server (the S3 endpoint of the S3 cases), and
   `venv-pgqrs` with `pgqrs==0.15.3` and psycopg. The raw-SQL baseline runs in the latter.
2. Runs every case (scenario x backend x parameters) for each implementation in a fresh
   process, interleaved: for each case this, pgqrs, raw one after another, repeated `--reps`
   times, with the order rotated each repetition so no implementation always runs first (or
   right after a 2M-row load). pgqrs runs on PostgreSQL only (its wheel has no SQLite backend,
   and Turso and S3 are not part of this comparison); raw exists for the queue scenarios on
   PostgreSQL and SQLite only. Turso and S3 run the queue scenarios (enqueue_single,
   enqueue_batch, drain), S3 at smaller sizes (bench_config.BACKEND_FULL).
3. Prints and writes benchmarks/results/latest.md: the medians, the ratios this/pgqrs and
   this/raw, the targets (issues 6, 12 and 16) with met/missed, and the machine; every run's
   JSON line goes to benchmarks/results/latest.json. Draws benchmarks/results/throughput.png
   (drain throughput against batch size) with matplotlib from `venv-this`.

This module imports only the standard library, so any Python 3.11 can run it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_config  # noqa: E402 (standard library only)

ROOT = HERE.parent
RESULTS = HERE / "results"
REFERENCE_REQUIREMENTS = ("pgqrs==0.15.3", "psycopg[binary]>=3.1.18")
# venv-this: the extras of the Turso and S3 backends and the chart, and moto's S3 server (the
# dev extra's version; the dev extra itself would bring the test and lint tools).
THIS_EXTRAS = "bench,turso,s3"
S3_SERVER_REQUIREMENTS = ("moto[server]>=5.2",)
IMPLS = ("this", "pgqrs", "raw")
LABELS = {"this": "this", "pgqrs": "pgqrs 0.15.3", "raw": "raw SQL"}
SCENARIOS = bench_config.SCENARIOS
RAW_SCENARIOS = bench_config.RAW_SCENARIOS
RUN_TIMEOUT = 2400
FLAT_MIB_PER_100K = 5.0  # "flat over time": RSS grows less than this per 100,000 messages
MEMORY_LIMIT_MIB = 100.0


# -- virtualenvs ----------------------------------------------------------------------------


def _run(cmd: list[str], **kwargs: Any) -> None:
    print("  $", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def _venv(path: Path, requirements: list[str], stamp_text: str) -> Path:
    """A virtualenv at `path` with `requirements`; reinstalled only when `stamp_text` changes."""
    python = path / "bin" / "python"
    stamp = path / ".bench-installed"
    if python.exists() and stamp.exists() and stamp.read_text() == stamp_text:
        return python
    print(f"setting up {path} ...", file=sys.stderr, flush=True)
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(path)])
    _run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    _run([str(python), "-m", "pip", "install", "--quiet", *requirements])
    stamp.write_text(stamp_text)
    return python


def setup_venvs(workdir: Path) -> dict[str, Path]:
    """Python interpreters per implementation: this checkout, and pgqrs 0.15.3 (+ raw SQL)."""
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    requirements = ["-e", f"{ROOT}[{THIS_EXTRAS}]", *S3_SERVER_REQUIREMENTS]
    this = _venv(
        workdir / "venv-this",
        requirements,
        "\n".join([*requirements, hashlib.sha256(pyproject).hexdigest()]),
    )
    reference = _venv(
        workdir / "venv-pgqrs", list(REFERENCE_REQUIREMENTS), "\n".join(REFERENCE_REQUIREMENTS)
    )
    return {"this": this, "pgqrs": reference, "raw": reference}


# -- cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    scenario: str
    backend: str
    args: tuple[str, ...] = ()
    raw: bool = False  # whether the raw baseline runs for this case
    once: bool = False  # not repeated: the memory check measures no speed

    def impls(self) -> list[str]:
        chosen = ["this"]
        reference = self.scenario not in bench_config.THIS_ONLY_SCENARIOS
        if self.backend in bench_config.REFERENCE_BACKENDS and reference:
            chosen.append("pgqrs")
        if self.raw and self.backend in bench_config.RAW_BACKENDS:
            chosen.append("raw")
        return chosen


def plan(
    scenarios: Iterable[str],
    backends: Iterable[str],
    quick: bool,
    overrides: dict[str, Any] | None = None,
) -> list[Case]:
    """Every case, cheap ones first, with each backend's sizes (then `overrides`, the drain
    grid of the command line); the drain raw baseline runs with the explicit mode only (one
    claim + one archive per batch is the same loop for both library modes). Scenarios a
    backend does not run (bench_config.BACKEND_SCENARIOS) are left out."""
    cases: list[Case] = []
    for scenario in scenarios:
        for backend in backends:
            if not bench_config.runs_on(scenario, backend):
                continue
            sizes = bench_config.sizes(quick, backend, overrides)
            if scenario == "drain":
                for mode in sizes["drain_modes"]:
                    for c in sizes["drain_consumers"]:
                        for b in sizes["drain_batches"]:
                            args = ("--modes", mode, "--consumers", str(c), "--batches", str(b))
                            cases.append(Case(scenario, backend, args, raw=mode == "explicit"))
            elif scenario == "capacity":  # one case (process) per point of the grid
                for c in sizes["capacity_consumers"]:
                    for b in sizes["capacity_batches"]:
                        args = ("--consumers", str(c), "--batches", str(b))
                        cases.append(Case(scenario, backend, args))
            elif scenario == "drain_limited":  # one case (process) per kind and batch size
                for kind in sizes["drain_limited_kinds"]:
                    for b in sizes["drain_limited_batches"]:
                        args = ("--limits", kind, "--batches", str(b))
                        cases.append(Case(scenario, backend, args))
            elif scenario in ("backlog_scaling", "backlog_priority"):
                raw = scenario == "backlog_scaling"
                for n in sizes["backlog_sizes"]:
                    cases.append(Case(scenario, backend, ("--sizes", str(n)), raw=raw))
            else:
                raw = scenario in RAW_SCENARIOS
                once = scenario in ("memory", "workflow_memory")
                cases.append(Case(scenario, backend, (), raw=raw, once=once))
    return cases


def run_case(
    case: Case, impl: str, python: Path, quick: bool, dsn: str, tmp: Path
) -> dict[str, Any]:
    script = HERE / ("raw_sql.py" if impl == "raw" else "scenarios.py")
    cmd = [str(python), str(script), "--scenario", case.scenario, "--backend", case.backend]
    cmd += [*case.args, "--dsn", dsn] + (["--quick"] if quick else [])
    env = {**os.environ, "PGQRS_BENCH_TMP": str(tmp), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or len(lines) != 1:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-20:]
        errors = [t for t in tail if "Error" in t or "FATAL" in t]
        return {
            "scenario": case.scenario,
            "impl": impl,
            "backend": case.backend,
            "args": list(case.args),
            "error": (errors or tail or [f"exit status {proc.returncode}"])[-1].strip(),
            "stderr_tail": tail,
        }
    line = lines[0]
    line["wall_seconds"] = round(time.perf_counter() - started, 2)
    return line


def measure(args: argparse.Namespace, pythons: dict[str, Path]) -> dict[str, Any]:
    cases = plan(args.scenario, args.backend, args.quick, args.overrides)
    tmp = args.workdir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    loads: list[float] = []
    total = sum(len(c.impls()) * (1 if c.once else args.reps) for c in cases)
    started = time.time()
    done = 0
    for rep in range(args.reps):
        for case in cases:
            if case.once and rep:
                continue
            impls = case.impls()
            shift = rep % len(impls)
            for impl in impls[shift:] + impls[:shift]:
                loads.append(os.getloadavg()[0])
                line = run_case(case, impl, pythons[impl], args.quick, args.dsn, tmp)
                line["rep"] = rep
                runs.append(line)
                done += 1
                summary = line.get("error") or f"{line.get('msgs_per_s')} /s"
                print(
                    f"[{done}/{total}] rep {rep + 1} {case.scenario} {case.backend} "
                    f"{' '.join(case.args)} {impl}: {summary}",
                    file=sys.stderr,
                    flush=True,
                )
    machine = json.loads(
        subprocess.run(
            [str(pythons["this"]), str(HERE / "bench_support.py"), "machine"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PGQRS_TEST_DSN": args.dsn},
        ).stdout
    )
    versions = {}
    for line in runs:
        if "impl_version" in line:
            versions[line["impl"]] = line["impl_version"]
    return {
        "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "reps": args.reps,
        "quick": args.quick,
        "commit": git_commit(),
        "machine": machine,
        "load": {
            "min": round(min(loads), 2) if loads else None,
            "median": round(statistics.median(loads), 2) if loads else None,
            "max": round(max(loads), 2) if loads else None,
        },
        "versions": versions,
        "runs": runs,
    }


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (src modified)" if dirty else "")


# -- aggregation ----------------------------------------------------------------------------


def params_key(scenario: str, params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


@dataclass
class Cell:
    """The medians of one (scenario, backend, params, impl) over the repetitions."""

    runs: list[dict[str, Any]]

    def median(self, get: Callable[[dict[str, Any]], float | None]) -> float | None:
        values = [v for v in (get(r) for r in self.runs) if v is not None]
        return statistics.median(values) if values else None

    def spread(self, get: Callable[[dict[str, Any]], float | None]) -> float | None:
        """Half the range over the median, in percent."""
        values = [v for v in (get(r) for r in self.runs) if v is not None]
        if len(values) < 2 or not statistics.median(values):
            return None
        return (max(values) - min(values)) / 2 / statistics.median(values) * 100


def group(runs: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], Cell]:
    cells: dict[tuple[str, str, str, str], Cell] = {}
    for run in runs:
        if "error" in run:
            continue
        key = (run["scenario"], run["backend"], params_key(run["scenario"], run["params"]))
        cells.setdefault((*key, run["impl"]), Cell([])).runs.append(run)
    return cells


def throughput(run: dict[str, Any]) -> float | None:
    return run.get("msgs_per_s")


def lat(name: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda run: (run.get("latency_ms") or {}).get(name)


def field_of(name: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda run: run.get(name)


@dataclass(frozen=True)
class Metric:
    """How a scenario's cells are shown and compared."""

    unit: str
    primary: Callable[[dict[str, Any]], float | None]
    higher_is_better: bool
    extra: tuple[tuple[str, Callable[[dict[str, Any]], float | None]], ...] = ()


METRICS = {
    "enqueue_single": Metric("msgs/s", throughput, True),
    "enqueue_batch": Metric("msgs/s", throughput, True),
    "drain": Metric("msgs/s", throughput, True),
    "capacity": Metric("msgs/s", throughput, True),
    "workflow": Metric("runs/s", throughput, True),
    "e2e_latency": Metric(
        "p50 / p95 / p99 ms", lat("p50"), False, (("", lat("p95")), ("", lat("p99")))
    ),
    "backlog_scaling": Metric("claim p50 / p99 ms", lat("p50"), False, (("", lat("p99")),)),
    "backlog_priority": Metric("claim p50 / p99 ms", lat("p50"), False, (("", lat("p99")),)),
    "enqueue_dedup": Metric(
        "keyed msgs/s / plain msgs/s / keyed÷plain time (single, batch, duplicates)",
        throughput,
        True,
        (
            ("", field_of("plain_msgs_per_s")),
            ("", field_of("keyed_over_plain")),
            ("", field_of("batch_keyed_over_plain")),
            ("", field_of("duplicate_over_plain")),
        ),
    ),
    "drain_limited": Metric(
        "limited msgs/s / plain msgs/s / limited÷plain",
        throughput,
        True,
        (("", field_of("plain_msgs_per_s")), ("", field_of("limited_over_plain"))),
    ),
    "memory": Metric(
        "peak RSS MiB / slope MiB per 100k",
        field_of("rss_peak_mib"),
        False,
        (("", field_of("rss_slope_mib_per_100k")),),
    ),
    "workflow_memory": Metric(
        "peak RSS MiB / slope MiB per 100k runs",
        field_of("rss_peak_mib"),
        False,
        (("", field_of("rss_slope_mib_per_100k")),),
    ),
    "sync_enqueue": Metric(
        "sync msgs/s / async msgs/s / sync÷async time",
        throughput,
        True,
        (("", field_of("async_msgs_per_s")), ("", field_of("sync_over_async"))),
    ),
}
SYNC_COST_LIMIT = 1.3  # issue 12: a blocking enqueue costs at most 1.3x an awaited one
CAPACITY_GOAL = 1.2  # issue 16: capacity >= 1.2x pgqrs 0.15.3 at every point of the grid


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def show_params(scenario: str, params: dict[str, Any], quick: bool = False) -> str:
    shown = _show_params(scenario, params)
    # A backend's own size (S3's smaller queues) is said; the standard sizes are not.
    messages = params.get("messages")
    if messages is not None and messages != bench_config.sizes(quick).get(scenario):
        shown = f"{shown}, {messages:,} msgs" if shown else f"{messages:,} msgs"
    return shown


def _show_params(scenario: str, params: dict[str, Any]) -> str:
    if scenario == "drain":
        return f"{params['mode']}, C={params['consumers']} B={params['batch']}"
    if scenario == "capacity":
        return f"producer + C={params['consumers']} consumers, B={params['batch']}"
    if scenario == "backlog_scaling":
        return f"{params['visible']:,} visible + {params['archived']:,} archived"
    if scenario == "backlog_priority":
        return (
            f"{params['visible']:,} visible ({params['priorities']} priorities) "
            f"+ {params['archived']:,} archived"
        )
    if scenario == "enqueue_dedup":
        return f"new keys vs none, rounds of {params['round']}, batches of {params['batch']}"
    if scenario == "drain_limited":
        return f"{params['limits']} limits vs none, C={params['consumers']} B={params['batch']}"
    if scenario == "e2e_latency":
        return f"{params['rate']}/s for {params['seconds']:g} s, separate stores"
    if scenario == "workflow":
        return f"3 steps, {params['workers']} workers"
    if scenario == "enqueue_batch":
        return f"batches of {params['batch']}"
    if scenario == "memory":
        return f"poll loop, B={params['batch']}"
    if scenario == "workflow_memory":
        return "handle_workflow, 3 steps"
    if scenario == "sync_enqueue":
        return f"pgqrs.sync vs async, alternating rounds of {params['round']}"
    return ""


def baseline_key(scenario: str, params: dict[str, Any], impl: str) -> str:
    """Where the comparison value of `impl` lives: raw drains ran once, in explicit mode."""
    if impl == "raw" and scenario == "drain":
        return params_key(scenario, {**params, "mode": "explicit"})
    return params_key(scenario, params)


def ratio(metric: Metric, this: float | None, other: float | None) -> float | None:
    if this is None or other is None or this == 0 or other == 0:
        return None
    return this / other if metric.higher_is_better else other / this


def rows(cells: dict[tuple[str, str, str, str], Cell]) -> list[dict[str, Any]]:
    """One row per (scenario, backend, params) that this library ran, in scenario order."""
    out = []
    order = {name: i for i, name in enumerate(SCENARIOS)}
    keys = sorted(
        {(s, b, p) for (s, b, p, impl) in cells if impl == "this"},
        key=lambda k: (
            order.get(k[0], 99),
            _backend_order(k[1]),
            _param_order(k[0], json.loads(k[2])),
        ),
    )
    for scenario, backend, pkey in keys:
        params = json.loads(pkey)
        metric = METRICS[scenario]
        row: dict[str, Any] = {
            "scenario": scenario,
            "backend": backend,
            "params": params,
            "metric": metric,
            "values": {},
            "text": {},
        }
        for impl in IMPLS:
            cell = cells.get((scenario, backend, baseline_key(scenario, params, impl), impl))
            if cell is None:
                row["text"][impl] = "n/a"
                continue
            value = cell.median(metric.primary)
            row["values"][impl] = value
            parts = [fmt(value)] + [fmt(cell.median(get)) for _, get in metric.extra]
            spread = cell.spread(metric.primary)
            text = " / ".join(parts)
            if spread is not None:
                text += f" ±{spread:.0f}%"
            row["text"][impl] = text
        this = row["values"].get("this")
        row["vs_pgqrs"] = ratio(metric, this, row["values"].get("pgqrs"))
        row["vs_raw"] = ratio(metric, this, row["values"].get("raw"))
        out.append(row)
    return out


def _backend_order(backend: str) -> int:
    known = bench_config.BACKENDS
    return known.index(backend) if backend in known else len(known)


def _param_order(scenario: str, params: dict[str, Any]) -> tuple[Any, ...]:
    if scenario == "drain":
        return (params["mode"] != "explicit", params["consumers"], params["batch"])
    if scenario == "capacity":
        return (params["consumers"], params["batch"])
    if scenario in ("backlog_scaling", "backlog_priority"):
        return (params["visible"],)
    return ()


# -- targets (issues 6, 12 and 16) ----------------------------------------------------------


def _row(
    table: list[dict[str, Any]], scenario: str, backend: str, **params: Any
) -> dict[str, Any] | None:
    for row in table:
        if (
            row["scenario"] == scenario
            and row["backend"] == backend
            and all(row["params"].get(k) == v for k, v in params.items())
        ):
            return row
    return None


def _ratio_target(
    table: list[dict[str, Any]],
    label: str,
    goal: float,
    against: str,
    scenario: str,
    backend: str = "postgres",
    **params: Any,
) -> tuple[str, str, str, bool | None]:
    row = _row(table, scenario, backend, **params)
    value = None if row is None else row["vs_pgqrs" if against == "pgqrs" else "vs_raw"]
    measured = "not measured" if value is None else f"{value:.2f}x"
    met = None if value is None else value >= goal
    return label, f">= {goal:g}x {LABELS[against]}", measured, met


def targets(
    table: list[dict[str, Any]], cells: dict[tuple[str, str, str, str], Cell]
) -> list[tuple[str, str, str, bool | None]]:
    out = [
        _ratio_target(table, "enqueue_single (issue 16)", 0.95, "raw", "enqueue_single"),
        _ratio_target(table, "enqueue_batch", 1.0, "pgqrs", "enqueue_batch"),
    ]
    for consumers, batch, goal in ((4, 100, 1.3), (4, 10, 2.0), (1, 100, 1.3)):
        out.append(
            _ratio_target(
                table,
                f"drain explicit, C={consumers} B={batch} (issue 16)",
                goal,
                "pgqrs",
                "drain",
                consumers=consumers,
                batch=batch,
                mode="explicit",
            )
        )
    # capacity (issue 16): every point of the full grid, and any other point this run measured.
    grid = {
        (c, b)
        for c in bench_config.FULL["capacity_consumers"]
        for b in bench_config.FULL["capacity_batches"]
    }
    grid |= {
        (r["params"]["consumers"], r["params"]["batch"])
        for r in table
        if r["scenario"] == "capacity" and r["backend"] == "postgres"
    }
    for consumers, batch in sorted(grid):
        out.append(
            _ratio_target(
                table,
                f"capacity, producer + C={consumers} consumers, B={batch} (issue 16)",
                CAPACITY_GOAL,
                "pgqrs",
                "capacity",
                consumers=consumers,
                batch=batch,
            )
        )
    e2e = _row(table, "e2e_latency", "postgres")
    cell = None
    if e2e is not None:
        cell = cells.get(
            ("e2e_latency", "postgres", params_key("e2e_latency", e2e["params"]), "this")
        )
    if cell is None:
        out.append(
            ("e2e_latency (default settings)", "p50 <= 5 ms, p99 <= 20 ms", "not measured", None)
        )
    else:
        p50, p99 = cell.median(lat("p50")), cell.median(lat("p99"))
        assert p50 is not None
        assert p99 is not None
        out.append(
            (
                "e2e_latency (default settings)",
                "p50 <= 5 ms, p99 <= 20 ms",
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
                p50 <= 5 and p99 <= 20,
            )
        )
    out.append(_ratio_target(table, "workflow runs/s", 3.0, "pgqrs", "workflow"))
    # backlog_priority (issue 12): the same target with mixed priorities.
    for scenario in ("backlog_scaling", "backlog_priority"):
        backlog = sorted(
            (r for r in table if r["scenario"] == scenario and r["backend"] == "postgres"),
            key=lambda r: r["params"]["visible"],
        )
        small = backlog[0]["values"].get("this") if backlog else None
        large = backlog[-1]["values"].get("this") if backlog else None
        if len(backlog) < 2 or not small or not large:
            out.append((scenario, "p50 at largest <= 1.5x p50 at smallest", "not measured", None))
        else:
            lo, hi = backlog[0]["params"]["visible"], backlog[-1]["params"]["visible"]
            out.append(
                (
                    scenario,
                    f"claim p50 at {hi:,} <= 1.5x p50 at {lo:,}",
                    f"{large:.2f} ms / {small:.2f} ms = {large / small:.2f}x",
                    large / small <= 1.5,
                )
            )
    out.append(
        _ratio_target(
            table,
            "SQLite drain explicit, C=1 B=100 (issue 16)",
            0.85,
            "raw",
            "drain",
            "sqlite",
            consumers=1,
            batch=100,
            mode="explicit",
        )
    )
    for backend in ("postgres", "sqlite"):
        sync_row = _row(table, "sync_enqueue", backend)
        sync_cell = None
        if sync_row is not None:
            key = params_key("sync_enqueue", sync_row["params"])
            sync_cell = cells.get(("sync_enqueue", backend, key, "this"))
        cost = None if sync_cell is None else sync_cell.median(field_of("sync_over_async"))
        out.append(
            (
                f"sync enqueue_single, {backend} (issue 12)",
                f"<= {SYNC_COST_LIMIT:g}x the async time",
                "not measured" if cost is None else f"{cost:.2f}x",
                None if cost is None else cost <= SYNC_COST_LIMIT,
            )
        )
    memory = _row(table, "memory", "postgres")
    mem_cell = None
    if memory is not None:
        mem_cell = cells.get(("memory", "postgres", params_key("memory", memory["params"]), "this"))
    if mem_cell is None:
        out.append(("memory", "< 100 MiB RSS, flat", "not measured", None))
    else:
        peak = mem_cell.median(field_of("rss_peak_mib"))
        slope = mem_cell.median(field_of("rss_slope_mib_per_100k"))
        count = mem_cell.runs[0]["count"]
        assert peak is not None
        assert slope is not None
        out.append(
            (
                f"memory (drain {count:,})",
                f"peak < {MEMORY_LIMIT_MIB:g} MiB, slope <= {FLAT_MIB_PER_100K:g} MiB/100k msgs",
                f"peak {peak:.1f} MiB, slope {slope:+.2f} MiB/100k",
                peak < MEMORY_LIMIT_MIB and slope <= FLAT_MIB_PER_100K,
            )
        )
    return out


# -- output ---------------------------------------------------------------------------------


def render_markdown(result: dict[str, Any]) -> str:
    cells = group(result["runs"])
    table = rows(cells)
    m = result["machine"]
    versions = result.get("versions", {})
    errors = [r for r in result["runs"] if "error" in r]
    lines = [
        f"## Benchmark: this library vs pgqrs 0.15.3 vs raw SQL ({result['started']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}; {m['postgres']} "
        f"(local, TCP); {m['sqlite']}; Python {m['python']}, psycopg {m['psycopg']}. "
        f"Load average (1 min) before each run: min {result['load']['min']}, median "
        f"{result['load']['median']}, max {result['load']['max']} (shared machine).",
        "",
        f"Implementations: this = {versions.get('this', 'this checkout')} (commit "
        f"{result['commit']}); pgqrs = {versions.get('pgqrs', 'pgqrs 0.15.3')} from PyPI (Rust "
        f"core; PostgreSQL only); raw = {versions.get('raw', 'raw SQL')}: one claim and one "
        "archive statement per batch, the physical limit.",
        "",
        f"Each cell is the median of {result['reps']} interleaved runs (fresh process, fresh "
        "schema or file each), ± half the range as a percentage of the median. Ratios compare "
        "medians; > 1 means this library is better (for latency and memory rows the ratio is "
        "the other's value over this one's). Raw drains ran once per C and B, the baseline of "
        f"both drain modes. Whole run: {result['duration_s'] / 60:.0f} min"
        + (", quick sizes." if result.get("quick") else "."),
        "",
        *_backend_notes({row["backend"] for row in table}, m),
        "| scenario | backend | parameters | metric | this | pgqrs 0.15.3 | raw SQL | this/pgqrs "
        "| this/raw |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in table:
        metric = row["metric"]
        shown = show_params(row["scenario"], row["params"], bool(result.get("quick")))
        lines.append(
            f"| {row['scenario']} | {row['backend']} | {shown} | {metric.unit} "
            f"| {row['text']['this']} | {row['text']['pgqrs']} | {row['text']['raw']} "
            f"| {_x(row['vs_pgqrs'])} | {_x(row['vs_raw'])} |"
        )
    lines += [
        "",
        "### Targets (issue 6 unless noted; PostgreSQL unless noted; medians of this run)",
        "",
        "| scenario | target | measured | status |",
        "|---|---|---|---|",
    ]
    for label, goal, measured, met in targets(table, cells):
        status = "not measured" if met is None else ("met" if met else "**missed**")
        lines.append(f"| {label} | {goal} | {measured} | {status} |")
    if errors:
        lines += ["", f"### Failed runs ({len(errors)})", ""]
        for e in errors:
            lines.append(
                f"- {e['scenario']} {e['backend']} {' '.join(e.get('args', []))} "
                f"{e['impl']} (rep {e.get('rep', 0) + 1}): {e['error']}"
            )
    return "\n".join(lines) + "\n"


def _backend_notes(backends: set[str], m: dict[str, Any]) -> list[str]:
    """What the Turso and S3 rows are, when the run has them."""
    notes = []
    if "turso" in backends:
        notes.append(
            f"Turso: a local file through pyturso {m.get('pyturso', '?')}, this library only "
            "(pgqrs 0.15.3 and the raw baseline are not measured there), standard sizes."
        )
    if "s3" in backends:
        notes.append(
            f"S3: Durable mode (every write uploads the whole database file before the call "
            f"returns) against moto {m.get('moto', '?')}'s S3 server on loopback, in a process "
            "of its own, serving one request at a time; this library only. Every enqueue, "
            "claim and archive is an upload, and uploads grow with the file, so S3 runs "
            "smaller queues (message counts in the parameters) and one consumer (one writing "
            "store per object); real S3 adds network latency to every call."
        )
    return [" ".join(notes), ""] if notes else []


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def draw_chart(result: dict[str, Any], path: Path) -> None:
    """Drain throughput against batch size: one panel per backend and consumer count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    cells = group(result["runs"])
    backends = [
        b for b in bench_config.BACKENDS if any(k[1] == b and k[0] == "drain" for k in cells)
    ]
    consumers = sorted({json.loads(k[2])["consumers"] for k in cells if k[0] == "drain"})
    if not backends or not consumers:
        return
    fig, axes = plt.subplots(
        len(backends),
        len(consumers),
        figsize=(5.5 * len(consumers), 4.2 * len(backends)),
        squeeze=False,
    )
    colors = {"this": "tab:blue", "pgqrs": "tab:orange", "raw": "tab:gray"}
    for i, backend in enumerate(backends):
        for j, c in enumerate(consumers):
            ax = axes[i][j]
            plotted = False
            for impl in IMPLS:
                modes = ("explicit",) if impl == "raw" else ("explicit", "poll")
                for mode in modes:
                    points = sorted(
                        (json.loads(pkey)["batch"], cell.median(throughput))
                        for (s, b, pkey, im), cell in cells.items()
                        if (s, b, im) == ("drain", backend, impl)
                        and json.loads(pkey)["consumers"] == c
                        and json.loads(pkey)["mode"] == mode
                    )
                    if not points:
                        continue
                    plotted = True
                    label = LABELS[impl] if impl == "raw" else f"{LABELS[impl]} ({mode})"
                    ax.plot(
                        [p[0] for p in points],
                        [p[1] for p in points],
                        marker="o",
                        color=colors[impl],
                        linestyle="-" if mode == "explicit" else "--",
                        label=label,
                    )
            if not plotted:  # e.g. S3, which runs one consumer only
                ax.set_visible(False)
                continue
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("batch size B")
            ax.set_ylabel("messages/s (median)")
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            batches = sorted({json.loads(k[2])["batch"] for k in cells if k[0] == "drain"})
            ax.set_xticks(batches, [str(b) for b in batches])
            ax.set_title(f"drain, {backend}, C={c}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    m = result["machine"]
    postgres = m["postgres"].split(" (")[0]
    fig.suptitle(f"Drain throughput vs batch size: {m['cpu']}, {m['cores']} cores, {postgres}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def publish(result: dict[str, Any], out: Path, python: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(result, indent=1) + "\n")
    markdown = render_markdown(result)
    (out / "latest.md").write_text(markdown)
    print(markdown)
    chart = out / "throughput.png"
    if python is None:
        draw_chart(result, chart)
    else:  # matplotlib lives in venv-this, not necessarily in the interpreter running this
        subprocess.run(
            [
                str(python),
                str(Path(__file__).resolve()),
                "--chart",
                str(out / "latest.json"),
                str(chart),
            ],
            check=True,
        )
    print(f"wrote {out / 'latest.md'}, {out / 'latest.json'}, {chart}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a pipeline check)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument(
        "--scenario", type=lambda t: [p for p in t.split(",") if p], default=list(SCENARIOS)
    )
    parser.add_argument(
        "--backend",
        type=lambda t: [p for p in t.split(",") if p],
        default=list(bench_config.BACKENDS),
    )
    grid = "drain: %s for every backend (default: each backend's own, see bench_config)"
    parser.add_argument("--consumers", type=bench_config.int_list, help=grid % "consumer counts")
    parser.add_argument(
        "--batches", type=bench_config.int_list, help=grid % "batch sizes" + "; drain_limited too"
    )
    parser.add_argument("--modes", type=bench_config.str_list, help=grid % "explicit,poll")
    parser.add_argument(
        "--limits", type=bench_config.str_list, help="drain_limited: kinds (one,queue,keys)"
    )
    parser.add_argument(
        "--dsn",
        default=os.environ.get("PGQRS_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--workdir", type=Path, default=RESULTS / "work")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render", type=Path, help="re-render a saved latest.json, run nothing")
    parser.add_argument(
        "--chart", nargs=2, type=Path, metavar=("JSON", "PNG"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.chart:
        draw_chart(json.loads(args.chart[0].read_text()), args.chart[1])
        return
    if args.render:
        python = args.workdir / "venv-this" / "bin" / "python"
        publish(json.loads(args.render.read_text()), args.out, python if python.exists() else None)
        return
    unknown = set(args.scenario) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    unknown = set(args.backend) - set(bench_config.BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    args.overrides = {
        key: value
        for key, value in (
            ("drain_consumers", args.consumers),
            ("drain_batches", args.batches),
            ("drain_limited_batches", args.batches),
            ("drain_modes", args.modes),
            ("drain_limited_kinds", args.limits),
        )
        if value
    }
    if not plan(args.scenario, args.backend, args.quick, args.overrides):
        parser.error("no case: none of these scenarios runs on these backends")
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    pythons = setup_venvs(args.workdir)
    result = measure(args, pythons)
    publish(result, args.out, pythons["this"])


if __name__ == "__main__":
    main()
