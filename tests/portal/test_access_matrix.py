"""The access matrix: every URL of the project, asked by every kind of caller, with the answer each must get.

One world of two stores (A and B), each with orders, parcels, cases, evidence, an appeal, compensations, a
claim, a complaint, a template, an import, a live session with its review, webhooks and API keys. The
callers are an anonymous visitor, an agent and an admin of store B (the other store), and an agent, a
supervisor and an admin of store A. Every object named in a URL is store A's: store B's people must get the
answer a missing object gets (404, or the admin's "does not exist" redirect), never a 403 that tells them it
exists, and never its data. A page that lists (a queue, a report, an export) answers them with their own
rows: the body they get must not hold any of store A's markers.

The table is explicit, one entry per route name; a route added to the URL configuration without an entry
fails `test_every_route_has_an_entry`, so nobody forgets to say who may reach it. POST actions are sent
with an empty or harmless body: a 400 with the form's message proves the permission check let the caller
through; each test runs in its own transaction over the shared world, so an action's writes are undone.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone

from cases.appeals import appeal_create, appeal_scenarios_ensure
from cases.compensation import Proposal, Result, claim_open, compensation_propose, compensation_result
from cases.complaints.intake import complaint_receive
from cases.evidence import evidence_add
from cases.models import AppealScenario, EventDelivery, MessageTemplate, StorefrontEvent, WebhookEndpoint
from cases.reporting.review import live_review_write
from cases.services import case_raise
from tests.api import Api, api_object_routes, problem
from tests.evidence_files import jpeg
from tests.factories import (
    add_line,
    make_live_session,
    make_membership,
    make_order,
    make_shipment,
    make_sku,
    make_store,
    make_user,
)
from tests.tracking import exports
from tracking.models import TrackingConnection

# --- the callers ---------------------------------------------------------------------------------------

ANON = "anonymous"
OTHER_AGENT = "agent of store B"
OTHER_ADMIN = "admin of store B"
AGENT = "agent"
SUPERVISOR = "supervisor"
ADMIN = "admin"
PEOPLE = (ANON, OTHER_AGENT, OTHER_ADMIN, AGENT, SUPERVISOR, ADMIN)

NO_KEY = "no API key"
OTHER_KEY = "store B's key"
READ_KEY = "read-only key"
WRITE_KEY = "read-write key"
KEYS = (NO_KEY, OTHER_KEY, READ_KEY, WRITE_KEY)

LOGIN = "login"  # a 302 to the login page
ADMIN_LOGIN = "admin login"  # a 302 to the admin's login page
# The admin's 302 to its index for an object the user cannot see, as for a missing one.
GONE = "does not exist"

# --- the world -----------------------------------------------------------------------------------------


def _store_world(code: str, name: str, people: dict[str, Any]) -> SimpleNamespace:
    """One store with one of everything a URL can name, built through the services."""
    store = make_store(code=code, name=name)
    for role, user in people.items():
        make_membership(user=user, store=store, role=role)
    api = Api(store)  # before the cases: a store with a key hears its case events
    read_api = Api(store, read_only=True)
    sku = make_sku(store=store, code=f"SKU-{code}", on_hand=50)
    session = make_live_session(store=store, allocations={sku: 10})
    session.external_id = f"L-{code}"
    session.save(update_fields=["external_id"])
    order = make_order(store=store, buyer_name=f"Buyer {code} secret", live_session=session)
    add_line(order=order, sku=sku)
    shipment = make_shipment(order=order, tracking_number=f"TRK{code.upper().replace('-', '')}77")
    case, _ = case_raise(type="stalled_in_transit", order=order, shipment=shipment, summary="Parcel stalled")
    proposed, _ = compensation_propose(
        case=case, proposal=Proposal(kind="full_refund"), actor=people["agent"], idempotency_key=f"{code}-1"
    )
    lost_order = make_order(store=store)
    lost_parcel = make_shipment(order=lost_order)
    lost, _ = case_raise(type="lost", order=lost_order, shipment=lost_parcel, summary="Lost")
    coupon, _ = compensation_propose(
        case=lost,
        proposal=Proposal(kind="coupon", amount=Decimal("5.00")),
        actor=people["supervisor"],
        idempotency_key=f"{code}-2",
    )
    compensation_result(compensation=coupon, result=Result(executed=True))
    lost.fault_party = "carrier"
    lost.save(update_fields=["fault_party"])
    claim = claim_open(lost, actor=people["supervisor"])
    evidence = evidence_add(
        case=case, upload=io.BytesIO(jpeg()), name=f"photo-{code}.jpg", kind="other", actor=people["agent"]
    )
    appeal_scenarios_ensure()
    scenario = AppealScenario.objects.filter(store__isnull=True, platform=store.platform).first()
    appeal = appeal_create(store=store, scenario=scenario, cases=[case], actor=people["agent"])
    complaint = complaint_receive(order=order, text="the box arrived crushed and wet").complaint
    template = MessageTemplate.objects.create(
        store=store, case_type=case.type, language="en", name=f"Template {code} secret", body="Hello"
    )
    endpoint = WebhookEndpoint.objects.create(
        store=store, url=f"https://{code}.example/hook", secret="whsec_x"
    )
    event = StorefrontEvent.objects.filter(store=store).first()
    delivery = EventDelivery.objects.create(
        endpoint=endpoint,
        event=event,
        retry_until=timezone.now() + timedelta(days=1),
        created_at=timezone.now(),
    )
    live_review_write(session=session)
    call_command(
        "create_tracking_connection", code, "aftership", "--secret", "s3cret-for-tests", stdout=io.StringIO()
    )
    connection = TrackingConnection.objects.get(store=store, provider="aftership")
    uploader = Client()  # an import is made by its page (the upload and its check are the view's)
    uploader.force_login(people["admin"])
    csv = exports.as_csv(exports.tiktok_rows(exports.orders(3)))
    uploaded = uploader.post(
        reverse("stores:imports", args=[code]), {"file": SimpleUploadedFile("e.csv", csv, "text/csv")}
    )
    assert uploaded.status_code == 302, uploaded.content
    order_import = store.order_imports.get()
    return SimpleNamespace(
        store=store, api=api, read_api=read_api, sku=sku, session=session, order=order, shipment=shipment,
        case=case, lost=lost, proposed=proposed, claim=claim, evidence=evidence, appeal=appeal,
        complaint=complaint, template=template, endpoint=endpoint, event=event, delivery=delivery,
        connection=connection, order_import=order_import,
        membership=store.memberships.get(user=people["agent"]),
        markers=[order.buyer_name, order.platform_order_id, shipment.tracking_number, template.name,
                 f"photo-{code}.jpg", sku.code],
    )  # fmt: skip


def _world_build() -> SimpleNamespace:
    users = {name: make_user(f"acl-{name.replace(' ', '-')}") for name in PEOPLE if name != ANON}
    for name in (SUPERVISOR, ADMIN, OTHER_ADMIN):  # as the demo's supervisors: they reach the admin
        users[name].is_staff = True
        users[name].save(update_fields=["is_staff"])
    a = _store_world(
        "acl-a", "Shop A", {"agent": users[AGENT], "supervisor": users[SUPERVISOR], "admin": users[ADMIN]}
    )
    b_supervisor = make_user("acl-b-supervisor")
    b = _store_world(
        "acl-b",
        "Shop B",
        {"agent": users[OTHER_AGENT], "supervisor": b_supervisor, "admin": users[OTHER_ADMIN]},
    )
    sessions = {}
    for name, user in users.items():
        client = Client()
        client.force_login(user)
        sessions[name] = client.cookies[settings.SESSION_COOKIE_NAME].value
    keys = {OTHER_KEY: b.api.secret, READ_KEY: a.read_api.secret, WRITE_KEY: a.api.secret}
    return SimpleNamespace(a=a, b=b, users=users, sessions=sessions, keys=keys)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """Built once for the module inside a transaction that is rolled back at the end; each test's own
    transaction is a savepoint inside it (as TestCase.setUpTestData)."""
    media = tmp_path_factory.mktemp("acl-media")
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=str(media)):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield _world_build()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture
def _media_root():
    """The world's files stay where the world put them (tests/conftest.py gives each test a fresh root)."""


