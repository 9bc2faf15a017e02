-- Why a message failed, the last time it did: what a dead letter says (docs/guarantees.md,
-- "Retries and dead letters"). One row per message, replaced at each failure, gone with it.
CREATE TABLE IF NOT EXISTS {schema}.pgqrs_py_message_errors (
    message_id BIGINT PRIMARY KEY REFERENCES {schema}.pgqrs_messages (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    error_type TEXT NOT NULL,
    error_message TEXT NOT NULL,
    traceback TEXT,
    failed_at TIMESTAMPTZ NOT NULL
);
