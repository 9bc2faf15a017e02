"""`render()`: how one statement written in SQLite's spelling becomes each backend's text."""

from __future__ import annotations

import re

import pytest

from pgqrs.store.sql import (
    DIALECTS,
    STATEMENTS,
    PostgresSql,
    Read,
    Sql,
    TursoSql,
    read,
    render,
    statement_names,
)
from pgqrs.store.sql.spelling import (
    Dialect,
    notify_channel,
    quote_ident,
    schema_prefix,
    spell_statement,
    speller,
)
from pgqrs.store.sql.turso import inline_add_seconds


def spell(dialect: Dialect, text: str, *, prefix: str = "", channel: str | None = None) -> str:
    return speller(dialect, schema_prefix=prefix, notify_channel=channel)(text)


# -- {s}: the schema prefix ------------------------------------------------------------------


def test_the_schema_prefix_names_every_table() -> None:
    text = "SELECT 1 FROM {s}pgqrs_queues q JOIN {s}pgqrs_workers w ON w.queue_id = q.id"
    assert spell("postgres", text, prefix='"app".') == (
        'SELECT 1 FROM "app".pgqrs_queues q JOIN "app".pgqrs_workers w ON w.queue_id = q.id'
    )
    assert spell("sqlite", text) == spell("turso", text) == text.replace("{s}", "")


def test_a_schema_is_quoted_as_an_identifier() -> None:
    assert quote_ident('we"ird') == '"we""ird"'
    assert schema_prefix("public") == '"public".'
    assert notify_channel("public") == "pgqrs.public"


# -- :name parameters and % ------------------------------------------------------------------


def test_named_parameters_become_pyformat_on_postgres_only() -> None:
    text = "UPDATE t SET a = :a_1, b = :_b WHERE id = :id"
    assert spell("postgres", text) == "UPDATE t SET a = %(a_1)s, b = %(_b)s WHERE id = %(id)s"
    assert spell("sqlite", text) == spell("turso", text) == text


def test_casts_and_times_are_not_parameters() -> None:
    # `::type` casts and the colons of a time literal are left alone.
    text = "SELECT :x::text, '12:30:00', a:b FROM t"
    assert spell("postgres", text) == "SELECT %(x)s::text, '12:30:00', a:b FROM t"


def test_a_literal_percent_is_doubled_for_psycopg() -> None:
    text = "SELECT 1 FROM t WHERE name LIKE 'pgqrs%' AND id = :id"
    assert spell("postgres", text) == "SELECT 1 FROM t WHERE name LIKE 'pgqrs%%' AND id = %(id)s"
    assert spell("sqlite", text) == text


# -- IN_LIST ---------------------------------------------------------------------------------


def test_in_list_is_any_on_postgres_and_json_each_on_sqlite() -> None:
    text = "DELETE FROM t WHERE id IN_LIST(:ids) AND kind IN_LIST(:kinds)"
    assert spell("postgres", text) == (
        "DELETE FROM t WHERE id = ANY(%(ids)s) AND kind = ANY(%(kinds)s)"
    )
    expected = (
        "DELETE FROM t WHERE id IN (SELECT value FROM json_each(:ids)) "
        "AND kind IN (SELECT value FROM json_each(:kinds))"
    )
    assert spell("sqlite", text) == spell("turso", text) == expected


# -- TS() ------------------------------------------------------------------------------------


def test_ts_is_the_column_itself_on_postgres() -> None:
    assert spell("postgres", "WHERE TS(vt) <= TS(m.archived_at)") == "WHERE vt <= m.archived_at"


def test_ts_compares_sqlite_text_as_time() -> None:
    out = spell("sqlite", "WHERE TS(m.vt) < 1")
    assert out.startswith("WHERE (CASE WHEN length(m.vt) IN (19, 26)")
    assert "THEN m.vt ELSE strftime('%Y-%m-%d %H:%M:%f', m.vt) || '000' END) < 1" in out
    assert "TS(" not in out


# -- :now and :wall_now ----------------------------------------------------------------------