# --- the table -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    method: str
    kwargs: Callable[[SimpleNamespace], dict] = lambda a: {}
    expect: dict[str, Any] = field(default_factory=dict)
    data: Any = None  # a dict (form or JSON), or a callable of the store's world giving one
    query: str = ""
    htmx: bool = False
    reason: str = ""  # why a route is open to anyone


def member(ok: Any, *, other: Any = 404) -> dict[str, Any]:
    """Any member of the store; store B's people get `other` (404: A's object looks missing)."""
    return {ANON: LOGIN, OTHER_AGENT: other, OTHER_ADMIN: other, AGENT: ok, SUPERVISOR: ok, ADMIN: ok}


def everyone_signed_in(ok: Any) -> dict[str, Any]:
    """A page of the user's own (their queue, their stores, their account): each sees their own rows."""
    return member(ok, other=ok)


def manager(ok: Any, *, agent: Any = 403, other_agent: Any = 403, other_admin: Any = 404) -> dict[str, Any]:
    """Supervisors and admins of the store (cases.workflow.MANAGER_ROLES). An agent anywhere is refused
    before any lookup (the same 403 for any id); store B's admin, a manager, finds no such object."""
    return {ANON: LOGIN, OTHER_AGENT: other_agent, OTHER_ADMIN: other_admin, AGENT: agent, SUPERVISOR: ok,
            ADMIN: ok}  # fmt: skip


def store_admin(ok: Any) -> dict[str, Any]:
    """The store's admins (portal.selectors.store_get_for_admin): to everybody else the store is missing."""
    return {ANON: LOGIN, OTHER_AGENT: 404, OTHER_ADMIN: 404, AGENT: 404, SUPERVISOR: 404, ADMIN: ok}


def anyone(status: Any) -> dict[str, Any]:
    return dict.fromkeys(PEOPLE, status)


def case(a):
    return {"pk": a.case.pk}


def code(a):
    return {"code": a.store.code}


