"""`manage.py drill`, reduced: the fault drill's checks all hold through worker kills and a database restart,
and the load drill's agents and pushes see no error. Each runs on a private PostgreSQL cluster of its own
(or a scratch database beside DATABASE_URL's), so the suite's database is never touched."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the drills run on PostgreSQL only"),
]


def _drill(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "drill", *args],
        cwd=settings.BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_fault_drill_loses_and_doubles_nothing_through_worker_kills_and_a_database_restart():
    result = _drill(
        "faults", "--events", "5000", "--parcels", "1000", "--kills", "3", "--restarts", "1", "--rate", "400",
        timeout=300,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.endswith(("PASS", "FAIL"))]
    assert len(rows) >= 15 and all(row.endswith("PASS") for row in rows), result.stdout
    assert "5,000 events, 3 worker kills" in result.stdout
    assert "0 lost, 0 duplicated, 0 duplicate cases, 0 duplicate messages" in result.stdout


def test_the_load_drill_serves_agents_and_pushes_without_an_error():
    result = _drill("load", "--duration", "10", "--agents", "2", "--push-rate", "50", timeout=300)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "agent requests failed (4xx/5xx/connection)" in result.stdout
    for endpoint in ("GET /cases/", "POST claim", "POST note", "POST resolve", "POST webhook"):
        assert endpoint in result.stdout
    assert "worker lag" in result.stdout


def test_the_drills_refuse_sqlite_with_a_clear_message():
    result = subprocess.run(
        [sys.executable, "manage.py", "drill", "faults", "--events", "10", "--parcels", "2"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DATABASE_URL": "sqlite:///:memory:"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "PostgreSQL only" in result.stderr
