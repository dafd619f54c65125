"""A real WSGI server (gunicorn, as in production) in a subprocess, and one small HTTP load driver.

Every URL compared in a run goes through the same server, client and concurrency, so their ratio says what
the view costs beyond the HTTP and Django floor. The client is the standard library's keep-alive
`http.client`: on a small machine the client shares the CPUs with the server, and a lighter client lets the
server use more of them.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings

from portal.bench.processes import collected_static

# (method, path, body, headers); None when the caller has no more requests to give.
Request = tuple[str, str, bytes | None, Mapping[str, str]]
RequestSource = Callable[[], Request | None]


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    log_path: str


@dataclass
class LoadResult:
    ok: int = 0
    errors: int = 0
    elapsed: float = 0.0
    exhausted: bool = False  # the source ran dry before the time was up
    statuses: Counter[int] = field(default_factory=Counter)
    first_error: str = ""

    @property
    def per_second(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def wsgi_server(
    *,
    database_url: str,
    workers: int = 2,
    threads: int = 4,
    extra_env: Mapping[str, str] | None = None,
    pages: bool = False,
) -> Iterator[Server]:
    """gunicorn serving portal.wsgi on a free local port, production settings over plain HTTP.

    No django-q2 worker is started: what the views enqueue stays queued. `pages`: the server renders HTML
    pages, whose static URLs come from the collectstatic manifest (production's storage), so collectstatic
    runs first into a throwaway var directory, as a deployment's build step would.
    """
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECURE_SSL": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": "",  # django-q2's ORM broker and the local-memory cache, as on a single box
        **(extra_env or {}),
    }
    env.pop("AFTERDESK_TESTING", None)
    with contextlib.ExitStack() as stack:
        if pages:
            env = stack.enter_context(collected_static(env))
        yield from _serve(env, port=port, workers=workers, threads=threads)


def _serve(env: dict[str, str], *, port: int, workers: int, threads: int) -> Iterator[Server]:
    log = tempfile.NamedTemporaryFile(prefix="afterdesk-bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    command = [
        sys.executable, "-m", "gunicorn", "portal.wsgi",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
        "--chdir", str(settings.BASE_DIR), "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    server = Server("127.0.0.1", port, log.name)
    failed = True
    try:
        _wait_ready(server, process)
        yield server
        failed = False
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        if not failed:  # kept for reading when the server or a request went wrong
            os.unlink(log.name)


def _wait_ready(server: Server, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{_tail(server.log_path)}")
        try:
            conn = http.client.HTTPConnection(server.host, server.port, timeout=2)
            conn.request("GET", "/livez")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer /livez within {timeout:.0f}s:\n{_tail(server.log_path)}")


def _tail(path: str, lines: int = 30) -> str:
    with open(path, errors="replace") as handle:
        return "".join(handle.readlines()[-lines:])


def drive(*, server: Server, source: RequestSource, concurrency: int, duration: float) -> LoadResult:
    """`concurrency` keep-alive clients send requests from `source` back to back for `duration` seconds.

    A request counts as ok on a 2xx answer. Stops early (and says so) when the source runs dry.
    """
    result = LoadResult()
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + duration

    def client() -> None:
        ok = errors = 0
        statuses: Counter[int] = Counter()
        error = ""
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        while time.monotonic() < deadline:
            request = source()
            if request is None:
                result.exhausted = True
                break
            method, path, body, headers = request
            try:
                conn.request(method, path, body=body, headers=dict(headers))
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                errors += 1
                error = error or f"{exc.__class__.__name__}: {exc}"
                conn.close()
                conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
                continue
            statuses[response.status] += 1
            if 200 <= response.status < 300:
                ok += 1
            else:
                errors += 1
                error = error or f"HTTP {response.status}: {payload[:200]!r}"
        conn.close()
        with lock:
            result.ok += ok
            result.errors += errors
            result.statuses.update(statuses)
            result.first_error = result.first_error or error

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = time.monotonic() - start
    return result


def cycle(request: Request) -> RequestSource:
    """The same request forever (for idempotent GETs)."""
    return lambda: request


def each_once(requests: list[Request]) -> RequestSource:
    """Every request once, shared by all clients (itertools.count is atomic under the GIL)."""
    counter = itertools.count()

    def source() -> Request | None:
        index = next(counter)
        return requests[index] if index < len(requests) else None

    return source