MATRIX: dict[str, list[Check]] = {
    # --- public by design ----------------------------------------------------------------------------
    "tracking-webhook": [
        Check(
            "post",
            lambda a: {"provider": "aftership", "uuid": a.connection.uuid},
            anyone(401),
            data={},
            reason="a carrier's push, authenticated by the provider's signature, not by a session",
        ),
        Check(
            "get",
            lambda a: {"provider": "aftership", "uuid": a.connection.uuid},
            anyone(405),
            reason="pushes are POSTs",
        ),
    ],
    "home": [Check("get", expect=anyone(302), reason="a redirect to the queue, which asks for a login")],
    "healthz": [Check("get", expect=anyone(200), reason="the load balancer's probe")],
    "livez": [Check("get", expect=anyone(200), reason="the liveness probe")],
    "login": [Check("get", expect=anyone(200), reason="the way in")],
    "logout": [Check("post", expect=anyone(LOGIN), reason="the way out (to the login page)")],
    "password_reset": [Check("get", expect=anyone(200), reason="for who forgot their password")],
    "password_reset_done": [Check("get", expect=anyone(200), reason="for who forgot their password")],
    "password_reset_confirm": [
        Check(
            "get",
            lambda a: {"uidb64": "MQ", "token": "bad-token"},
            anyone(200),
            reason="the link from the mail; a bad token says the link is invalid",
        ),
    ],
    "password_reset_complete": [Check("get", expect=anyone(200), reason="for who forgot their password")],
    "set_language": [
        Check(
            "post",
            expect=anyone(302),
            data={"language": "zh-hans", "next": "/"},
            reason="the language switch works before login too",
        ),
    ],
    "api-schema": [Check("get", expect=anyone(200), reason="the OpenAPI schema is public documentation")],
    "api-docs": [Check("get", expect=anyone(200), reason="the API documentation")],
    # --- the user's own account ----------------------------------------------------------------------
    "password_change": [Check("get", expect=everyone_signed_in(200))],
    "password_change_done": [Check("get", expect=everyone_signed_in(200))],
    # --- the queue and the case page -----------------------------------------------------------------
    "cases:list": [
        Check("get", expect=everyone_signed_in(200)),
        # searching for store A's order finds nothing for store B's people
        Check("get", expect=everyone_signed_in(200), query="q={a.order.platform_order_id}"),
        Check("get", expect=member(200, other=400), query="store={a.store.pk}"),
    ],
    "cases:counts": [Check("get", expect=everyone_signed_in(200), htmx=True)],
    "cases:bulk": [
        Check("post", expect=everyone_signed_in(400), data={}, htmx=True),
        Check(
            "post",
            expect=everyone_signed_in(200),
            data=lambda a: {"action": "claim", "ids": [a.case.pk]},
            htmx=True,
        ),
    ],
    "cases:detail": [Check("get", case, member(200))],
    "cases:timeline": [Check("get", case, member(200), htmx=True)],
    "cases:parcel": [Check("get", case, member(200), htmx=True)],
    "cases:next": [Check("get", case, member(302))],
    "cases:claim": [Check("post", case, member(200), htmx=True)],
    "cases:assign": [Check("post", case, manager(200, agent=403, other_agent=404), data={}, htmx=True)],
    "cases:status": [Check("post", case, member(400), data={}, htmx=True)],
    "cases:resolve": [Check("post", case, member(400), data={}, htmx=True)],
    "cases:reopen": [Check("post", case, member(400), data={}, htmx=True)],
    "cases:note": [
        Check("post", case, member(400), data={}, htmx=True),
        Check("post", case, member(200), data={"text": "Called the hub"}, htmx=True),
    ],
    "cases:message_preview": [Check("get", case, member(400), htmx=True)],
    "cases:message_send": [Check("post", case, member(400), data={}, htmx=True)],
    "cases:offer": [Check("post", case, member(400), data={}, htmx=True)],
    "cases:compensate": [Check("post", case, member(400), data={}, htmx=True)],
    "cases:buyer_choice": [Check("post", case, member(400), data={}, htmx=True)],
    "cases:carrier_claim": [Check("post", case, member(400), htmx=True)],
    "cases:compensation_approve": [
        Check("post", lambda a: {"pk": a.proposed.pk}, manager(200, other_agent=404), htmx=True)
    ],
    "cases:compensation_reject": [  # a rejection needs its reason
        Check("post", lambda a: {"pk": a.proposed.pk}, manager(400, other_agent=404), htmx=True)
    ],
    "cases:compensation_cancel": [Check("post", lambda a: {"pk": a.proposed.pk}, member(200), htmx=True)],
    "cases:compensation_result": [
        Check("post", lambda a: {"pk": a.proposed.pk}, member(400), data={}, htmx=True)
    ],
    "cases:ledger_export": [Check("get", expect=manager(200, other_admin=200))],
    # --- evidence and appeals ------------------------------------------------------------------------
    "cases:evidence_upload": [Check("post", case, member(400), data={}, htmx=True)],
    "cases:evidence_file": [Check("get", lambda a: {"pk": a.evidence.pk}, member(200))],
    "cases:evidence_thumbnail": [Check("get", lambda a: {"pk": a.evidence.pk}, member(200))],
    "cases:evidence_withdraw": [
        Check("post", lambda a: {"pk": a.evidence.pk}, member(400), data={}, htmx=True)
    ],
    "cases:evidence_custody": [Check("get", lambda a: {"pk": a.evidence.pk}, member(200))],
    "cases:appeal_list": [Check("get", expect=everyone_signed_in(200))],
    "cases:appeal_new": [
        Check("get", expect=member(200, other=302), query="ids={a.case.pk}"),
        Check("post", expect=member(400, other=302), data=lambda a: {"ids": [a.case.pk], "scenario": "0"}),
    ],
    "cases:appeal": [Check("get", lambda a: {"pk": a.appeal.pk}, member(200))],
    # The appeal page's forms answer with a redirect back to it, the refusal flashed (post/redirect/get).
    "cases:appeal_export": [Check("post", lambda a: {"pk": a.appeal.pk}, member(302))],
    "cases:appeal_cases_add": [Check("post", lambda a: {"pk": a.appeal.pk}, member(302), data={})],
    "cases:appeal_outcome": [Check("post", lambda a: {"pk": a.appeal.pk}, member(302), data={})],
    # --- compensation approvals and carrier claims (managers) ----------------------------------------
    "cases:approvals": [Check("get", expect=manager(200, other_admin=200))],
    "cases:approvals_decide": [Check("post", expect=manager(302, other_admin=302), data={})],
    "cases:claims": [Check("get", expect=manager(200, other_admin=200))],
    "cases:claims_export": [Check("get", expect=manager(200, other_admin=200))],
    "cases:claim_move": [Check("post", lambda a: {"pk": a.claim.pk}, manager(302), data={})],
    # --- complaints ----------------------------------------------------------------------------------
    "cases:complaint_log": [Check("post", lambda a: {"order_pk": a.order.pk}, member(302), data={})],
    "cases:triage": [Check("get", expect=everyone_signed_in(200))],
    "cases:triage_label": [Check("post", lambda a: {"pk": a.complaint.pk}, member(302), data={})],
    "cases:triage_export": [Check("get", expect=everyone_signed_in(200))],
    # --- message templates (managers) ----------------------------------------------------------------
    "cases:template_list": [Check("get", expect=manager(200, other_admin=200))],
    "cases:template_new": [
        Check("get", expect=manager(200, other_admin=200)),
        Check("post", expect=manager(400, other_admin=400), data={}),
    ],
    "cases:template_preview": [Check("post", expect=manager(400, other_admin=400), data={})],
    "cases:template_edit": [
        Check("get", lambda a: {"pk": a.template.pk}, manager(200)),
        Check("post", lambda a: {"pk": a.template.pk}, manager(400), data={}),
    ],
    "cases:template_duplicate": [Check("post", lambda a: {"pk": a.template.pk}, manager(302), data={})],
    "cases:template_active": [Check("post", lambda a: {"pk": a.template.pk}, manager(302), data={})],
    # --- parcels -------------------------------------------------------------------------------------
    "tracking:shipment": [Check("get", lambda a: {"pk": a.shipment.pk}, member(200))],
    "tracking:shipment-refresh": [Check("post", lambda a: {"pk": a.shipment.pk}, member(302))],
    # --- reports -------------------------------------------------------------------------------------
    "reports:index": [
        Check("get", expect=everyone_signed_in(200)),
        Check("get", expect=member(200, other=400), query="store={a.store.code}"),
        Check(
            "get",
            expect=member(200, other=400),
            query="live={a.session.pk}",
        ),
    ],
    "reports:csv": [  # an agent's report is their own work; the store's figures are the managers'
        Check("get", lambda a: {"table": "agents"}, everyone_signed_in(200)),
        Check(
            "get",
            lambda a: {"table": "exceptions_by_day"},
            manager(200, agent=404, other_agent=404, other_admin=200),
        ),
    ],
    "reports:health": [Check("get", expect=manager(200, other_admin=200))],
    "reports:health_store": [Check("get", code, manager(200))],
    "reports:thresholds": [
        Check("get", code, manager(200)),
        Check("post", code, manager(302) | {SUPERVISOR: 403}, data={}),  # empty: the platform's defaults
    ],
    "reports:live_list": [Check("get", expect=manager(200, other_admin=200))],
    "reports:live_compare": [
        Check("get", expect=manager(400, other_admin=400)),
        Check("get", expect=manager(404, other_admin=404), query="s={a.session.pk}&s={b.session.pk}"),
    ],
    "reports:war_room": [Check("get", lambda a: {"pk": a.session.pk}, manager(200, other_agent=404))],
    "reports:war_room_boards": [
        Check("get", lambda a: {"pk": a.session.pk}, manager(200, other_agent=404), htmx=True)
    ],
    "reports:live_review": [Check("get", lambda a: {"pk": a.session.pk}, manager(200, other_agent=404))],
    "reports:live_review_pdf": [Check("get", lambda a: {"pk": a.session.pk}, manager(200, other_agent=404))],
    # --- store administration (the store's admins) ---------------------------------------------------
    "stores:list": [Check("get", expect=everyone_signed_in(200))],
    "stores:detail": [Check("get", code, store_admin(200)), Check("post", code, store_admin(400), data={})],
    "stores:member_add": [Check("post", code, store_admin(400), data={}, htmx=True)],
    "stores:member_role": [
        Check(
            "post",
            lambda a: {"code": a.store.code, "pk": a.membership.pk},
            store_admin(400),
            data={},
            htmx=True,
        ),
    ],
    "stores:member_remove": [
        Check("post", lambda a: {"code": a.store.code, "pk": a.membership.pk}, store_admin(200), htmx=True)
    ],
    "stores:api_key_create": [Check("post", code, store_admin(400), data={}, htmx=True)],
    "stores:api_key_revoke": [
        Check("post", lambda a: {"code": a.store.code, "pk": a.read_api.key.pk}, store_admin(200), htmx=True)
    ],
    "stores:webhook_create": [Check("post", code, store_admin(400), data={}, htmx=True)],
    "stores:webhook": [Check("get", lambda a: {"code": a.store.code, "pk": a.endpoint.pk}, store_admin(200))],
    "stores:webhook_change": [
        Check("post", lambda a: {"code": a.store.code, "pk": a.endpoint.pk}, store_admin(400), data={})
    ],
    "stores:webhook_redeliver": [
        Check(
            "post",
            lambda a: {"code": a.store.code, "pk": a.endpoint.pk, "delivery_pk": a.delivery.pk},
            store_admin(302),
        ),
    ],
    "stores:imports": [Check("get", code, store_admin(200)), Check("post", code, store_admin(400), data={})],
    "stores:import": [
        Check("get", lambda a: {"code": a.store.code, "pk": a.order_import.pk}, store_admin(200))
    ],
    "stores:import_mapping": [
        Check("post", lambda a: {"code": a.store.code, "pk": a.order_import.pk}, store_admin(400), data={})
    ],
    "stores:import_confirm": [
        Check("post", lambda a: {"code": a.store.code, "pk": a.order_import.pk}, store_admin(302))
    ],
    "stores:import_cancel": [
        Check("post", lambda a: {"code": a.store.code, "pk": a.order_import.pk}, store_admin(302))
    ],
    "stores:import_refused": [
        Check("get", lambda a: {"code": a.store.code, "pk": a.order_import.pk}, store_admin(200))
    ],
}


