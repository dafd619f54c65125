from __future__ import annotations

from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils.module_loading import import_string
from django_q.models import Schedule

from tests.factories import make_case, make_order, make_shipment
from tracking.models import TrackingConnection
from tracking.services import EventData, events_ingest
from tracking.tasks import sync_due


@pytest.mark.django_db
def test_create_tracking_connection_prints_the_webhook_url_and_the_secret_once(store, settings):
    settings.PUBLIC_URL = "http://127.0.0.1:8000"
    out = StringIO()
    call_command("create_tracking_connection", store.code, "aftership", stdout=out)

    connection = TrackingConnection.objects.get(store=store, provider="aftership")
    printed = out.getvalue()
    assert f"Webhook URL: http://127.0.0.1:8000/webhooks/tracking/aftership/{connection.uuid}/" in printed
    assert connection.webhook_secret in printed

    out = StringIO()
    call_command(
        "create_tracking_connection", store.code, "aftership", "--secret", "my-own-secret", stdout=out
    )
    connection.refresh_from_db()
    assert connection.webhook_secret == "my-own-secret"
    assert "my-own-secret" not in out.getvalue()
    assert TrackingConnection.objects.count() == 1


@pytest.mark.django_db
def test_a_kuaidi100_connection_is_made_with_its_customer_and_told_its_secret_is_sent_for_it(store):
    out = StringIO()
    call_command(
        "create_tracking_connection", store.code, "kuaidi100", "--api-key", "k100-key", "--customer", "C123",
        stdout=out,
    )  # fmt: skip

    connection = TrackingConnection.objects.get(provider="kuaidi100")
    assert connection.credentials == {"api_key": "k100-key", "customer": "C123"}
    assert f"sent to Kuaidi100 with every subscription): {connection.webhook_secret}" in out.getvalue()


