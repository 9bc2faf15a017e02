-- pgqrs-py addition; a table pgqrs itself neither reads nor writes (a pgqrs 0.15.3 worker
-- ignores schedules). Cron schedules (semantics.md §17): each row says what to enqueue at each
-- tick of its cron expression; schedulers advance `next_fire_at` with a compare-and-set, and
-- only the one whose update changed the row enqueues the tick.
CREATE TABLE IF NOT EXISTS pgqrs_schedules (
    name TEXT PRIMARY KEY,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    queue_name TEXT,
    payload TEXT,
    workflow_name TEXT,
    input TEXT,
    catch_up INTEGER NOT NULL DEFAULT 0 CHECK (catch_up >= 0),
    paused INTEGER NOT NULL DEFAULT 0,
    next_fire_at TEXT NOT NULL,
    last_fire_at TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    CONSTRAINT pgqrs_schedules_one_target CHECK ((queue_name IS NULL) <> (workflow_name IS NULL))
);
-- What a scheduler asks each time it wakes: the schedules due first.
CREATE INDEX IF NOT EXISTS idx_pgqrs_schedules_next_fire ON pgqrs_schedules (next_fire_at) WHERE NOT paused;