# Routes without a name, by their full pattern, and what answers there.
UNNAMED = {
    "api/v1/^[\\s\\S]*$": "any other path under /api/v1/: a problem 404 (test_an_unknown_api_path_...)",
    "admin/(?P<url>.*)$": "the admin's catch-all: its login for strangers, a 404 for staff",
}
# Django's admin redirects <model>/<id>/ to <model>/<id>/change/ (test_the_admin_s_unnamed_routes).
_ADMIN_REDIRECT = "admin/{app}/{model}/<path:object_id>/"


def _routes(
    resolver: URLResolver | None = None, namespace: str = "", prefix: str = ""
) -> list[tuple[str, Any]]:
    """(name, pattern) of every route, walking the includes: named as reverse() names them, or by the full
    pattern for the routes without a name."""
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found += _routes(entry, inner, prefix + str(entry.pattern))
        else:
            found.append((f"{namespace}{entry.name}" if entry.name else prefix + str(entry.pattern), entry))
    return found


def _checks() -> list[tuple[str, int, Check]]:
    return [(name, index, check) for name, checks in MATRIX.items() for index, check in enumerate(checks)]


def _client(world, who: str) -> Client:
    client = Client()
    if who != ANON:
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[who]
    return client


# Rows of store A reached through a parent, for the tables without a store column.
_THROUGH = {
    "cases.caseevent": "case__store", "cases.buyermessage": "case__store", "cases.custodyentry": "evidence__store",
    "cases.eventdelivery": "endpoint__store", "cases.livereview": "live_session__store",
    "tracking.stocklevel": "sku__store", "tracking.orderline": "order__store",
}  # fmt: skip
# Counters a refusal is meant to move: the key's last use, the provider's rejected signatures.
_BOOKKEEPING = {"portal.apikey": {"last_used_at"}, "tracking.trackingconnection": {"signatures_rejected"}}
REFUSED = (LOGIN, ADMIN_LOGIN, 401, 403, 404, 405)


