"""The production processes as subprocesses: the environment an operator gives them, and `manage.py qcluster`.

For whatever runs the product end to end from Python (the scale-out test, benchmarks): the web server is
portal.bench.http.wsgi_server; the worker is `qcluster_process`, any number of them at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings


def production_env(
    *, database_url: str, redis_url: str = "", extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The settings a deployment runs with (DEBUG off), over plain HTTP on 127.0.0.1.

    SECRET_KEY is this process's own: django-q2 signs every queued task with it, and a worker refuses a task
    signed under another key, so the caller, the web server and every worker must share one.
    """
    env = {
        **os.environ,
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEBUG": "0",
        "SECURE_SSL": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }
    env.pop("AFTERDESK_TESTING", None)
    return env


@dataclass
class QCluster:
    process: subprocess.Popen
    log_path: str

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()


@contextmanager
def qcluster_process(env: Mapping[str, str]) -> Iterator[QCluster]:
    """`manage.py qcluster` in a process group of its own (the sentinel, pusher, workers and monitor are its
    children), stopped with SIGTERM as a process supervisor stops it, SIGKILL after 15 s. Its output goes to
    a log file, kept when the block raised (for reading), removed otherwise."""
    handle = tempfile.NamedTemporaryFile(prefix="afterdesk-qcluster-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=settings.BASE_DIR, env=dict(env), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    handle.close()
    failed = True
    try:
        yield QCluster(process, handle.name)
        failed = False
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if not failed:
            os.unlink(handle.name)


@contextmanager
def collected_static(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`env` with a var directory of its own holding `collectstatic`'s output: pages render under production
    settings only with the static manifest, and the checkout's own var/ is left alone."""
    root = tempfile.mkdtemp(prefix="afterdesk-var-")
    env = {**env, "AFTERDESK_VAR_DIR": root}
    try:
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=settings.BASE_DIR, env=env, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        yield env
    finally:
        shutil.rmtree(root, ignore_errors=True)
