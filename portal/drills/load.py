"""The load drill: agents working the queue over HTTP while provider pushes arrive, both at fixed rates.

Each agent is a browser session (logged in through the login form, CSRF token read from the cookie as the
page's forms send it) that goes round the queue: list /cases/, open a case, claim it, add a note, resolve it,
each agent on cases of its own (two agents claiming one case is a refusal by design, not a failure). The
pushes are the fault drill's signed AfterShip/17TRACK stream, without faults. Reported: p50/p95/p99 per
endpoint, every non-2xx/3xx answer (none may happen), and the worker's lag from a push stored to its
delivery processed.
"""

from __future__ import annotations

import http.client
import random
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import F
from django.utils import timezone

from cases.choices import CaseStatus, CaseType, Resolution
from cases.models import Case
from portal.bench.http import Server, wsgi_server
from portal.bench.processes import collected_static
from portal.choices import Role
from portal.drills import DrillDatabase, Report, percentile, running_worker, subprocess_env
from portal.drills.faults import FaultOptions, drill_setup, pushes_send, stream_plan, worker_drain
from portal.models import Membership
from tracking.models import Shipment, WebhookDelivery

PASSWORD = secrets.token_urlsafe(16)
ACTIONS = ("list", "open", "claim", "note", "resolve")  # one round on one case
PARCELS_PER_PUSHES = 5  # the stream's pushes per parcel, as in the fault drill


@dataclass(frozen=True)
class LoadOptions:
    duration: float = 60.0
    agents: int = 4
    agent_rate: float = 2.0  # actions per second per agent
    push_rate: float = 100.0
    seed: int = 1


@dataclass
class LoadResult:
    report: Report
    summary: str

    @property
    def ok(self) -> bool:
        return not self.report.failed


@dataclass
class _Timings:
    samples: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, seconds: float, error: str = "") -> None:
        with self.lock:
            self.samples.setdefault(name, []).append(seconds)
            if error:
                self.errors.append(f"{name}: {error}")


class _Browser:
    """One agent's session over one keep-alive connection: cookies kept, CSRF token sent with every POST."""

    def __init__(self, server: Server, timings: _Timings):
        self.server = server
        self.timings = timings
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=60)

    def request(self, name: str, method: str, path: str, form: dict[str, str] | None = None) -> str:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            form = {**form, "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")}
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://{self.server.host}:{self.server.port}{path}"
        started = time.monotonic()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=60)
            self.timings.add(name, time.monotonic() - started, f"{exc.__class__.__name__}: {exc}")
            return ""
        elapsed = time.monotonic() - started
        for header in response.headers.get_all("Set-Cookie") or []:
            for key, morsel in SimpleCookie(header).items():
                self.cookies[key] = morsel.value
        error = (
            "" if response.status < 400 else f"HTTP {response.status} on {method} {path}: {payload[:200]!r}"
        )
        self.timings.add(name, elapsed, error)
        return payload.decode(errors="replace")

    def login(self, username: str) -> None:
        self.request("login page", "GET", "/accounts/login/")
        self.request("login", "POST", "/accounts/login/", {"username": username, "password": PASSWORD})
        if "sessionid" not in self.cookies:
            self.timings.add("login", 0.0, f"{username}: no session after the login form")


def _agent(
    server: Server, username: str, cases: list[int], *, rate: float, deadline: float, timings: _Timings
) -> None:
    browser = _Browser(server, timings)
    browser.login(username)
    step = 1.0 / rate
    due = time.monotonic()
    for pk in cases:
        for action in ACTIONS:
            if time.monotonic() >= deadline:
                return
            due += step
            if action == "list":
                page = browser.request("GET /cases/", "GET", "/cases/")
                if page and not re.search(r"/cases/\d+/", page):
                    timings.add("GET /cases/", 0.0, "the queue page lists no case")
            elif action == "open":
                browser.request("GET /cases/<pk>/", "GET", f"/cases/{pk}/")
            elif action == "claim":
                browser.request("POST claim", "POST", f"/cases/{pk}/claim/", {})
            elif action == "note":
                browser.request(
                    "POST note", "POST", f"/cases/{pk}/note/", {"text": f"Called the buyer ({pk})."}
                )
            else:
                form = {"resolution": Resolution.BUYER_WAITED, "fault_party": "", "note": "Drill."}
                browser.request("POST resolve", "POST", f"/cases/{pk}/resolve/", form)
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def _cases_for_agents(options: LoadOptions, shipment_ids: list[int]) -> tuple[list[str], list[list[int]]]:
    """The agents (members of both drill stores) and, for each, open cases of its own to work."""
    now = timezone.now()
    users = [
        get_user_model().objects.create_user(username=f"drill-agent-{i}", password=PASSWORD)
        for i in range(options.agents)
    ]
    stores = set(Shipment.objects.values_list("store_id", flat=True).distinct())
    Membership.objects.bulk_create(
        [Membership(user=u, store_id=s, role=Role.AGENT) for u in users for s in stores]
    )
    per_agent = int(options.duration * options.agent_rate / len(ACTIONS)) + 2
    needed = min(len(shipment_ids), per_agent * options.agents)
    shipments = Shipment.objects.filter(pk__in=shipment_ids[:needed]).annotate(order_pk=F("order_id"))
    cases = Case.objects.bulk_create(
        [
            Case(
                store_id=s.store_id,
                order_id=s.order_pk,
                shipment_id=s.pk,
                type=CaseType.WRONG_ITEM,  # a buyer-reported type: no parcel rule resolves it under the agent
                status=CaseStatus.NEW,
                opened_at=now,
                due_at=now + timedelta(hours=4),
                summary="Drill case",
            )
            for s in shipments
        ]
    )
    ids = [c.pk for c in cases]
    return [u.username for u in users], [ids[i :: options.agents] for i in range(options.agents)]