def _footprint(store) -> dict[str, list]:
    """Every row of the store, column by column: a refused request, or anybody else's, leaves it as it was."""
    rows = {"portal.store": list(type(store).objects.filter(pk=store.pk).values())}
    for app in ("portal", "tracking", "cases"):
        for model in apps.get_app_config(app).get_models():
            label = model._meta.label_lower
            lookup = _THROUGH.get(label) or (
                "store" if any(f.name == "store" for f in model._meta.fields) else ""
            )
            if lookup:
                ignored = _BOOKKEEPING.get(label, set())
                rows[label] = [
                    {column: value for column, value in row.items() if column not in ignored}
                    for row in model.objects.filter(**{lookup: store}).order_by("pk").values()
                ]
    return rows


def _assert_no_leak(world, who: str, name: str, body: bytes, sent: str) -> None:
    """Nobody's answer holds the other store's markers (what the caller named itself aside)."""
    if who in (OTHER_AGENT, OTHER_ADMIN, OTHER_KEY):
        foreign, owner = world.a.markers, "A"
    elif who in (ANON, NO_KEY):
        foreign, owner = world.a.markers + world.b.markers, "A or B"
    else:
        foreign, owner = world.b.markers, "B"
    leaked = [marker for marker in foreign if marker.encode() in body and marker not in sent]
    assert not leaked, f"{name} shows store {owner}'s {leaked} to {who}"


def _body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def _outcome(response, expected: Any) -> Any:
    """The response in the table's words: LOGIN for a redirect to the login page, the status otherwise."""
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith(reverse("admin:login")):
            return ADMIN_LOGIN
        if location.startswith(reverse(settings.LOGIN_URL)):
            return LOGIN
        if expected == GONE and location == reverse("admin:index"):
            return GONE
    return response.status_code


@pytest.mark.parametrize(
    ("name", "index", "check", "who"),
    [pytest.param(n, i, c, w, id=f"{n}[{c.method}{i}]-{w}") for n, i, c in _checks() for w in PEOPLE],
)
@pytest.mark.django_db
def test_route(world, name, index, check, who):
    a = world.a
    url = reverse(name, kwargs=check.kwargs(a))
    if check.query:
        url += "?" + check.query.format(a=a, b=world.b)
    data = check.data(a) if callable(check.data) else check.data
    headers = {"HTTP_HX_REQUEST": "true"} if check.htmx else {}
    client = _client(world, who)
    expected = check.expect[who]
    watched = check.method != "get" and (who in (ANON, OTHER_AGENT, OTHER_ADMIN) or expected in REFUSED)
    before = _footprint(a.store) if watched else None
    if check.method == "get":
        response = client.get(url, **headers)
    else:
        response = getattr(client, check.method)(url, data or {}, **headers)
    body = _body(response)
    assert _outcome(response, expected) == expected, (who, url, response.status_code, body[:500])
    _assert_no_leak(world, who, name, body, url + str(data))
    if watched:
        assert _footprint(a.store) == before, f"{name} changed store A for {who}"


def test_every_route_has_an_entry():
    """A new route must say who reaches it: its name goes in MATRIX (pages, partials, actions, downloads),
    API_MATRIX (the storefront API) or ADMIN_MODELS (the admin)."""
    named = {name for name, _pattern in _routes()}
    redirects = {
        _ADMIN_REDIRECT.format(app=label.split(".")[0], model=label.split(".")[1]) for label in ADMIN_MODELS
    }
    covered = (
        set(MATRIX) | {name for name, _method in API_MATRIX} | set(_admin_matrix()) | set(UNNAMED) | redirects
    )
    assert named - covered == set(), "routes without an entry in the access matrix"
    assert covered - named == set(), "entries for routes that no longer exist"
    for name, checks in MATRIX.items():
        for check in checks:
            assert set(check.expect) == set(PEOPLE), name
            if check.expect[ANON] not in (LOGIN, ADMIN_LOGIN):
                assert check.reason, f"{name} is open without a login: say why"


# --- store B's objects named in the body ------------------------------------------------------------------

