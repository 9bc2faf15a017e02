CREATE TABLE IF NOT EXISTS {schema}.pgqrs_workers (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    queue_id BIGINT,
    started_at TIMESTAMPTZ DEFAULT now(),
    heartbeat_at TIMESTAMPTZ DEFAULT now(),
    shutdown_at TIMESTAMPTZ,
    status {schema}.worker_status NOT NULL DEFAULT 'ready',
    CONSTRAINT fk_workers_queue_id FOREIGN KEY (queue_id) REFERENCES {schema}.pgqrs_queues (id)
);
CREATE INDEX IF NOT EXISTS idx_pgqrs_workers_queue_status ON {schema}.pgqrs_workers (queue_id, status);
CREATE INDEX IF NOT EXISTS idx_pgqrs_workers_heartbeat ON {schema}.pgqrs_workers (heartbeat_at);
