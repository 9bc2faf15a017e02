DO $$ BEGIN
    CREATE TYPE {schema}.worker_status AS ENUM ('ready', 'polling', 'suspended', 'interrupted', 'stopped');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