# Store A's supervisor (or admin, for the store pages) sends store B's ids, codes and names in the body of
# store A's actions: each is refused (a form error, "no such", nothing done), and store B is left as it was.
BODY_CROSS: list[tuple[str, str, Callable, Callable]] = [
    ("cases:bulk", SUPERVISOR, lambda a: {}, lambda a, b: {"action": "claim", "ids": [b.case.pk]}),
    (
        "cases:bulk",
        SUPERVISOR,
        lambda a: {},
        lambda a, b: {"action": "assign", "ids": [a.case.pk, b.case.pk], "assignee": b.membership.user_id},
    ),
    (
        "cases:bulk",
        SUPERVISOR,
        lambda a: {},
        lambda a, b: {"action": "send", "ids": [a.case.pk], "template": b.template.pk},
    ),
    ("cases:assign", SUPERVISOR, case, lambda a, b: {"assignee": b.membership.user_id}),
    ("cases:message_send", SUPERVISOR, case, lambda a, b: {"template": b.template.pk}),
    (
        "cases:compensate",
        SUPERVISOR,
        case,
        lambda a, b: {"kind": "swap", "sku": b.sku.code, "token": "acl-swap", "quantity": 1},
    ),
    (
        "cases:approvals_decide",
        SUPERVISOR,
        lambda a: {},
        lambda a, b: {"action": "approve", "ids": [b.proposed.pk]},
    ),
    ("cases:appeal_new", SUPERVISOR, lambda a: {}, lambda a, b: {"ids": [a.case.pk, b.case.pk]}),
    (
        "cases:appeal_cases_add",
        SUPERVISOR,
        lambda a: {"pk": a.appeal.pk},
        lambda a, b: {"references": f"{b.order.platform_order_id}\n{b.shipment.tracking_number}"},
    ),
    (
        "cases:template_duplicate",
        SUPERVISOR,
        lambda a: {"pk": a.template.pk},
        lambda a, b: {"store": b.store.pk},
    ),
    (
        "cases:template_new",
        SUPERVISOR,
        lambda a: {},
        lambda a, b: {
            "store": b.store.pk,
            "case_type": "lost",
            "language": "en",
            "channel": "chat",
            "name": "x",
            "body": "Hello",
        },
    ),
    (
        "cases:template_preview",
        SUPERVISOR,
        lambda a: {},
        lambda a, b: {
            "store": b.store.pk,
            "case_type": "stalled_in_transit",
            "language": "en",
            "channel": "chat",
            "name": "x",
            "body": "Hello {{ buyer_name }}",
        },
    ),
    (
        "stores:webhook_redeliver",
        ADMIN,
        lambda a: {"code": a.store.code, "pk": a.endpoint.pk, "delivery_pk": 0},
        lambda a, b: {},
    ),
]


@pytest.mark.parametrize(
    ("name", "who", "kwargs", "data"),
    [pytest.param(*row, id=f"{row[0]}-{index}") for index, row in enumerate(BODY_CROSS)],
)
@pytest.mark.django_db
def test_store_b_named_in_the_body(world, name, who, kwargs, data):
    a, b = world.a, world.b
    if name == "stores:webhook_redeliver":  # B's delivery under A's endpoint
        url = reverse(name, kwargs=kwargs(a) | {"delivery_pk": b.delivery.pk})
    else:
        url = reverse(name, kwargs=kwargs(a))
    sent = data(a, b)
    before = _footprint(b.store)
    response = _client(world, who).post(url, sent, HTTP_HX_REQUEST="true")
    assert response.status_code < 500, (url, response.status_code)
    assert _footprint(b.store) == before, f"{name} changed store B"
    body = _body(response)
    leaked = [m for m in b.markers if m.encode() in body and m not in str(sent)]
    assert not leaked, f"{name} shows store B's {leaked}"


# --- the storefront API --------------------------------------------------------------------------------


def api_keys(*, write: Any, read: Any = None, other: Any = 404) -> dict[str, Any]:
    """No key: 401. Store B's key: 404 for store A's object (`other` for a collection: its own rows).
    A read-only key reads as the store's key does; it writes nothing (403)."""
    return {NO_KEY: 401, OTHER_KEY: other, READ_KEY: write if read is None else read, WRITE_KEY: write}


READS = api_keys(write=200)
WRITES = api_keys(write=200, read=403)

# (route name, method): the answers. The routes naming an object are asked with the paths and bodies of
# tests.api.api_object_routes, the cross-store table tests/cases/test_api_cases.py asks too; the others
# with the paths and bodies of API_COLLECTIONS.
API_MATRIX: dict[tuple[str, str], dict[str, Any]] = {
    ("api-store", "get"): api_keys(write=200, other=200),
    ("api-sku", "get"): READS,
    ("api-sku", "put"): api_keys(write=200, read=403, other=201),  # B's key makes B's own SKU of that code
    ("api-sku-stock", "put"): WRITES,
    ("api-live-session", "get"): READS,
    ("api-live-session", "put"): api_keys(write=200, read=403, other=201),
    ("api-orders-bulk", "post"): api_keys(write=400, read=403, other=400),
    ("api-order", "get"): READS,
    ("api-order", "put"): api_keys(write=200, read=403, other=400),  # B has no SKU of A's code: refused
    ("api-order", "patch"): WRITES,
    ("api-cases", "get"): api_keys(write=200, other=200),
    ("api-case", "get"): READS,
    ("api-case-notes", "post"): api_keys(write=201, read=403),
    ("api-case-buyer-replies", "post"): api_keys(write=201, read=403),
    ("api-case-compensations", "post"): api_keys(write=400, read=403),  # the world's refund is proposed
    ("api-case-evidence", "get"): READS,
    ("api-case-evidence", "post"): api_keys(write=415, read=403),
    ("api-compensation", "get"): READS,
    ("api-compensation-result", "post"): api_keys(write=400, read=403),
    ("api-complaints", "post"): api_keys(write=400, read=403, other=400),
    ("api-complaints-classify", "post"): api_keys(write=400, read=403, other=400),
    ("api-events", "get"): api_keys(write=200, other=200),
    ("api-event-ack", "post"): WRITES,
    ("api-webhook-endpoints", "get"): api_keys(write=200, other=200),
    ("api-webhook-endpoints", "post"): api_keys(write=400, read=403, other=400),
    ("api-webhook-endpoint", "get"): READS,
    ("api-webhook-endpoint", "patch"): WRITES,
    ("api-webhook-endpoint", "delete"): api_keys(write=204, read=403),
    ("api-webhook-endpoint-deliveries", "get"): READS,
    ("api-webhook-delivery-redeliver", "post"): api_keys(write=202, read=403),
}

