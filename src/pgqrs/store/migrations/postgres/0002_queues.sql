CREATE TABLE IF NOT EXISTS {schema}.pgqrs_queues (
    id BIGSERIAL PRIMARY KEY,
    queue_name VARCHAR NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
