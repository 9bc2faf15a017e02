-- pgqrs-py addition (issue 13). pgqrs 0.15.3 never calls it.
-- Raised by a limited claim that took first and, checking under its queue's lock, found it took
-- more than a limit allows: the claim's transaction is undone and the claim is made again in
-- turns (semantics.md §7.10). Its own SQLSTATE, so the library tells it from any other error.
CREATE OR REPLACE FUNCTION {schema}.pgqrs_limits_overshot() RETURNS INTEGER LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'pgqrs: a limited claim overshot a limit' USING ERRCODE = 'PGQL1'; END $$;
