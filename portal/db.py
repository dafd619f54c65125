"""Database helpers the apps share, for the few statements hot enough to need more than the ORM."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pgtrigger
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
    in the SQL (`%s::text[]`). Also takes datetimes (with their offset), Decimals, bools and None (NULL).
    """
    values = list(values)
    if all(type(value) is int for value in values):  # the common case: ids
        return "{" + ",".join(map(str, values)) + "}"
    parts = []
    for value in values:
        if isinstance(value, str):
            parts.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif value is None:
            parts.append("NULL")
        elif isinstance(value, bool):
            parts.append("t" if value else "f")
        elif isinstance(value, datetime):
            parts.append(f'"{value.isoformat()}"')
        elif isinstance(value, (date, Decimal, int)):
            parts.append(str(value))
        else:
            raise TypeError(
                f"array_literal takes ints, strings, dates, datetimes, Decimals, bools and None, not {value!r}"
            )
    return "{" + ",".join(parts) + "}"


def rows_insert(
    model, columns: Sequence[str], rows: Sequence[Sequence], *, returning: Sequence[str] = ()
) -> list[tuple]:
    """INSERT `rows` (tuples of `columns`' values, model field names) into the model's table in one statement
    per 500 rows, returning the `returning` columns of each row in order. On PostgreSQL the values travel as
    one array per column (array_literal) unnested by the server: Django's bulk_create prepares every value of
    every row through its field in Python, most of a 1,000-order bulk's time. No model is built, no default
    or auto_now applied: give every column that has no database default."""
    if not rows:
        return []
    meta = model._meta
    fields = [meta.get_field(name) for name in columns]
    names = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    back = ", ".join(connection.ops.quote_name(meta.get_field(name).column) for name in returning)
    table = connection.ops.quote_name(meta.db_table)
    suffix = f" RETURNING {back}" if back else ""
    out: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            if connection.vendor == "postgresql":
                arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in fields)
                params = [array_literal(row[index] for row in chunk) for index in range(len(fields))]
                statement = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}){suffix}"  # noqa: S608 - quoted identifiers
            else:
                row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
                params = [
                    field.get_db_prep_save(value, connection)
                    for row in chunk
                    for field, value in zip(fields, row, strict=True)
                ]
                statement = (
                    f"INSERT INTO {table} ({names}) VALUES {', '.join([row_sql] * len(chunk))}{suffix}"  # noqa: S608 - quoted identifiers
                )
            cursor.execute(statement, params)
            if back:
                out += cursor.fetchall()
    return out


def skip_locked(queryset):
    """The queryset's rows no other worker holds, locked until the transaction ends (FOR UPDATE SKIP LOCKED
    OF the queryset's own table, on PostgreSQL): how every claim of work rows here is made. SQLite, which
    serializes writers anyway, gets the queryset as it is."""
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset


# --- audit tables: triggers (django-pgtrigger, PostgreSQL only) -------------------------------------------
# Declared in a model's Meta.triggers and installed by its migrations; on SQLite pgtrigger skips them, so
# there the services are the only guard. A refused statement is an error raised by PostgreSQL itself
# (SQLSTATE P0001, django.db.ProgrammingError through the ORM) that names the operation, the table, the rule
# and the trigger: "UPDATE refused on cases_caseevent: the case timeline is append-only (trigger ...)".


class Refuse(pgtrigger.Protect):
    """pgtrigger's Protect (a BEFORE row trigger that raises, under its `condition` if it has one), with a
    message that says which rule refused, for whoever reads the error in a log or in psql."""

    def __init__(self, *, why: str, **kwargs: Any):
        if "'" in why or "%" in why:
            raise ValueError("The message goes into the SQL as a literal: no quotes or % in it.")
        self.why = why
        super().__init__(**kwargs)

    def get_func(self, model) -> str:
        return self.format_sql(
            f"RAISE EXCEPTION '% refused on %: {self.why} (trigger {self.name})', TG_OP, TG_TABLE_NAME;"
        )


def append_only(name: str, *, what: str) -> Refuse:
    """A row trigger that refuses every UPDATE and DELETE of the table's rows, however they are sent (the ORM,
    raw SQL, psql). INSERT still works, and so does TRUNCATE (a statement, not a row change), which is how
    the test runner's flush and the benches empty tables. An UPDATE or DELETE matching no row is no error."""
    return Refuse(name=name, operation=pgtrigger.Update | pgtrigger.Delete, why=f"{what} is append-only")


def any_changed(*fields: str) -> pgtrigger.Q:
    """A trigger condition: one of `fields` changed (IS DISTINCT FROM, so NULL to a value counts). A Q, so it
    combines with other conditions with & and | (pgtrigger's own AnyChange does not)."""
    return functools.reduce(
        operator.or_, [pgtrigger.Q(**{f"old__{name}__df": pgtrigger.F(f"new__{name}")}) for name in fields]
    )