# The routes that name no object of the store (collections, and the PUTs by natural key), with their bodies:
# an empty one where a 400 says the key was let through.
API_COLLECTIONS: list[tuple[str, str, Any]] = [
    ("get", "store", None),
    ("put", "skus/{sku}", {"name": "Renamed", "unit_price": "2.00"}),
    ("put", "live-sessions/{live_session}", {"title": "Renamed", "started_at": "2026-11-11T20:00:00+08:00"}),
    ("post", "orders/bulk", {}),
    ("put", "orders/{order_id}", None),  # the order's own body, built by tests.api.order_body
    ("get", "cases", None),
    ("post", "complaints", {}),
    ("post", "complaints/classify", {}),
    ("get", "events", None),
    ("get", "webhook-endpoints", None),
    ("post", "webhook-endpoints", {}),
]


def _api_calls(a) -> list[tuple[str, str, str, Any]]:
    """(route name, method, path, body) of every API call the matrix makes, from the world's store A."""
    from django.urls import resolve

    from tests.api import order_body

    names = {"sku": a.sku.code, "live_session": a.session.external_id, "order_id": a.order.platform_order_id}
    calls = [(m, p.format(**names), b) for m, p, b in API_COLLECTIONS]
    calls += api_object_routes(
        sku=a.sku.code, live_session=a.session.external_id, order_id=a.order.platform_order_id, case=a.case,
        event=a.event, endpoint=a.endpoint, delivery=a.delivery, compensation=a.proposed,
    )  # fmt: skip
    found = []
    for method, path, body in calls:
        if path.startswith("orders/") and method == "put":
            body = order_body(sku=a.sku.code)
        found.append((resolve(f"/api/v1/{path}").url_name, method, path, body))
    return found


@pytest.mark.parametrize(
    ("name", "method", "who"),
    [pytest.param(n, m, w, id=f"{n}[{m}]-{w}") for n, m in API_MATRIX for w in KEYS],
)
@pytest.mark.django_db
def test_api_route(world, name, method, who):
    a = world.a
    ((path, body),) = [(p, b) for n, m, p, b in _api_calls(a) if (n, m) == (name, method)]
    headers = {"HTTP_IDEMPOTENCY_KEY": f"acl-{name}-{who}"} if method == "post" else {}
    if who != NO_KEY:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {world.keys[who]}"
    client = Client()
    url = f"/api/v1/{path}"
    expected = API_MATRIX[(name, method)][who]
    watched = method != "get" and (who in (NO_KEY, OTHER_KEY) or expected in REFUSED)
    before = _footprint(a.store) if watched else None
    if method == "get":
        response = client.get(url, **headers)
    else:
        data = json.dumps(body) if body is not None else ""
        response = getattr(client, method)(url, data, content_type="application/json", **headers)
    assert response.status_code == expected, (who, method, url, response.content[:500])
    if watched:
        assert _footprint(a.store) == before, f"{name} changed store A for {who}"
    if response.status_code >= 400:
        problem(response)
    _assert_no_leak(world, who, name, response.content, url + json.dumps(body))


@pytest.mark.django_db
def test_the_api_table_asks_every_api_view(world):
    """Every (route, method) the API's views answer is in API_MATRIX, and the matrix has a path to ask it."""
    answered = set()
    for name, pattern in _routes():
        view = getattr(pattern.callback, "view_class", None)
        if name.startswith("api-") and name not in ("api-schema", "api-docs"):
            answered |= {(name, m) for m in ("get", "put", "post", "patch", "delete") if hasattr(view, m)}
    assert answered == set(API_MATRIX)
    assert {(n, m) for n, m, _p, _b in _api_calls(world.a)} == set(API_MATRIX)


# --- the admin -----------------------------------------------------------------------------------------

# Every model in the admin and who reaches it: "store" (StoreScopedAdmin: the store's supervisors and admins,
# each seeing their stores' rows), "store or global" (StoreOrGlobalAdmin: the same, beside the shipped
# defaults), "store admins" (the same for the store's admins only), "superuser" (Django's permissions, which
# no store role grants).
ADMIN_MODELS: dict[str, str] = {
    "auth.group": "superuser",
    "auth.user": "superuser",
    "django_q.schedule": "superuser",
    "django_q.success": "superuser",
    "django_q.failure": "superuser",
    "django_q.ormq": "superuser",
    "axes.accessattempt": "superuser",
    "axes.accesslog": "superuser",
    "axes.accessfailurelog": "superuser",
    "portal.store": "superuser",
    "portal.membership": "superuser",
    "tracking.sku": "superuser",
    "tracking.stocklevel": "superuser",
    "tracking.livesession": "superuser",
    "tracking.order": "superuser",
    "tracking.shipment": "superuser",
    "tracking.trackingevent": "superuser",
    "tracking.trackingconnection": "superuser",
    "tracking.webhookdelivery": "superuser",
    "tracking.scheduledpush": "superuser",
    "tracking.unmatchedtracking": "superuser",
    "tracking.trackingregistration": "superuser",
    "cases.case": "superuser",
    "cases.caseevent": "superuser",
    "cases.storepolicy": "store",
    "cases.carrierpolicy": "store",
    "cases.messagetemplate": "store or global",
    "cases.appealscenario": "store or global",
    "cases.evidence": "superuser",
    "cases.appeal": "superuser",
    "cases.custodyentry": "superuser",
    "cases.buyermessage": "superuser",
    "cases.storefrontevent": "superuser",
    "cases.compensation": "superuser",
    "cases.claim": "superuser",
    "cases.healththreshold": "store admins",
}
ADMIN_PEOPLE = (ANON, OTHER_ADMIN, AGENT, SUPERVISOR, ADMIN)


