"""Database helpers the apps share, for the few statements hot enough to need more than the ORM."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.utils import CursorWrapper


class _PreparingCursor(ServerBindingCursor):
    """Server-side binding, and every statement prepared (psycopg keeps them per connection)."""

    def execute(self, query, params=None, *, prepare=True, binary=False):
        return super().execute(query, params, prepare=prepare, binary=binary)


@contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """A cursor whose statements are prepared on the server, on PostgreSQL; a plain cursor elsewhere.

    For a statement run many times per connection with different values (the webhook's insert): the server
    parses and plans it once per connection instead of once per call, and the values travel as bound
    parameters instead of being quoted into the SQL text (a webhook body is kilobytes of bytea). It is still
    Django's cursor wrapper, so the statement is counted and logged like any other. Use it with statements of
    a fixed text only: each distinct text becomes a prepared statement that lives as long as the connection.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = _PreparingCursor(connection.connection)
    with connection._prepare_cursor(raw) as cursor:  # Django's own wrapping of a fresh cursor
        yield cursor
