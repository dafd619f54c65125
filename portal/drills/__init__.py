"""`manage.py drill`: the product under faults (`faults`) and under load (`load`), end to end over HTTP.

What the two drills share lives here: the database they run on (a private PostgreSQL cluster in a temporary
directory, so restarting it disturbs nobody; DATABASE_URL's server when no cluster can be made), the
django-q2 worker as a subprocess that can be killed and started again, and the printed check table.

The web server is the benchmark's (portal.bench.http.wsgi_server: gunicorn, 2 workers, production settings).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from portal.bench.db import scratch_database, scratch_name
from portal.bench.http import _free_port
from portal.bench.processes import production_env

DRILL_DATABASE = "afterdesk_drill"


# --- the database -------------------------------------------------------------------------------------
class PrivateCluster:
    """A PostgreSQL cluster of our own: initdb in a temporary directory, on a free local port, trust auth.

    Run as the `postgres` OS user when we are root (the server refuses to run as root). Restarting it is
    the point: the shared server other people use is never touched."""

    def __init__(self, bindir: str, root: str):
        self.bindir = bindir
        self.root = root
        self.data = os.path.join(root, "data")
        self.log = os.path.join(root, "server.log")
        self.port = _free_port()

    @classmethod
    def create(cls, log: Callable[[str], None]) -> PrivateCluster | None:
        """A running cluster, or None (and why, on `log`) when this machine cannot give us one."""
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
        initdb = candidates[0] if candidates else shutil.which("initdb")
        if not initdb:
            log("  no initdb binaries found (/usr/lib/postgresql/*/bin): cannot create a private cluster")
            return None
        root = tempfile.mkdtemp(prefix="afterdesk-drill-pg-")
        cluster = cls(os.path.dirname(initdb), root)
        try:
            if os.geteuid() == 0:
                shutil.chown(root, "postgres", "postgres")
            cluster._run(
                "initdb", "-D", cluster.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
            )
            cluster._pg_ctl("start")
            with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE {DRILL_DATABASE}")
        except (OSError, LookupError, subprocess.CalledProcessError, psycopg.Error) as exc:
            detail = getattr(exc, "stderr", "") or exc
            log(f"  could not create a private PostgreSQL cluster: {str(detail).strip()[:300]}")
            cluster.destroy()
            return None
        return cluster

    def url(self, name: str = DRILL_DATABASE) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def restart(self) -> float:
        """`pg_ctl -m fast restart`: every session is cut, the server is back when it returns. Seconds taken."""
        started = time.monotonic()
        self._pg_ctl("restart", "-m", "fast")
        return time.monotonic() - started

    def destroy(self) -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            with contextlib.suppress(subprocess.CalledProcessError, OSError):
                self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run("pg_ctl", action, "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o", options, *extra)

    def _run(self, program: str, *args: str) -> None:
        command = [os.path.join(self.bindir, program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120, cwd=self.root)  # noqa: S603


@dataclass
class DrillDatabase:
    url: str  # for the subprocesses (gunicorn, qcluster)
    cluster: PrivateCluster | None  # None: on DATABASE_URL's server, which the drill must not restart

    @property
    def private(self) -> bool:
        return self.cluster is not None


@contextmanager
def drill_database(*, log: Callable[[str], None], private: bool = True) -> Iterator[DrillDatabase]:
    """A fresh, migrated database with Django's default connection pointed at it, for the drill's length.

    On a private cluster when one can be made (and `private`), else a scratch database `<name>_drill` on
    DATABASE_URL's server (created and dropped as `make bench` does). DATABASE_URL must be PostgreSQL."""
    if connections["default"].vendor != "postgresql":
        raise CommandError(
            "The drills run on PostgreSQL only (row locks, SKIP LOCKED, restarts); DATABASE_URL is "
            f"{connections['default'].vendor}. Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/afterdesk."
        )
    cluster = PrivateCluster.create(log) if private else None
    if cluster is None:
        name = scratch_name(connections["default"].settings_dict["NAME"], "_drill")
        log(f"  on DATABASE_URL's server, scratch database {name}: no database restarts")
        with scratch_database(name) as url:
            yield DrillDatabase(url, None)
        return
    log(f"  private PostgreSQL cluster on 127.0.0.1:{cluster.port} ({cluster.root})")
    settings_dict = connections["default"].settings_dict
    saved = {key: settings_dict.get(key) for key in ("NAME", "HOST", "PORT", "USER", "PASSWORD")}
    connections.close_all()
    settings_dict.update(
        NAME=DRILL_DATABASE, HOST="127.0.0.1", PORT=str(cluster.port), USER="postgres", PASSWORD=""
    )
    try:
        call_command("migrate", verbosity=0, interactive=False)
        yield DrillDatabase(cluster.url(), cluster)
    finally:
        connections.close_all()
        settings_dict.update(saved)
        cluster.destroy()


def subprocess_env(database_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the drill's gunicorn and worker: the drill's database, production settings, one
    SECRET_KEY (django-q2 signs queued tasks with it), the ORM broker (no Redis)."""
    return production_env(database_url=database_url, extra=extra)


# --- the worker -------------------------------------------------------------------------------------
class Worker:
    """`manage.py qcluster` in a process group of its own, so a kill reaches the whole tree at once."""

    def __init__(self, database_url: str):
        self.env = subprocess_env(database_url)
        handle = tempfile.NamedTemporaryFile(prefix="afterdesk-drill-qcluster-", suffix=".log", delete=False)  # noqa: SIM115
        self.log_path = handle.name
        handle.close()
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.starts = 0
        # (exit code, seconds it had run) of each time it died without our kill
        self.unexpected_exits: list[tuple[int, float]] = []

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=settings.BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.started_at = time.monotonic()
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL to every process of the cluster (sentinel, pusher, workers, monitor), as an OOM kill or a
        lost machine would: nothing runs its cleanup."""
        if self.process is None:
            return
        self._note_exit()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def _note_exit(self) -> bool:
        code = self.process.poll() if self.process is not None else None
        if code is not None:
            self.unexpected_exits.append((code, time.monotonic() - self.started_at))
        return code is not None

    def check(self) -> None:
        """Start it again if it died by itself (and remember that it did: a finding)."""
        if self._note_exit():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process = None
            self.start()

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def tail(self, lines: int = 20) -> str:
        with open(self.log_path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])


@contextmanager
def running_worker(database_url: str) -> Iterator[Worker]:
    """The worker for the block's length; its log (a temporary file) is kept for reading only when the block fails."""
    worker = Worker(database_url)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
    os.unlink(worker.log_path)


# --- the report ---------------------------------------------------------------------------------------
@dataclass
class Check:
    name: str
    expected: str
    actual: str
    passed: bool


@dataclass
class Report:
    title: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, name: str, expected: object, actual: object, passed: bool | None = None) -> bool:
        ok = (expected == actual) if passed is None else passed
        self.checks.append(Check(name, _shown(expected), _shown(actual), ok))
        return ok

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def render(self) -> str:
        rows = [("check", "expected", "actual", "result")]
        rows += [(c.name, c.expected, c.actual, "PASS" if c.passed else "FAIL") for c in self.checks]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [self.title, "=" * len(self.title)]
        for index, row in enumerate(rows):
            cells = [
                cell.rjust(w) if i in (1, 2) else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
            if index == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def percentile(samples: list[float], p: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]
