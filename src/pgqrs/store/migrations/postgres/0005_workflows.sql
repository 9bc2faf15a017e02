DO $$ BEGIN
    CREATE TYPE {schema}.pgqrs_workflow_status AS ENUM ('QUEUED', 'RUNNING', 'SUCCESS', 'ERROR', 'PAUSED');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
CREATE TABLE IF NOT EXISTS {schema}.pgqrs_workflows (
    id BIGSERIAL PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    queue_id BIGINT NOT NULL REFERENCES {schema}.pgqrs_queues (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_pgqrs_workflows_name ON {schema}.pgqrs_workflows (name);
CREATE TABLE IF NOT EXISTS {schema}.pgqrs_workflow_runs (
    id BIGSERIAL PRIMARY KEY,
    workflow_id BIGINT NOT NULL REFERENCES {schema}.pgqrs_workflows (id) ON DELETE CASCADE,
    message_id BIGINT NOT NULL UNIQUE REFERENCES {schema}.pgqrs_messages (id),
    status {schema}.pgqrs_workflow_status NOT NULL,
    input JSONB,
    output JSONB,
    error JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    paused_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    worker_id BIGINT REFERENCES {schema}.pgqrs_workers (id)
);
CREATE INDEX IF NOT EXISTS idx_pgqrs_workflow_runs_message_id ON {schema}.pgqrs_workflow_runs (message_id);
CREATE INDEX IF NOT EXISTS idx_pgqrs_workflow_runs_status ON {schema}.pgqrs_workflow_runs (status);
CREATE TABLE IF NOT EXISTS {schema}.pgqrs_workflow_steps (
    id BIGSERIAL PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES {schema}.pgqrs_workflow_runs (id) ON DELETE CASCADE,
    step_name VARCHAR(255) NOT NULL,
    status {schema}.pgqrs_workflow_status NOT NULL,
    input JSONB,
    output JSONB,
    error JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    retry_count INTEGER NOT NULL DEFAULT 0,
    retry_at TIMESTAMPTZ,
    last_retry_at TIMESTAMPTZ,
    UNIQUE (run_id, step_name)
);
CREATE INDEX IF NOT EXISTS idx_pgqrs_workflow_steps_status ON {schema}.pgqrs_workflow_steps (status);
CREATE INDEX IF NOT EXISTS idx_pgqrs_workflow_steps_retry_at ON {schema}.pgqrs_workflow_steps (retry_at) WHERE retry_at IS NOT NULL;