@pytest.mark.django_db
def test_the_webhook_url_is_built_on_the_portals_public_url(store, settings):
    settings.PUBLIC_URL = "https://desk.example.com"
    out = StringIO()
    call_command("create_tracking_connection", store.code, "17track", stdout=out)
    connection = TrackingConnection.objects.get()
    assert (
        f"Webhook URL: https://desk.example.com/webhooks/tracking/17track/{connection.uuid}/"
        in out.getvalue()
    )

    out = StringIO()
    call_command(
        "create_tracking_connection",
        store.code,
        "17track",
        "--base-url",
        "https://other.example/",
        stdout=out,
    )
    assert (
        f"Webhook URL: https://other.example/webhooks/tracking/17track/{connection.uuid}/" in out.getvalue()
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [(["nope", "aftership"], "No store"), (["store-a", "aftership", "--secret", "short"], "at least 8")],
)
def test_create_tracking_connection_refuses_bad_input(store, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_tracking_connection", *args)
    assert not TrackingConnection.objects.exists()


@pytest.mark.django_db
def test_setup_schedules_is_idempotent():
    call_command("setup_schedules", stdout=StringIO())
    call_command("setup_schedules", stdout=StringIO())

    names = set(Schedule.objects.values_list("name", flat=True))
    assert {
        "tracking: process deliveries",
        "tracking: sync due shipments",
        "cases: evaluate due exception rules",
    } <= names
    assert Schedule.objects.count() == len(names)


# Every background step and how often it runs: (task path, (schedule type, minutes or None)).
DECLARED = [
    ("tracking.tasks.process_deliveries", (Schedule.MINUTES, 1)),
    ("tracking.tasks.sync_due", (Schedule.MINUTES, 5)),
    ("tracking.tasks.register_due", (Schedule.MINUTES, 1)),
    ("tracking.tasks.match_unmatched", (Schedule.MINUTES, 2)),
    ("tracking.tasks.send_scheduled_pushes", (Schedule.MINUTES, 1)),
    ("tracking.tasks.prune_history", (Schedule.HOURLY, None)),
    ("tracking.tasks.run_imports", (Schedule.MINUTES, 1)),
    ("cases.tasks.evaluate_due", (Schedule.MINUTES, 1)),
    ("cases.tasks.evaluate_stores", (Schedule.MINUTES, 5)),
    ("cases.tasks.deliver_messages", (Schedule.MINUTES, 1)),
    ("cases.tasks.evaluate_orders", (Schedule.MINUTES, 1)),
    ("cases.tasks.deliver_webhooks", (Schedule.MINUTES, 1)),
    ("cases.tasks.prune_storefront_events", (Schedule.HOURLY, None)),
    ("cases.tasks.prune_withdrawn_evidence", (Schedule.DAILY, None)),
    ("portal.tasks.prune_idempotency_keys", (Schedule.HOURLY, None)),
    ("cases.reporting.tasks.live_reviews_due", (Schedule.MINUTES, 15)),
    ("cases.reporting.tasks.refresh_rollups", (Schedule.MINUTES, 1)),
    ("cases.reporting.tasks.reconcile_rollups", (Schedule.DAILY, None)),
    ("cases.tasks.compact_queue_counts", (Schedule.MINUTES, 1)),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("func", "every"), DECLARED)
def test_each_background_step_is_a_declared_schedule_of_a_task_that_exists(func, every):
    call_command("setup_schedules", stdout=StringIO())

    schedule = Schedule.objects.get(func=func)
    assert (schedule.schedule_type, schedule.minutes if every[1] else None, schedule.repeats) == (*every, -1)
    assert callable(import_string(func))  # a mistyped path would be a schedule that never runs


@pytest.mark.django_db
def test_no_schedule_is_declared_but_those():
    call_command("setup_schedules", stdout=StringIO())
    assert sorted(Schedule.objects.values_list("func", flat=True)) == sorted(func for func, _ in DECLARED)


@pytest.mark.django_db
def test_the_masked_secret_never_shows_the_whole_secret(store):
    connection = TrackingConnection.objects.create(
        store=store, provider="kdniao", webhook_secret="abcd1234efgh5678"
    )

    assert connection.masked_secret.startswith("abcd")
    assert "efgh5678" not in connection.masked_secret


@pytest.mark.django_db
def test_the_shipment_page_shows_normalized_and_raw_text_in_the_store_timezone(agent_client, store):
    from datetime import UTC, datetime

    shipment = make_shipment(order=make_order(store=store))
    events_ingest(
        shipment=shipment,
        events=[EventData(checkpoint_at=datetime(2026, 11, 19, 1, 12, tzinfo=UTC), tag="InTransit",
                          subtag="InTransit_002", source="aftership", raw_code="1", raw_text="快件已由杭州余杭网点揽收")],
    )  # fmt: skip

    body = agent_client.get(reverse("tracking:shipment", args=[shipment.pk])).content.decode()

    assert "快件已由杭州余杭网点揽收" in body
    assert "In transit" in body
    assert "Acceptance scan" in body  # what InTransit_002 means, beside the code
    assert "2026-11-19 09:12" in body  # 01:12 UTC in Asia/Kuala_Lumpur


@pytest.mark.django_db
def test_the_shipment_page_leads_back_to_the_parcels_cases_and_says_when_it_is_polled_next(
    agent_client, store, django_assert_num_queries
):
    from cases.services import case_raise

    case = make_case(store=store, type="stalled_in_transit")
    shipment = case.shipment
    TrackingConnection.objects.create(store=store, provider="aftership", webhook_secret="s" * 16)
    other, _ = case_raise(type="delivery_failed", order=shipment.order, shipment=shipment, summary="Failed")
    type(other).objects.filter(pk=other.pk).update(assignee=agent_client.agent)
    page = reverse("tracking:shipment", args=[shipment.pk])

    # session, user, memberships, shipment, events, cases, whether a connection polls it, its registrations
    # with the providers: none per row
    with django_assert_num_queries(8):
        body = agent_client.get(page).content.decode()

    cases = body[body.index('id="parcel-cases"') :]
    cases = cases[: cases.index("</section>")]
    for raised in (case, other):
        assert f'href="{reverse("cases:detail", args=[raised.pk])}"' in cases
    assert "Stalled in transit" in cases
    assert f"<td>{agent_client.agent.get_username()}</td>" in cases  # the assignee
    assert "Not polled" not in body and "Stopped: delivered" not in body  # a new parcel is due for polling

    local = shipment.next_poll_at.astimezone(ZoneInfo(store.timezone))
    assert body.split("data-next-poll>", 1)[1].startswith(f"{local:%Y-%m-%d %H:%M}")
    TrackingConnection.objects.filter(store=store).update(pull_enabled=False)  # pushes only, now
    assert "None: no provider of this store polls it" in agent_client.get(page).content.decode()
    type(shipment).objects.filter(pk=shipment.pk).update(status="Delivered", next_poll_at=None)
    assert "Stopped: delivered" in agent_client.get(page).content.decode()

    bare = make_shipment(order=make_order(store=store))
    assert (
        "No case has been raised on this parcel."
        in agent_client.get(reverse("tracking:shipment", args=[bare.pk])).content.decode()
    )


@pytest.mark.django_db
def test_the_shipment_page_says_whether_each_provider_pushes_the_parcels_updates_and_why_not(
    agent_client, store
):
    from datetime import UTC, datetime

    from tracking.models import TrackingRegistration

    shipment = make_shipment(order=make_order(store=store))
    page = reverse("tracking:shipment", args=[shipment.pk])
    seventeen = TrackingConnection.objects.create(store=store, provider="17track", webhook_secret="s" * 16)
    registration = TrackingRegistration.objects.create(
        connection=seventeen, shipment=shipment, status="refused", attempts=2,
        next_attempt_at=datetime(2026, 12, 3, 4, 0, tzinfo=UTC), error="-18019903: Carrier can not be detected.",
    )  # fmt: skip

    body = agent_client.get(page).content.decode()
    assert "Pushes from 17TRACK" in body
    assert "Carrier can not be detected." in body
    assert "asked again 2026-12-03 12:00" in body  # in the store's time zone

    type(registration).objects.filter(pk=registration.pk).update(next_attempt_at=None)
    assert "given up: an admin can ask again" in agent_client.get(page).content.decode()
    type(registration).objects.filter(pk=registration.pk).update(
        status="registered", registered_at=datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    )
    assert "Registered 2026-12-01 10:00" in agent_client.get(page).content.decode()


@pytest.mark.django_db
def test_the_shipment_page_lists_no_case_of_another_store_even_one_linked_to_the_parcel(
    agent_client, store, other_store
):
    shipment = make_shipment(order=make_order(store=store))
    theirs = make_case(store=other_store)
    type(theirs).objects.filter(pk=theirs.pk).update(shipment=shipment)  # an inconsistent link, forced

    body = agent_client.get(reverse("tracking:shipment", args=[shipment.pk])).content.decode()

    assert reverse("cases:detail", args=[theirs.pk]) not in body
    assert "No case has been raised on this parcel." in body


@pytest.mark.django_db
def test_another_stores_shipment_page_is_a_404(agent_client, other_store):
    theirs = make_shipment(order=make_order(store=other_store))

    assert agent_client.get(reverse("tracking:shipment", args=[theirs.pk])).status_code == 404


@pytest.mark.django_db
def test_an_agent_refreshes_a_parcels_tracking_and_the_next_polling_round_brings_the_carriers_news(
    agent_client, store
):
    TrackingConnection.objects.create(
        store=store, provider="simulator", webhook_secret="s" * 16,
        credentials={"scenario": "delivered", "seed": "7", "anchor": "2026-01-05T00:00:00+00:00"},
    )  # fmt: skip
    shipment = make_shipment(order=make_order(store=store), next_poll_at=None)  # not due: nobody would ask
    page = reverse("tracking:shipment", args=[shipment.pk])
    assert "Refresh tracking" in agent_client.get(page).content.decode()

    response = agent_client.post(reverse("tracking:shipment-refresh", args=[shipment.pk]), follow=True)

    assert response.redirect_chain == [(page, 302)]
    assert "Tracking refresh requested" in response.content.decode()
    assert sync_due() == 1
    shipment.refresh_from_db()
    assert shipment.events.exists()
    assert (shipment.status, shipment.next_poll_at) == ("Delivered", None)  # delivered: polling stops again
    assert "Acceptance scan" in agent_client.get(page).content.decode()


@pytest.mark.django_db
def test_a_refresh_where_no_provider_polls_says_so_and_changes_nothing(agent_client, store, other_store):
    TrackingConnection.objects.create(
        store=store, provider="aftership", webhook_secret="s" * 16, pull_enabled=False
    )
    shipment = make_shipment(order=make_order(store=store), next_poll_at=None)
    page = reverse("tracking:shipment", args=[shipment.pk])
    body = agent_client.get(page).content.decode()
    assert "Refresh tracking" not in body and "Updates by carrier push only" in body

    response = agent_client.post(reverse("tracking:shipment-refresh", args=[shipment.pk]), follow=True)
    assert "arrive only when the carrier pushes them" in response.content.decode()
    shipment.refresh_from_db()
    assert shipment.next_poll_at is None

    theirs = make_shipment(order=make_order(store=other_store), next_poll_at=None)
    TrackingConnection.objects.create(store=other_store, provider="simulator", webhook_secret="s" * 16)
    assert agent_client.post(reverse("tracking:shipment-refresh", args=[theirs.pk])).status_code == 404
    assert agent_client.get(reverse("tracking:shipment-refresh", args=[shipment.pk])).status_code == 405
    theirs.refresh_from_db()
    assert theirs.next_poll_at is None


def test_carrier_codes_read_as_brand_names_in_the_language_asked_and_unknown_codes_as_they_are():
    from tracking.carriers import carrier_name

    assert carrier_name("ninjavan-my") == "Ninja Van"
    assert carrier_name(" ZTO ") == "ZTO Express"
    assert carrier_name("ZTO", language="zh-hans") == "中通快递"
    assert carrier_name("sf", language="zh-hans") == "顺丰速运"
    assert carrier_name("sf", language="ms") == "SF Express"  # no Malay catalogue: the English name
    assert carrier_name("acme-couriers") == "acme-couriers"
    assert carrier_name("") == ""