def staff(status: Any) -> dict[str, Any]:
    """Staff only (the store's supervisors and admins, as in the demo); an agent is sent to log in."""
    return {ANON: ADMIN_LOGIN, AGENT: ADMIN_LOGIN, OTHER_ADMIN: status, SUPERVISOR: status, ADMIN: status}


ADMIN_SITE: dict[str, dict[str, Any]] = {
    "admin:index": staff(200),
    "admin:app_list": staff(200),  # asked for "cases", where the store's settings are
    "admin:login": {ANON: 200, AGENT: 200, OTHER_ADMIN: 302, SUPERVISOR: 302, ADMIN: 302},
    "admin:logout": {ANON: 302, AGENT: 302, OTHER_ADMIN: LOGIN, SUPERVISOR: LOGIN, ADMIN: LOGIN},
    "admin:password_change": staff(200),
    "admin:password_change_done": staff(200),
    "admin:autocomplete": staff(403),  # no field named: refused
    "admin:jsi18n": staff(200),
    "admin:view_on_site": staff(404),  # a case has no public URL to send anyone to
    "admin:auth_user_password_change": staff(403),  # another user's password: superusers
}
ADMIN_VIEWS = ("changelist", "add", "change", "history", "delete")


def _admin_matrix() -> dict[str, tuple[str, str]]:
    """admin route name -> (model label, view) for the models' pages; ("", "") for the site's."""
    found = dict.fromkeys(ADMIN_SITE, ("", ""))
    for label in ADMIN_MODELS:
        app, model = label.split(".")
        found |= {f"admin:{app}_{model}_{view}": (label, view) for view in ADMIN_VIEWS}
    return found


def _admin_object(a, label: str):
    """Store A's row of the model (its own, made here when the world has none), or None."""
    from django.apps import apps

    model = apps.get_model(label)
    if label == "cases.storepolicy":
        return model.objects.get_or_create(store=a.store)[0]
    if label == "cases.carrierpolicy":
        return model.objects.get_or_create(store=a.store, carrier="jtexpress-my")[0]
    if label == "cases.appealscenario":
        return model.objects.get_or_create(
            store=a.store, code="acl-own", defaults={"platform": a.store.platform, "name": "Own"}
        )[0]
    if label == "cases.healththreshold":
        return model.objects.get_or_create(
            store=a.store, platform=a.store.platform, metric="late_dispatch",
            defaults={"recommended_percent": 2, "penalty_percent": 4},
        )[0]  # fmt: skip
    rows = model.objects.order_by("pk")
    if any(f.name == "store" for f in model._meta.fields):
        rows = rows.filter(store=a.store)
    return rows.first()


def _admin_expect(kind: str, view: str, who: str, *, exists: bool) -> Any:
    """The admin's answer: Django's own rules (staff only; a model's permissions; a row outside the
    queryset "does not exist"), with portal.admin's store scoping for the store's settings."""
    if who in (ANON, AGENT):  # not staff
        return ADMIN_LOGIN
    if kind == "superuser" or (kind == "store admins" and who == SUPERVISOR):
        # refused whatever the row; only the history page looks the row up first, in the queryset
        return GONE if view == "history" and (not exists or kind != "superuser") else 403
    # the store's settings: store B's admin sees B's rows (and the defaults), never A's
    if view in ("changelist", "add") or who != OTHER_ADMIN:
        return 200
    return GONE


@pytest.mark.parametrize(
    ("name", "who"),
    [pytest.param(n, w, id=f"{n}-{w}") for n in sorted(_admin_matrix()) for w in ADMIN_PEOPLE],
)
@pytest.mark.django_db
def test_admin_route(world, name, who):
    a = world.a
    kind, view = _admin_matrix()[name]
    exists = True
    if name in ADMIN_SITE:
        kwargs = {}
        if name == "admin:auth_user_password_change":
            kwargs = {"id": world.users[AGENT].pk}
        if name == "admin:view_on_site":
            from django.contrib.contenttypes.models import ContentType

            kwargs = {"content_type_id": ContentType.objects.get_for_model(a.case).pk, "object_id": a.case.pk}
        if name == "admin:app_list":
            kwargs = {"app_label": "cases"}
        url = reverse(name, kwargs=kwargs)
        expected = ADMIN_SITE[name][who]
    else:
        obj = _admin_object(a, kind) if view in ("change", "history", "delete") else None
        exists = obj is not None
        args = [obj.pk if exists else 0] if view in ("change", "history", "delete") else []
        url = reverse(name, args=args)
        policy = ADMIN_MODELS[kind]
        expected = _admin_expect(policy, view, who, exists=exists)
    client = _client(world, who if who != ANON else ANON)
    response = client.post(url) if name == "admin:logout" else client.get(url)
    assert _outcome(response, expected) == expected, (who, url, response.status_code, _body(response)[:300])
    _assert_no_leak(world, who, name, _body(response), url)


@pytest.mark.parametrize("who", KEYS)
@pytest.mark.django_db
def test_an_unknown_api_path_is_a_problem_404(world, who):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {world.keys[who]}"} if who != NO_KEY else {}
    response = Client().get("/api/v1/no-such-thing", **headers)
    assert response.status_code == 404
    problem(response)


@pytest.mark.parametrize("who", ADMIN_PEOPLE)
@pytest.mark.django_db
def test_the_admin_s_unnamed_routes(world, who):
    """The catch-all (a 404 once staff) and the model's <id>/ redirect to its change page."""
    client = _client(world, who)
    unknown = client.get("/admin/no-such-page/")
    redirect = client.get(f"/admin/cases/case/{world.a.case.pk}/")
    if who in (ANON, AGENT):
        assert (_outcome(unknown, ADMIN_LOGIN), _outcome(redirect, ADMIN_LOGIN)) == (ADMIN_LOGIN, ADMIN_LOGIN)
    else:
        assert unknown.status_code == 404
        assert redirect["Location"] == reverse("admin:cases_case_change", args=[world.a.case.pk])
