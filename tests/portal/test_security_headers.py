"""Security headers, login throttling, idle sessions and password rules, through the pages.

Every URL of the project (but the API and the admin, which have their own tables, and the providers'
webhooks, which skip the browser middleware on purpose) is asked with GET by a supervisor of the store that
owns every object the URLs name: each answer carries the CSP, Referrer-Policy, Permissions-Policy and
nosniff headers, and no HTML answer holds an inline script or an on*= handler the CSP would refuse.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import time_machine
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from cases.appeals import appeal_create, appeal_scenarios_ensure
from cases.compensation import Proposal, claim_open, compensation_propose
from cases.complaints.intake import complaint_receive
from cases.evidence import evidence_add
from cases.models import AppealScenario, MessageTemplate, WebhookEndpoint
from cases.reporting.review import live_review_write
from tests.api import Api
from tests.evidence_files import jpeg
from tests.factories import add_line, make_case, make_live_session, make_membership, make_sku, make_user

SKIPPED_PREFIXES = ("admin/", "api/v1/", "webhooks/")


@pytest.fixture
def world(store):
    """One store with one of everything a URL names, and its supervisor (staff, as the demo's)."""
    supervisor = make_user("sec-supervisor")
    supervisor.is_staff = True
    supervisor.save(update_fields=["is_staff"])
    membership = make_membership(user=supervisor, store=store, role="supervisor")
    sku = make_sku(store=store, on_hand=20)
    session = make_live_session(store=store, allocations={sku: 10})
    case = make_case(store=store)
    add_line(order=case.order, sku=sku)
    lost = make_case(store=store, type="lost")
    lost.fault_party = "carrier"
    lost.save(update_fields=["fault_party"])
    compensation, _ = compensation_propose(
        case=lost,
        proposal=Proposal(kind="coupon", amount=Decimal("5.00")),
        actor=supervisor,
        idempotency_key="k",
    )
    evidence = evidence_add(
        case=case, upload=io.BytesIO(jpeg()), name="photo.jpg", kind="other", actor=supervisor
    )
    appeal_scenarios_ensure()
    scenario = AppealScenario.objects.filter(store__isnull=True, platform=store.platform).first()
    endpoint = WebhookEndpoint.objects.create(store=store, url="https://shop.example/hook", secret="whsec_x")
    live_review_write(session=session)
    return SimpleNamespace(
        store=store,
        supervisor=supervisor,
        membership=membership,
        session=session,
        case=case,
        compensation=compensation,
        claim=claim_open(lost, actor=supervisor),
        evidence=evidence,
        appeal=appeal_create(store=store, scenario=scenario, cases=[case], actor=supervisor),
        complaint=complaint_receive(order=case.order, text="the box arrived crushed").complaint,
        template=MessageTemplate.objects.create(
            store=store, case_type=case.type, language="en", name="Sorry", body="Hello"
        ),
        endpoint=endpoint,
        api_key=Api(store).key,
    )


def _pk(name: str, w: SimpleNamespace) -> int:
    """The object a route's <pk> names, by the route's name."""
    prefixes = {
        "cases:compensation_": w.compensation.pk,
        "cases:evidence_upload": w.case.pk,
        "cases:evidence_": w.evidence.pk,
        "cases:appeal": w.appeal.pk,
        "cases:triage_": w.complaint.pk,
        "cases:claim_move": w.claim.pk,
        "cases:template_": w.template.pk,
        "cases:": w.case.pk,
        "tracking:": w.case.shipment_id,
        "reports:": w.session.pk,
        "stores:member_": w.membership.pk,
        "stores:api_key_": w.api_key.pk,
        "stores:webhook": w.endpoint.pk,
        "stores:import": 0,  # no import made: its pages answer 404, which must carry the headers too
    }
    return next(pk for prefix, pk in prefixes.items() if name.startswith(prefix))


def _kwargs(name: str, converters: set[str], w: SimpleNamespace) -> dict:
    values = {
        "pk": lambda: _pk(name, w),
        "code": lambda: w.store.code,
        "table": lambda: "carriers",
        "order_pk": lambda: w.case.order_id,
        "delivery_pk": lambda: 0,
        "uidb64": lambda: "MQ",
        "token": lambda: "set-password",
    }
    return {converter: values[converter]() for converter in converters}


def _routes(resolver: URLResolver | None = None, prefix: str = "", namespace: str = "") -> list:
    routes = []
    for entry in (resolver or get_resolver()).url_patterns:
        path = prefix + str(entry.pattern)
        if path.startswith(SKIPPED_PREFIXES):
            continue
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace]))
            routes += _routes(entry, path, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            routes.append((":".join(filter(None, [namespace, entry.name])), set(entry.pattern.converters)))
    return routes


def _directive(policy: str, name: str) -> str:
    directives = dict([*part.strip().split(" ", 1), ""][:2] for part in policy.split(";") if part.strip())
    return directives.get(name, directives.get("default-src", ""))


INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)([^>]*)>", re.I)
INLINE_HANDLER = re.compile(r"<[a-z][^>]*\s(on[a-z]+|hx-on[:\w-]*)\s*=", re.I)
DATA_SCRIPT_TYPES = ("application/json", "application/ld+json", "text/template")