def test_now_parameters_fall_back_to_the_server_clock_on_postgres() -> None:
    text = "SET a = :now, b = :wall_now, c = :nowhere, d = :now_ish"
    assert spell("postgres", text) == (
        "SET a = COALESCE(CAST(%(now)s AS timestamptz), statement_timestamp()), "
        "b = COALESCE(CAST(%(wall_now)s AS timestamptz), statement_timestamp()), "
        "c = %(nowhere)s, d = %(now_ish)s"
    )
    # The SQLite executors fill the local time in themselves: the text keeps the parameter.
    assert spell("sqlite", text) == text


# -- {notify} --------------------------------------------------------------------------------


def test_notify_adds_a_pg_notify_of_the_queue_on_the_channel() -> None:
    text = "WITH ins AS (INSERT INTO t VALUES (1) RETURNING id) SELECT ins.id FROM ins{notify}"
    out = spell("postgres", text, channel="pgqrs.it's")
    assert out.endswith(
        "SELECT ins.id FROM ins, "
        "(SELECT pg_notify('pgqrs.it''s', CAST(%(queue_id)s AS text))) AS notified"
    )
    assert spell("postgres", text).endswith("SELECT ins.id FROM ins")  # listen_notify off
    assert spell("sqlite", text).endswith("SELECT ins.id FROM ins")


# -- Turso: pgqrs_add_seconds inlined, and the planner hint -----------------------------------


def test_turso_inlines_pgqrs_add_seconds() -> None:
    text = "UPDATE t SET vt = {s}pgqrs_add_seconds(:now, :lease) WHERE id = :id"
    out = spell("turso", text)
    assert "pgqrs_add_seconds" not in out
    assert out.startswith("UPDATE t SET vt = (SELECT strftime('%Y-%m-%d %H:%M:%S', t / 1000000")
    assert "FROM (SELECT (:now) AS b, (:lease) AS s)))" in out
    assert out.endswith(" WHERE id = :id")
    # SQLite and Postgres call the function (a Python function, a SQL function).
    assert "pgqrs_add_seconds(:now, :lease)" in spell("sqlite", text)
    assert '"s".pgqrs_add_seconds(' in spell("postgres", text, prefix='"s".')


def test_turso_inlining_skips_nested_parentheses_and_quoted_strings() -> None:
    text = (
        "SELECT pgqrs_add_seconds(CASE WHEN f(a, b) > 0 THEN 'x,)' ELSE \"c(,\" END, "
        "-COALESCE(CAST(:w AS REAL), g(:i, 2)))"
    )
    out = inline_add_seconds(text)
    assert "(SELECT (CASE WHEN f(a, b) > 0 THEN 'x,)' ELSE \"c(,\" END) AS b, " in out
    assert "(-COALESCE(CAST(:w AS REAL), g(:i, 2))) AS s)" in out
    assert out.endswith("AS s)))")


def test_turso_inlines_every_call_including_calls_in_arguments() -> None:
    text = "SELECT pgqrs_add_seconds(pgqrs_add_seconds(:a, 1), 2), pgqrs_add_seconds(:b, 3)"
    out = inline_add_seconds(text)
    assert "pgqrs_add_seconds" not in out
    assert out.count("(SELECT strftime(") == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT pgqrs_add_seconds(:now)", "pgqrs_add_seconds takes 2 arguments, got 1"),
        ("SELECT pgqrs_add_seconds(:a, :b, :c)", "pgqrs_add_seconds takes 2 arguments, got 3"),
        ("SELECT pgqrs_add_seconds(:a, (:b)", "unbalanced pgqrs_add_seconds call"),
    ],
)
def test_a_malformed_pgqrs_add_seconds_call_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        spell("turso", text)


def test_turso_keeps_the_consumer_comparison_off_its_index_when_picking_by_ids() -> None:
    by_ids = "UPDATE m SET x = 1 WHERE id IN_LIST(:ids) AND consumer_worker_id = :worker_id"
    assert spell("turso", by_ids) == (
        "UPDATE m SET x = 1 WHERE id IN (SELECT value FROM json_each(:ids)) "
        "AND +consumer_worker_id = :worker_id"
    )
    assert "AND consumer_worker_id = :worker_id" in spell("sqlite", by_ids)
    # Without a list of ids, the consumer index is the right one: no hint.
    by_owner = "UPDATE m SET x = 1 WHERE queue_id = :q AND consumer_worker_id = :worker_id"
    assert spell("turso", by_owner) == by_owner


