"""Schema migrations: loading the numbered DDL files and deciding what `install()` must do.

The decisions are pure (`plan`); each backend does the I/O around them (`install` in its
module) because locking differs: an advisory lock on Postgres, `BEGIN IMMEDIATE` on SQLite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .._version import __version__
from ..errors import InternalError, ValidationError
from .executor import Executor, first_column

LIBRARY_VERSION = __version__

# pgqrs's own migration numbers (in `_sqlx_migrations`) mapped to ours, per backend
# (schema.md §6.2).
SQLX_TO_OURS = {
    "postgres": {1: 1, 2: 2, 3: 3, 4: 4, 6: 5},
    "sqlite": {1: 2, 2: 3, 3: 4, 5: 5},
}

REQUIRED_TABLES = (
    "pgqrs_queues",
    "pgqrs_workers",
    "pgqrs_messages",
    "pgqrs_workflows",
    "pgqrs_workflow_runs",
    "pgqrs_workflow_steps",
)

_CREATES = re.compile(r"CREATE (TABLE|TYPE) (?:IF NOT EXISTS )?(?:\{schema\}\.)?(\w+)")
_FUNCTIONS = re.compile(r"CREATE (?:OR REPLACE )?FUNCTION (?:\{schema\}\.)?(\w+)")
_COLUMNS = re.compile(r"ALTER TABLE (?:\{schema\}\.)?(\w+) ADD COLUMN (?:IF NOT EXISTS )?(\w+)")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def objects(self) -> frozenset[str]:
        """What the migration creates, as `table:<name>`, `type:<name>`, `function:<name>`
        and `column:<table>.<column>`."""
        found = {f"{kind.lower()}:{name}" for kind, name in _CREATES.findall(self.sql)}
        found |= {f"function:{name}" for name in _FUNCTIONS.findall(self.sql)}
        found |= {f"column:{table}.{col}" for table, col in _COLUMNS.findall(self.sql)}
        return frozenset(found)

    def statements(self, schema: str = "") -> list[str]:
        """The DDL split into statements (SQLite runs them one by one inside a transaction)."""
        text = self.sql.replace("{schema}", schema)
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
        return [part.strip() for part in "\n".join(lines).split(";\n") if part.strip(" ;\n")]


# Turso's folder holds only the versions whose DDL differs from SQLite's; the rest are SQLite's.
_FALLBACK = {"turso": "sqlite"}


@cache
def migrations(kind: str) -> tuple[Migration, ...]:
    """The migrations of `kind` ("postgres", "sqlite" or "turso"), in order."""
    found = {m.version: m for m in migrations(_FALLBACK[kind])} if kind in _FALLBACK else {}
    folder = resources.files("pgqrs.store.migrations") / kind
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            version = int(match[1])
            found[version] = Migration(version, match[2], entry.read_text(encoding="utf-8"))
    return tuple(found[v] for v in sorted(found))


def latest_version(kind: str) -> int:
    return migrations(kind)[-1].version


def adopted_from_sqlx(kind: str, rows: list[tuple[int, bool]]) -> set[int]:
    """Our versions that pgqrs's `_sqlx_migrations` rows show as already in place."""
    for version, success in rows:
        if not success:
            raise InternalError(
                f"Database migration failed: pgqrs migration {version} is marked as failed"
            )
    ours = {SQLX_TO_OURS[kind][v] for v, _ in rows if v in SQLX_TO_OURS[kind]}
    if kind == "sqlite" and ours:
        ours.add(1)  # our version 1 has no DDL on SQLite; it goes with pgqrs's first one
    return ours


def plan(
    known: tuple[Migration, ...],
    applied: set[int],
    adopted: set[int] | None,
    present: set[str],
) -> list[tuple[Migration, str]]:
    """The migrations to record, in order, each with its method ("applied" or "adopted").

    `applied` are the versions in our bookkeeping table; `adopted` the versions pgqrs's
    bookkeeping vouches for (None when there is none); `present` the objects that exist.
    """
    newest = known[-1].version
    too_new = [v for v in applied if v > newest]
    if too_new:
        raise InternalError(
            f"Database migration failed: schema version {max(too_new)} is newer than this library"
        )
    if applied:
        return [(m, "applied") for m in known if m.version not in applied]
    steps: list[tuple[Migration, str]] = []
    for migration in known:
        objects = migration.objects
        if adopted is not None:
            # pgqrs's bookkeeping vouches for its versions. The others run again (their DDL is
            # idempotent), except one that adds columns (SQLite has no ADD COLUMN IF NOT
            # EXISTS): it is adopted when the columns are there (a file of this library whose
            # own bookkeeping was lost).
            adds_columns = any(name.startswith("column:") for name in objects)
            found = migration.version in adopted or (adds_columns and objects <= present)
            steps.append((migration, "adopted" if found else "applied"))
            continue
        missing = sorted(objects - present)
        if objects and not missing:
            steps.append((migration, "adopted"))
        elif objects and len(missing) < len(objects):
            names = ", ".join(name.split(":", 1)[1] for name in missing)
            raise InternalError(
                f"Database migration failed: migration {migration.version} ({migration.name}) "
                f"is only partly in place; missing: {names}"
            )
        else:
            steps.append((migration, "applied"))
    return steps


def check_verified(
    kind: str, tables: set[str], applied: set[int] | None, dangling: list[str]
) -> None:
    """Raise `ValidationError` describing the first problem `verify()` found."""
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise ValidationError(f"Schema validation failed: missing tables: {', '.join(missing)}")
    if applied is None:
        raise ValidationError(
            "Schema validation failed: missing table pgqrs_py_migrations (run install())"
        )
    known = {m.version for m in migrations(kind)}
    newer = sorted(v for v in applied if v not in known)
    if newer:
        raise ValidationError(
            f"Schema validation failed: schema version {newer[-1]} is newer than this library"
        )
    pending = sorted(known - applied)
    if pending:
        raise ValidationError(
            "Schema validation failed: pending migrations: "
            + ", ".join(str(v) for v in pending)
            + " (run install())"
        )
    if dangling:
        raise ValidationError(f"Schema validation failed: {'; '.join(dangling)}")


def bookkeeping(kind: str) -> Migration:
    """The DDL of our bookkeeping table (created at the start of every install)."""
    folder = "postgres" if kind == "postgres" else "sqlite"
    path = resources.files("pgqrs.store.migrations") / folder / "bookkeeping.sql"
    return Migration(0, "bookkeeping", path.read_text(encoding="utf-8"))


async def verify(db: Executor) -> None:
    """Check tables, pending migrations and dangling references; write nothing."""
    tables = set(first_column(await db.fetch(db.sql.TABLES_PRESENT, {"schema": db.schema})))
    applied = None
    if "pgqrs_py_migrations" in tables:
        applied = set(first_column(await db.fetch(db.sql.MIGRATIONS_APPLIED)))
    dangling: list[str] = []
    if all(table in tables for table in REQUIRED_TABLES):
        row = await db.fetchone(db.sql.VERIFY_DANGLING)
        assert row is not None
        what = ("a missing queue", "a missing producer worker", "a missing consumer worker")
        dangling = [f"{n} message(s) reference {w}" for n, w in zip(row, what, strict=True) if n]
    check_verified(db.migration_kind, tables, applied, dangling)
