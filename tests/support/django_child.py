"""The README's Django recipe, run as written in a process of its own (Django's settings are
process-wide): sign-ups insert a user and enqueue its welcome email in one `atomic()` block, on
Django's own connection, through the blocking API. A sign-up that fails after its enqueue rolls
both back. Prints the ids of the users that committed.
"""

from __future__ import annotations

import os

import django
from django.conf import settings

import pgqrs
import pgqrs.sync


def database() -> dict[str, object]:
    dsn = os.environ["PGQRS_CHILD_DSN"]
    if dsn.startswith("sqlite://"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": dsn.removeprefix("sqlite://")}
    options = {"options": f"-c search_path={os.environ['PGQRS_CHILD_SCHEMA']}"}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "test",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": 5432,
        "OPTIONS": options,
    }


def main() -> None:
    settings.configure(DATABASES={"default": database()}, INSTALLED_APPS=[], USE_TZ=True)
    django.setup()
    from django.db import connection, transaction

    config = pgqrs.Config(os.environ["PGQRS_CHILD_DSN"])
    if "PGQRS_CHILD_SCHEMA" in os.environ and not config.dsn.startswith("sqlite"):
        config.schema = os.environ["PGQRS_CHILD_SCHEMA"]
    store = pgqrs.sync.connect_with(config)
    emails = store.producer("emails")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE app_user (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")

    def sign_up(user_id: int, email: str) -> None:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO app_user VALUES (%s, %s)", [user_id, email])
            connection.ensure_connection()
            emails.enqueue({"welcome": user_id}, connection=connection.connection)
            if email.startswith("bad"):
                raise ValueError(f"refused {email}")

    committed = []
    for user_id, email in [(1, "ann@example.com"), (2, "bad@example.com"), (3, "bo@example.com")]:
        try:
            sign_up(user_id, email)
            committed.append(user_id)
        except ValueError:
            pass
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM app_user ORDER BY id")
        assert [row[0] for row in cursor.fetchall()] == committed
    store.close()
    print(" ".join(map(str, committed)))


if __name__ == "__main__":
    main()