def _refusals(html: str, nonce: str | None) -> list[str]:
    found = []
    for attributes in INLINE_SCRIPT.findall(html):
        if any(f'type="{kind}"' in attributes for kind in DATA_SCRIPT_TYPES):
            continue  # data, never run
        if nonce and f'nonce="{nonce}"' in attributes:
            continue
        found.append(f"inline <script{attributes}>")
    found += [f"inline handler {match}" for match in INLINE_HANDLER.findall(html)]
    return found


@pytest.mark.django_db
def test_every_page_a_supervisor_opens_carries_the_security_headers_and_no_inline_script(client, world):
    client.force_login(world.supervisor)
    asked = 0
    for name, converters in _routes():
        url = reverse(name, kwargs=_kwargs(name, converters, world))
        response = client.get(url)
        asked += 1
        where = f"{name} {url} ({response.status_code})"
        policy = response.headers.get("Content-Security-Policy", "")
        assert policy, where
        script_src = _directive(policy, "script-src")
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, where
        assert response.headers.get("Referrer-Policy") == "same-origin", where
        assert "camera=()" in response.headers.get("Permissions-Policy", ""), where
        assert response.headers.get("X-Content-Type-Options") == "nosniff", where
        if response.headers.get("Content-Type", "").startswith("text/html") and not response.streaming:
            nonce = getattr(response.wsgi_request, "_csp_nonce", None)
            assert _refusals(response.content.decode(), nonce) == [], where
    assert asked > 60  # the URL configuration was walked, not an empty list


@pytest.mark.django_db
def test_the_policy_refuses_inline_code_frames_plugins_and_other_sites(client, agent):
    client.force_login(agent)

    policy = client.get(reverse("cases:list")).headers["Content-Security-Policy"]

    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ):
        assert f"{directive};" in f"{policy};", (directive, policy)


@pytest.mark.django_db
def test_htmx_is_told_to_evaluate_nothing_and_inject_no_style(agent_client):
    body = agent_client.get(reverse("cases:list")).content.decode()

    config = re.search(r'<meta name="htmx-config" content=\'([^\']*)\'>', body).group(1)
    assert '"allowEval": false' in config
    assert '"allowScriptTags": false' in config
    assert '"includeIndicatorStyles": false' in config
    assert '"attributesToSettle": ["class", "width", "height"]' in config  # no style attribute copied
    assert "portal/behaviours.js" in body


@pytest.mark.django_db
def test_the_api_docs_page_loads_its_script_from_a_url_under_the_same_policy(client):
    page = client.get(reverse("api-docs"))
    script = client.get(reverse("api-docs") + "?script=")

    assert page.status_code == 200 and script.status_code == 200
    assert _refusals(page.content.decode(), None) == []
    assert "<style>" not in page.content.decode()
    assert _directive(page.headers["Content-Security-Policy"], "script-src") == "'self'"
    assert "SwaggerUIBundle" in script.content.decode()


# --- login throttling ------------------------------------------------------------------------------------


