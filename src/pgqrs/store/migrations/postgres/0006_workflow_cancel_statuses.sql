ALTER TYPE {schema}.pgqrs_workflow_status ADD VALUE IF NOT EXISTS 'CANCELLING';
ALTER TYPE {schema}.pgqrs_workflow_status ADD VALUE IF NOT EXISTS 'CANCELLED';
