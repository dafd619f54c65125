"""Cursor pagination: keyset on the list's order, so page N costs what page 1 costs and a row inserted while
a client pages never shifts or repeats what it reads. The cursor (`after`) is opaque to clients: the last
row's sort key, encoded."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from django.db.models import Model, Q, QuerySet
from django.utils.dateparse import parse_datetime

from portal.api.problems import validation_error

M = TypeVar("M", bound=Model)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class Page(Generic[M]):
    rows: list[M]
    next_cursor: str | None


def limit_param(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise validation_error([("limit", f"A whole number from 1 to {MAX_LIMIT}.")])
    return limit


def cursor_for(values: Sequence[Any]) -> str:
    """The cursor pointing after the row whose sort key is `values`."""
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return base64.urlsafe_b64encode(orjson.dumps(plain)).decode().rstrip("=")


def _decode(cursor: str, fields: Sequence[str], kinds: Sequence[type]) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(fields):
            raise ValueError
        out: list[Any] = []
        for value, kind in zip(values, kinds, strict=True):
            if kind is datetime:
                parsed = parse_datetime(value) if isinstance(value, str) else None
                if parsed is None:
                    raise ValueError
                out.append(parsed)
            elif kind is int and type(value) is int and abs(value) < 2**63:
                out.append(value)
            else:
                raise ValueError
        return out
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise validation_error(
            [("after", "Not a cursor of this list: pass the next_cursor of the previous page as it was.")]
        ) from None


def keyset_page(
    queryset: QuerySet[M],
    *,
    order: Sequence[str],
    kinds: Sequence[type],
    after: str | None,
    limit: int,
) -> Page[M]:
    """One page of `queryset` in `order` (fields, "-" for descending, the last one unique: ("updated_at",
    "id"), ("-id",)), starting after the row `after` points at. `kinds` are the fields' types (int or
    datetime)."""
    names = [field.lstrip("-") for field in order]
    if after:
        values = _decode(after, order, kinds)
        condition = Q()
        for index in range(len(order) - 1, -1, -1):
            beyond = "lt" if order[index].startswith("-") else "gt"
            step = Q(**{f"{names[index]}__{beyond}": values[index]})
            condition = (
                step if index == len(order) - 1 else step | (Q(**{names[index]: values[index]}) & condition)
            )
        queryset = queryset.filter(condition)
    rows = list(queryset.order_by(*order)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = cursor_for([getattr(rows[-1], name) for name in names]) if more else None
    return Page(rows=rows, next_cursor=next_cursor)