def _log_in(client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_an_account_is_locked_after_repeated_failures_even_with_the_right_password(client, agent):
    limit = settings.AXES_FAILURE_LIMIT
    for attempt in range(limit - 1):
        response = _log_in(client, "alice", f"wrong-{attempt}")
        assert response.status_code == 200 and "Please try again" in response.content.decode()

    locked = _log_in(client, "alice", "wrong-last")

    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert AccessAttempt.objects.get(username="alice").failures_since_start == limit
    assert AccessFailureLog.objects.filter(username="alice").count() == limit
    # The right password, even from another address, is refused while the lock lasts; no session is made.
    refused = _log_in(client, "alice", "pw-for-tests-123", address="198.51.100.9")
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_the_lock_lifts_after_the_cool_off_and_a_success_clears_the_count(client, agent):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _log_in(client, "alice", f"wrong-{attempt}")

    with time_machine.travel(timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=1)):
        response = _log_in(client, "alice", "pw-for-tests-123")

    assert response.status_code == 302 and response.url == settings.LOGIN_REDIRECT_URL
    assert not AccessAttempt.objects.filter(username="alice").exists()


@pytest.mark.django_db
def test_one_address_trying_many_accounts_is_locked_at_its_own_higher_limit(client, settings, agent):
    settings.LOGIN_FAILURE_LIMIT_PER_IP = 8
    for n in range(7):  # seven usernames, once each: no account near its limit
        assert _log_in(client, f"guess-{n}", "password1").status_code == 200

    locked = _log_in(client, "guess-7", "password1")

    assert locked.status_code == 429
    # The address is locked for every account, a real one with its right password included ...
    assert _log_in(client, "alice", "pw-for-tests-123").status_code == 429
    # ... while the same account from another address (another office) still logs in.
    assert _log_in(client, "alice", "pw-for-tests-123", address="198.51.100.9").status_code == 302


@pytest.mark.django_db
def test_a_few_typos_from_a_shared_office_address_lock_nobody_else_out(client, agent):
    bob = make_user("bob")
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        _log_in(client, "bob", f"typo-{attempt}")

    assert _log_in(client, "alice", "pw-for-tests-123").status_code == 302
    assert bob.check_password("pw-for-tests-123")


@pytest.mark.django_db
def test_api_keys_are_not_throttled_by_the_login_lock(store):
    api = Api(store)
    for attempt in range(settings.AXES_FAILURE_LIMIT + 1):
        api.client.post(reverse("login"), {"username": "x", "password": f"no-{attempt}"})

    assert api.client.get("/api/v1/cases").status_code == 200


# --- idle sessions ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_idle_session_expires_and_activity_keeps_it_alive(client, agent):
    start = timezone.now()
    idle = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    with time_machine.travel(start, tick=False):
        assert _log_in(client, "alice", "pw-for-tests-123").status_code == 302
    with time_machine.travel(start + idle - timedelta(minutes=5), tick=False):
        assert client.get(reverse("cases:list")).status_code == 200  # still working: the count restarts
    with time_machine.travel(start + 2 * idle - timedelta(minutes=10), tick=False):
        assert client.get(reverse("cases:list")).status_code == 200
    with time_machine.travel(start + 3 * idle, tick=False):
        response = client.get(reverse("cases:list"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_the_idle_timeout_is_eight_hours_by_default():
    assert settings.SESSION_COOKIE_AGE == 8 * 60 * 60


@pytest.mark.django_db
def test_activity_writes_the_session_at_most_once_a_minute(client, agent):
    client.force_login(agent)
    url = reverse("stores:list")
    client.get(url)
    with CaptureQueriesContext(connection) as first:
        client.get(url)

    later = time_machine.travel(timezone.now() + timedelta(seconds=61))
    with later, CaptureQueriesContext(connection) as refreshed:
        client.get(url)

    def writes(queries):
        return [q["sql"] for q in queries if "django_session" in q["sql"] and "UPDATE" in q["sql"].upper()]

    assert writes(first) == []
    assert len(writes(refreshed)) == 1


# --- passwords -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_weak_new_password_is_refused_and_the_old_one_kept(client, agent):
    client.force_login(agent)

    response = client.post(
        reverse("password_change"),
        {"old_password": "pw-for-tests-123", "new_password1": "password", "new_password2": "password"},
    )

    assert response.status_code == 200
    assert "This password is too common." in response.content.decode()
    agent.refresh_from_db()
    assert agent.check_password("pw-for-tests-123")
