"""The read-only pages: queues, workers, dead letters, runs, one run, schedules, limits, and
`/metrics`. Each reads the public admin API only (api.md §4, §22, §23, §25)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..admin import Admin
from ..client import Store
from ..observability import prometheus
from ..types import WorkerStatus, WorkflowStatus
from .charts import throughput_chart
from .render import age_seconds, page, path_for


async def _store(request: Request) -> Store:
    store: Store = await request.app.state.dashboard.store()
    return store


async def _queue_names(store: Store) -> dict[int, str]:
    return {q.id: q.queue_name for q in await (await store.get_queues()).list()}


async def home(request: Request) -> Response:
    return RedirectResponse(path_for(request, "queues"), 303)


async def queues(request: Request) -> Response:
    store = await _store(request)
    metrics = await Admin(store).all_queues_metrics()
    throughput = request.app.state.dashboard.throughput
    throughput.record(metrics)
    rows = [(m, throughput_chart(throughput.rates(m.name))) for m in metrics]
    return page(request, "queues", {"rows": rows, "window": throughput.window()})


async def workers(request: Request) -> Response:
    store = await _store(request)
    found = await Admin(store).list_workers()
    # A worker silent for three of its heartbeats is presumed dead (semantics.md §9.6).
    stale_after = 3.0 * store.config.heartbeat_interval_seconds
    now = request.app.state.dashboard.now()
    live = (WorkerStatus.Ready, WorkerStatus.Polling)
    stale = {
        w.id
        for w in found
        if w.status in live and (age_seconds(w.heartbeat_at, now) or 0.0) > stale_after
    }
    counts = {s.db: sum(1 for w in found if w.status == s) for s in WorkerStatus}
    return page(
        request,
        "workers",
        {
            "workers": found,
            "queue_names": await _queue_names(store),
            "stale": stale,
            "counts": counts,
        },
    )


async def dead_letters(request: Request) -> Response:
    store = await _store(request)
    found = await Admin(store).dead_letters()
    names = await _queue_names(store)
    # Queues with dead letters not archived yet: `Admin.dlq(queue)` archives those.
    waiting = sorted({names[d.message.queue_id] for d in found if d.message.archived_at is None})
    return page(
        request,
        "dead_letters",
        {
            "letters": found,
            "queue_names": names,
            "archivable": waiting,
            "replayed": _int(request.query_params.get("replayed")),
            "archived": _int(request.query_params.get("archived")),
        },
    )


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _time(text: str) -> str | None:
    """A `datetime-local` field (no offset) read as UTC; empty means no bound."""
    text = text.strip()
    if not text:
        return None
    if text.endswith("Z") or "+" in text[10:] or "-" in text[10:]:
        return text
    return text + "+00:00"


async def runs(request: Request) -> Response:
    store = await _store(request)
    query = request.query_params
    workflow = query.get("workflow", "").strip() or None
    statuses = [s for s in query.getlist("status") if s]
    since, until = _time(query.get("since", "")), _time(query.get("until", ""))
    limit = _int(query.get("limit")) or 100
    workflows = await (await store.get_workflows()).list()
    found = await Admin(store).list_runs(
        workflow, status=statuses or None, since=since, until=until, limit=limit
    )
    context: dict[str, Any] = {
        "runs": found,
        "workflow_names": {w.id: w.name for w in workflows},
        "statuses": [s.db for s in WorkflowStatus],
        "filters": {
            "workflow": workflow or "",
            "status": statuses,
            "since": query.get("since", ""),
            "until": query.get("until", ""),
            "limit": limit,
        },
    }
    return page(request, "runs", context)


async def run(request: Request) -> Response:
    store = await _store(request)
    timeline = await Admin(store).run_timeline(request.path_params["run_id"])
    longest = max((s.duration_seconds or 0.0 for s in timeline.steps), default=0.0)
    return page(request, "run", {"timeline": timeline, "longest": longest})


async def schedules(request: Request) -> Response:
    store = await _store(request)
    return page(request, "schedules", {"schedules": await Admin(store).list_schedules()})


async def limits(request: Request) -> Response:
    store = await _store(request)
    admin = Admin(store)
    found = []
    for queue in await (await store.get_queues()).list():
        found.extend(await admin.queue_limits(queue.queue_name))
    return page(request, "limits", {"limits": found})


async def metrics(request: Request) -> Response:
    """Prometheus text (docs/guides/observability.md): the same gauges a worker serves."""
    body = await prometheus.scrape(await _store(request))
    return Response(body, media_type=prometheus.CONTENT_TYPE)


ROUTES = [
    Route("/", home, name="home"),
    Route("/queues", queues, name="queues"),
    Route("/workers", workers, name="workers"),
    Route("/dead-letters", dead_letters, name="dead_letters"),
    Route("/runs", runs, name="runs"),
    Route("/runs/{run_id:int}", run, name="run"),
    Route("/schedules", schedules, name="schedules"),
    Route("/limits", limits, name="limits"),
    Route("/metrics", metrics, name="metrics"),
]
