"""Database helpers the apps share, for the few statements hot enough to need more than the ORM."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date

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
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = _PreparingCursor(connection.connection)
    # Wrapped as Django wraps its own cursors (counted and logged when queries are), through its public
    # make_cursor / make_debug_cursor.
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    with wrap(raw) as cursor:
        yield cursor


def array_literal(values: Iterable[int | str | date]) -> str:
    """A PostgreSQL array literal ('{1,2,3}', '{"a","b\\"c"}') for a list passed as one parameter.

    For the hot statements that send a thousand ids or tracking numbers at once (`= ANY(%s::bigint[])`):
    Django's psycopg cursors quote a Python list element by element in Python, about 2 ms per thousand
    (3 ms for dates), where joining strings costs a tenth of that. Still a bound parameter, never SQL text:
    the server parses the literal, and every string is quoted and escaped, so any text is safe. Cast it
    in the SQL (`%s::text[]`); None elements are not supported.
    """
    values = list(values)
    if all(type(value) is int for value in values):  # the common case: ids
        return "{" + ",".join(map(str, values)) + "}"
    parts = []
    for value in values:
        if isinstance(value, str):
            parts.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif isinstance(value, date):
            parts.append(value.isoformat())
        elif isinstance(value, int) and not isinstance(value, bool):
            parts.append(str(value))
        else:
            raise TypeError(f"array_literal takes ints, strings and dates, not {value!r}")
    return "{" + ",".join(parts) + "}"


def skip_locked(queryset):
    """The queryset's rows no other worker holds, locked until the transaction ends (FOR UPDATE SKIP LOCKED
    OF the queryset's own table, on PostgreSQL): how every claim of work rows here is made. SQLite, which
    serializes writers anyway, gets the queryset as it is."""
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset
