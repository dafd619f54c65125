"""portal.db.array_literal: a list sent as one PostgreSQL array parameter, exactly as given."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection

from portal.db import array_literal

postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="array literals are PostgreSQL's")

AWKWARD = [
    "JT6000000012345",
    'a"b',
    "back\\slash",
    "comma,brace}{",
    " spaced ",
    "",
    "中通快递",
    "NULL",
    "'quote'",
]


def test_ids_are_joined_as_they_are():
    assert array_literal([3, 1, 2]) == "{3,1,2}"
    assert array_literal([]) == "{}"
    assert array_literal(iter([7])) == "{7}"


def test_strings_are_quoted_and_escaped():
    assert array_literal(['a"b', "c\\d"]) == '{"a\\"b","c\\\\d"}'


def test_nulls_bools_times_and_decimals_are_written_as_postgresql_reads_them():
    from datetime import UTC, datetime
    from decimal import Decimal

    at = datetime(2026, 11, 11, 12, 5, tzinfo=UTC)
    assert array_literal([None, True, False]) == "{NULL,t,f}"
    assert array_literal([at, Decimal("59.90")]) == '{"2026-11-11T12:05:00+00:00",59.90}'
    assert array_literal(["NULL", None]) == '{"NULL",NULL}'  # the text NULL stays text


@pytest.mark.parametrize("bad", [1.5, b"bytes", object()])
def test_anything_else_is_refused(bad):
    with pytest.raises(TypeError):
        array_literal(["ok", bad])


@pytest.mark.postgres
@postgres
@pytest.mark.django_db
def test_the_server_reads_back_exactly_what_was_sent():
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[], %s::bigint[], %s::date[]", [
            array_literal(AWKWARD), array_literal([1, 2**40]), array_literal([date(2026, 12, 1)]),
        ])  # fmt: skip
        texts, ids, dates = cursor.fetchone()
    assert texts == AWKWARD
    assert ids == [1, 2**40]
    assert dates == [date(2026, 12, 1)]
