"""`manage.py bench` runs end to end at a tiny scale and prints its table. Timings are never asserted here:
they mean something only at full scale, in `make bench`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="make bench runs on PostgreSQL only"),
]


def test_the_tracking_section_prints_its_table_at_a_tiny_scale():
    # Its own scratch database, so a `make bench` running beside the suite is left alone.
    scratch = f"{connection.settings_dict['NAME']}_bench_smoke"
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "bench",
            "--only",
            "tracking",
            "--scale",
            "0.002",
            "--database",
            scratch,
        ],
        cwd=settings.BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split() == ["metric", "value", "baseline", "ratio", "target", "result"]
    for reference in ("raw binary COPY, bare table", "idempotent-insert floor", "ORM create() loop"):
        assert any(line.startswith(reference) for line in lines), reference
    verdicts = {
        "pipeline": 3,  # against the floor and the two ORM loops
        "re-ingest (0 rows added)": 1,
        "webhook POST": 1,
    }
    for metric, count in verdicts.items():
        rows = [line for line in lines if line.startswith(metric) and line.endswith(("PASS", "MISS"))]
        assert len(rows) == count, (metric, result.stdout)
    assert "scratch database dropped" in result.stdout


def test_the_api_section_prints_its_tables_at_a_tiny_scale():
    scratch = f"{connection.settings_dict['NAME']}_bench_smoke"
    result = subprocess.run(
        [sys.executable, "manage.py", "bench", "--only", "api", "--scale", "0.002", "--database", scratch],
        cwd=settings.BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("per-order ORM create() loop") for line in lines)
    verdicts = {
        "POST /api/v1/orders/bulk": 1,
        "rules and stock evaluated after the last request": 1,
        "first page at": 2,
        "deep cursor page at": 2,
    }
    for metric, count in verdicts.items():
        rows = [line for line in lines if line.startswith(metric) and line.endswith(("PASS", "MISS"))]
        assert len(rows) == count, (metric, result.stdout)
    assert "0 orders and 0 parcels still due after it" in result.stdout
    assert "scratch database dropped" in result.stdout


def test_the_evidence_section_streams_a_packet_at_a_tiny_scale():
    scratch = f"{connection.settings_dict['NAME']}_bench_smoke"
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "bench",
            "--only",
            "evidence",
            "--scale",
            "0.005",
            "--database",
            scratch,
        ],
        cwd=settings.BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("read + CRC-32 of the same files") for line in lines)
    for metric in ("packet export, streamed", "peak memory added while streaming"):
        rows = [line for line in lines if line.startswith(metric) and line.endswith(("PASS", "MISS"))]
        assert len(rows) == 1, (metric, result.stdout)
    assert "Appeal packet: 2 cases, 3 files" in result.stdout
    assert "scratch database dropped" in result.stdout


def test_the_imports_section_imports_an_export_at_a_tiny_scale():
    scratch = f"{connection.settings_dict['NAME']}_bench_smoke"
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "bench",
            "--only",
            "imports",
            "--scale",
            "0.002",
            "--database",
            scratch,
        ],
        cwd=settings.BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for reference in ("preview (upload + check)", "import (confirm + run)", "re-import (all unchanged)"):
        assert any(line.startswith(reference) for line in lines), reference
    rows = [
        line
        for line in lines
        if line.startswith("import, preview + import") and line.endswith(("PASS", "MISS"))
    ]
    assert len(rows) == 1, result.stdout
    assert "Re-import: 100 unchanged, 0 created, 0 updated." in result.stdout
    assert "scratch database dropped" in result.stdout


def test_the_complaints_section_classifies_and_posts_complaints_at_a_tiny_scale():
    scratch = f"{connection.settings_dict['NAME']}_bench_smoke"
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "bench",
            "--only",
            "complaints",
            "--scale",
            "0.002",
            "--database",
            scratch,
        ],
        cwd=settings.BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for reference in ("classify(), one at a time", "classify_many(), batched", "median", "classify() alone"):
        assert any(line.startswith(reference) for line in lines), reference
    rows = [
        line
        for line in lines
        if line.startswith("POST /api/v1/complaints") and line.endswith(("PASS", "MISS"))
    ]
    assert len(rows) == 1, result.stdout
    assert "second joined" in result.stdout  # a second message from the buyer joined the first's case
    assert "scratch database dropped" in result.stdout


def test_the_reports_section_measures_the_pages_raw_figures_and_maintenance_at_a_tiny_scale():
    scratch = f"{connection.settings_dict['NAME']}_bench_smoke"
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "bench",
            "--only",
            "reports",
            "--scale",
            "0.002",
            "--database",
            scratch,
        ],
        cwd=settings.BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for reference in (
        "GET /reports/, 300 cases",
        "figures from the raw tables, 2,000 cases",
        "rollups_refresh(), nothing changed",
        "dispatch_days_mark inside the sweep",
    ):
        assert any(line.startswith(reference) for line in lines), reference
    verdicts = {
        "GET /reports/ at ": 2,  # against 10,000 cases and against the 300 ms budget
        "GET /reports/, one carrier at ": 2,
        "CSV export at ": 2,
        "store health, TikTok Shop at ": 2,
        "store health, Shopee at ": 2,
        "figures from rollups at ": 1,  # against the raw tables
        "sweep with dispatch_days_mark ": 1,
        "sweep + the refresh absorbing it": 1,
        "ingest + every refresh it caused": 1,
    }
    for metric, count in verdicts.items():
        rows = [line for line in lines if line.startswith(metric) and line.endswith(("PASS", "MISS"))]
        assert len(rows) == count, (metric, result.stdout)
    # The raw computation says what the rollups say, at both sizes.
    assert result.stdout.count("headline figures, rollups against raw tables: the same") >= 2, result.stdout
    assert "DIFFERENT" not in result.stdout
    assert "EXPLAIN ANALYZE at the large size" in result.stdout
    assert "scratch database dropped" in result.stdout
