from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection

from tracking.models import TrackingEvent


@pytest.fixture
def killed_after_the_events_insert():
    """A context manager: inside it, the statement that inserts tracking events runs, then the worker
    "dies" (RuntimeError) before anything after it, as if killed halfway through ingestion."""

    @contextmanager
    def armed(message: str = "worker killed after the events insert"):
        def wrapper(execute, sql, params, many, context):
            result = execute(sql, params, many, context)
            if f"INSERT INTO {TrackingEvent._meta.db_table}" in sql:
                raise RuntimeError(message)
            return result

        with connection.execute_wrapper(wrapper):
            yield

    return armed