def run(options: LoadOptions, database: DrillDatabase, log: Callable[[str], None]) -> LoadResult:
    rng = random.Random(options.seed)
    pushes = round(options.push_rate * options.duration)
    parcels = max(options.agents * 50, pushes // PARCELS_PER_PUSHES, 100)
    fault = FaultOptions(events=max(pushes, parcels), parcels=parcels, kills=0, restarts=0, seed=options.seed)
    setup = drill_setup(fault)
    stream = stream_plan(fault, setup.parcels, rng)
    stream.pushes = stream.pushes[:pushes]
    usernames, work = _cases_for_agents(options, list(setup.shipment_ids.values()))
    log(f"  setup: {len(setup.parcels):,} parcels, {sum(map(len, work)):,} cases for {len(usernames)} agents")
    timings = _Timings()
    connections.close_all()
    with (
        collected_static(subprocess_env(database.url)) as env,
        wsgi_server(database_url=database.url, workers=2, threads=4, extra_env=env) as server,
        running_worker(database.url) as worker,
    ):
        started = time.monotonic()
        deadline = started + options.duration
        agents = [
            threading.Thread(
                target=_agent,
                args=(server, name, cases),
                kwargs={"rate": options.agent_rate, "deadline": deadline, "timings": timings},
                daemon=True,
            )
            for name, cases in zip(usernames, work, strict=True)
        ]
        for thread in agents:
            thread.start()
        sent = pushes_send(server, setup, stream, options.push_rate) if pushes else None
        for thread in agents:
            thread.join()
        elapsed = time.monotonic() - started
        drained, drain_seconds, pending = worker_drain(worker, timeout=300, log=log)
    connections.close_all()
    report = Report(
        f"load drill: {options.agents} agents at {options.agent_rate:g} actions/s, {options.push_rate:g} pushes/s, "
        f"{elapsed:.0f}s"
    )
    rows = ["endpoint              requests      p50      p95      p99  (ms)"]
    for name, samples in sorted(timings.samples.items()):
        rows.append(
            f"{name:<20} {len(samples):>9,} {percentile(samples, 50) * 1000:>8.0f} "
            f"{percentile(samples, 95) * 1000:>8.0f} {percentile(samples, 99) * 1000:>8.0f}"
        )
    if sent is not None:
        hooks = sent.latencies
        rows.append(
            f"{'POST webhook':<20} {len(hooks):>9,} {percentile(hooks, 50) * 1000:>8.0f} "
            f"{percentile(hooks, 95) * 1000:>8.0f} {percentile(hooks, 99) * 1000:>8.0f}"
        )
    lags = [
        (processed - received).total_seconds()
        for received, processed in WebhookDelivery.objects.filter(processed_at__isnull=False).values_list(
            "received_at", "processed_at"
        )
    ]
    rows.append(
        f"worker lag, push stored -> processed: p50 {percentile(lags, 50):.1f}s, p95 {percentile(lags, 95):.1f}s, "
        f"p99 {percentile(lags, 99):.1f}s, max {max(lags, default=0):.1f}s over {len(lags):,} deliveries"
    )
    report.notes += rows
    actions = sum(len(s) for s in timings.samples.values())
    report.check("agent requests failed (4xx/5xx/connection)", 0, len(timings.errors))
    if timings.errors:
        report.notes.append("first errors: " + " | ".join(timings.errors[:3]))
    resolved = Case.objects.filter(
        pk__in=[pk for cases in work for pk in cases], status=CaseStatus.RESOLVED
    ).count()
    report.check("cases resolved by the agents", ">0", f"{resolved:,}", passed=resolved > 0)
    if sent is not None:
        report.check("pushes acknowledged (2xx)", len(stream.pushes), sent.accepted)
        report.check(
            "push answers other than 2xx", 0, sum(n for s, n in sent.statuses.items() if not 200 <= s < 300)
        )
        report.check("push connection errors", 0, sent.connection_errors)
    report.check("worker drained within the timeout", True, drained)
    if not drained:
        report.notes.append(f"still pending: {pending}")
    report.notes.append(f"drained {drain_seconds:.0f}s after the load")
    summary = (
        f"{actions:,} agent requests, {sent.accepted if sent else 0:,} pushes in {elapsed:.0f}s: "
        f"{len(timings.errors)} errors, worker lag p95 {percentile(lags, 95):.1f}s"
    )
    return LoadResult(report, summary)
