from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from tracking.providers.ratelimit import TokenBucket

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tracking"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_bucket(fake_clock: FakeClock) -> TokenBucket:
    """Plenty of tokens, but every wait the client is asked to make lands in fake_clock.sleeps."""
    return TokenBucket(rate=1000.0, burst=100, clock=fake_clock, sleep=fake_clock.sleep)


@pytest.fixture
def stalled_handler(httpserver) -> Iterator[Callable[[Request], Response]]:
    """A handler that answers only after the test ends: the client times out, and the single-threaded test
    server is free again for the next test (a sleeping handler would delay that test's first request)."""
    release = threading.Event()

    def handler(request: Request) -> Response:
        release.wait(5)
        return Response("{}", content_type="application/json")

    logged = len(httpserver.log)
    yield handler
    release.set()
    # Let the released request finish and be logged now, so it cannot land in the next test's log.
    deadline = time.monotonic() + 5
    while len(httpserver.log) <= logged and time.monotonic() < deadline:
        time.sleep(0.01)
    httpserver.clear_log()
