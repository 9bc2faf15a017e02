CREATE TABLE IF NOT EXISTS {schema}.pgqrs_messages (
    id BIGSERIAL PRIMARY KEY,
    queue_id BIGINT NOT NULL,
    payload JSONB NOT NULL,
    vt TIMESTAMPTZ DEFAULT now(),
    enqueued_at TIMESTAMPTZ DEFAULT now(),
    read_ct INTEGER DEFAULT 0,
    dequeued_at TIMESTAMPTZ,
    producer_worker_id BIGINT,
    consumer_worker_id BIGINT,
    archived_at TIMESTAMPTZ,
    CONSTRAINT fk_messages_queue_id FOREIGN KEY (queue_id) REFERENCES {schema}.pgqrs_queues (id),
    CONSTRAINT fk_messages_producer_worker_id FOREIGN KEY (producer_worker_id) REFERENCES {schema}.pgqrs_workers (id),
    CONSTRAINT fk_messages_consumer_worker_id FOREIGN KEY (consumer_worker_id) REFERENCES {schema}.pgqrs_workers (id)
);
CREATE INDEX IF NOT EXISTS idx_pgqrs_messages_hot_path ON {schema}.pgqrs_messages (queue_id, vt, enqueued_at, id) WHERE archived_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_pgqrs_messages_consumer_worker_id_active ON {schema}.pgqrs_messages (consumer_worker_id) WHERE archived_at IS NULL AND consumer_worker_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_pgqrs_messages_archived_at ON {schema}.pgqrs_messages (queue_id, archived_at) WHERE archived_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_pgqrs_messages_producer_worker_id ON {schema}.pgqrs_messages (producer_worker_id);