# -- reads, tuples, dialects -----------------------------------------------------------------


def test_a_tuple_is_spelled_statement_by_statement_and_reads_stay_reads() -> None:
    steps = (read("SELECT 1 FROM {s}t"), "UPDATE {s}t SET a = :now")
    spelled = spell_statement(steps, speller("postgres", schema_prefix='"x".'))
    assert spelled == (
        'SELECT 1 FROM "x".t',
        'UPDATE "x".t SET a = COALESCE(CAST(%(now)s AS timestamptz), statement_timestamp())',
    )
    assert [type(text) for text in spelled] == [Read, str]
    one = spell_statement(read("SELECT id FROM {s}t WHERE id IN_LIST(:ids)"), speller("sqlite"))
    assert type(one) is Read
    assert one == "SELECT id FROM t WHERE id IN (SELECT value FROM json_each(:ids))"
    assert type(spell_statement("DELETE FROM {s}t", speller("sqlite"))) is str
    # Text made from a read is a plain str: it runs on the writer.
    assert type(one + " LIMIT 1") is str


def test_render_spells_the_statements_of_a_tuple() -> None:
    sqlite = render("sqlite")
    postgres = render("postgres", schema_prefix='"x".')
    assert sqlite.LOOP_STEP[0] == sqlite.MSG_ARCHIVE
    assert sqlite.LOOP_STEP[1] == sqlite.MSG_CLAIM.replace("<> 'suspended'", "= 'polling'")
    assert len(sqlite.RUN_OPEN_FOR_MESSAGE) == 2
    assert len(postgres.LOOP_STEP) == len(postgres.RUN_OPEN_FOR_MESSAGE) == 1
    assert postgres.LOOP_STEP[0].startswith('WITH archived AS (UPDATE "x".pgqrs_messages SET')


def test_render_gives_each_dialect_its_statements() -> None:
    assert type(render("sqlite")) is Sql
    assert type(render("turso")) is TursoSql
    assert type(render("postgres")) is PostgresSql
    assert set(DIALECTS) == set(STATEMENTS)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_statement_is_fully_spelled(dialect: Dialect) -> None:
    out = render(dialect, schema_prefix='"public".', notify_channel="pgqrs.public")
    leftovers = re.compile(r"\{s\}|\{notify\}|\bIN_LIST\(|\bTS\(")
    for name in statement_names(STATEMENTS[dialect]):
        value = getattr(out, name)
        for text in value if isinstance(value, tuple) else (value,):
            assert not leftovers.search(text), (name, text)
            if dialect == "postgres":
                assert not re.search(r"(?<![:\w]):[A-Za-z_]", text), (name, text)
            if dialect == "turso":
                assert "pgqrs_add_seconds" not in text, (name, text)


def test_statement_order_is_by_entity_then_what_a_dialect_adds() -> None:
    names = statement_names(PostgresSql)
    assert names[0] == "QUEUE_INSERT"
    assert names.index("QUEUE_INSERT") < names.index("WORKER_INSERT") < names.index("MSG_INSERT")
    assert names[-1] == "SCHEMA_PRESENT"  # only Postgres has it
    assert statement_names(TursoSql)[-1] == "TURSO_SCHEMA_VERSION_ROWS"
    assert statement_names(Sql) == statement_names(PostgresSql)[:-1]


def test_a_long_schemas_channel_fits_a_channel_name() -> None:
    """A channel name is at most 63 bytes (pg_notify refuses more, which failed every enqueue
    into a schema with a name of 58 characters or more): longer ones keep the schema's first
    characters and a hash of the whole name, so two long names never share a channel."""
    assert notify_channel("jobs") == "pgqrs.jobs"
    assert notify_channel("s" * 57) == "pgqrs." + "s" * 57
    long_a, long_b = "a" * 62 + "1", "a" * 62 + "2"
    for name in (long_a, long_b):
        channel = notify_channel(name)
        assert len(channel.encode()) <= 63
        assert channel.startswith("pgqrs." + "a" * 40)
    assert notify_channel(long_a) != notify_channel(long_b)
