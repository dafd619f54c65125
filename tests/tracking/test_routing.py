"""A store that tracks with several providers: each parcel is polled and registered by the connection that
tracks its carrier (tracking.selectors.parcels_tracked_by), set on the connection in the admin or the command."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.factories import make_order, make_shipment
from tests.tracking.test_admin_connections import _form
from tracking.ingest import shipment_poll_now, shipments_claim_for_poll, tracking_sync
from tracking.models import Shipment, TrackingConnection, TrackingRegistration
from tracking.registration import registrations_seed
from tracking.selectors import shipment_is_polled

NOW = timezone.now()


def _connection(store, provider: str, **fields) -> TrackingConnection:
    return TrackingConnection.objects.create(
        store=store, provider=provider, webhook_secret="s" * 16, **fields
    )


def _parcel(store, carrier: str) -> Shipment:
    return make_shipment(
        order=make_order(store=store), carrier=carrier, next_poll_at=NOW - timedelta(minutes=1)
    )


def _claimed(connection) -> set[str]:
    claimed = shipments_claim_for_poll(connection=connection, limit=100, now=NOW)
    return {s.carrier for s in claimed}


@pytest.fixture
def parcels(store):
    return {carrier: _parcel(store, carrier) for carrier in ("ZTO", "yto", "jtexpress-my", "ninjavan-my")}


@pytest.mark.django_db
def test_a_connection_that_names_carriers_polls_those_and_the_other_polls_the_rest(store, parcels):
    kdniao = _connection(store, "kdniao", carriers=["zto", "yto"])
    seventeen = _connection(store, "17track")

    assert _claimed(kdniao) == {"ZTO", "yto"}  # carriers match whatever their case
    assert _claimed(seventeen) == {"jtexpress-my", "ninjavan-my"}


@pytest.mark.django_db
def test_with_no_carriers_named_every_connection_tracks_every_parcel(store, parcels):
    kdniao = _connection(store, "kdniao")
    seventeen = _connection(store, "17track")

    assert len(_claimed(kdniao)) == 4  # claimed first: the other finds them leased
    Shipment.objects.update(next_poll_at=NOW - timedelta(minutes=1))
    assert len(_claimed(seventeen)) == 4


@pytest.mark.django_db
def test_the_carriers_of_an_inactive_connection_go_back_to_the_catch_all(store, parcels):
    _connection(store, "kdniao", carriers=["zto", "yto"], is_active=False)
    seventeen = _connection(store, "17track")

    assert len(_claimed(seventeen)) == 4


@pytest.mark.django_db
def test_registration_seeds_each_parcel_with_the_connection_that_tracks_it(store, parcels):
    kdniao = _connection(store, "kdniao", carriers=["zto", "yto"])
    seventeen = _connection(store, "17track")

    assert registrations_seed(connection=kdniao, now=NOW) == 2
    assert registrations_seed(connection=seventeen, now=NOW) == 2

    by_connection = {
        (r.connection_id, r.shipment.carrier) for r in TrackingRegistration.objects.select_related("shipment")
    }
    assert by_connection == {
        (kdniao.pk, "ZTO"), (kdniao.pk, "yto"), (seventeen.pk, "jtexpress-my"), (seventeen.pk, "ninjavan-my"),
    }  # fmt: skip


@pytest.mark.django_db
def test_a_round_polls_only_its_carriers_and_parcels_of_a_push_only_connection_are_left_to_pushes(
    store, parcels
):
    simulator = _connection(
        store, "simulator", carriers=["jtexpress-my", "ninjavan-my"],
        credentials={"scenario": "delivered", "seed": "7", "anchor": "2026-01-05T00:00:00+00:00"},
    )  # fmt: skip
    _connection(store, "kdniao", pull_enabled=False)  # pushes the mainland parcels

    result = tracking_sync(connection=simulator, now=NOW)

    assert result.polled == 2
    polled = Shipment.objects.filter(next_poll_at__isnull=True).values_list("carrier", flat=True)
    assert set(polled) == {"jtexpress-my", "ninjavan-my"}  # delivered: polling stopped
    assert [shipment_is_polled(p) for p in parcels.values()] == [False, False, True, True]
    # An agent's refresh of a parcel no pulling connection tracks says so, and changes nothing.
    assert shipment_poll_now(shipment=parcels["ZTO"]) is False


@pytest.mark.django_db
def test_carriers_are_set_in_the_admin_and_shown_with_what_the_catch_all_tracks(admin_client, store):
    kdniao = _connection(store, "kdniao")
    seventeen = _connection(store, "17track")
    url = f"/admin/tracking/trackingconnection/{kdniao.pk}/change/"

    response = admin_client.post(url, _form(carriers="ZTO, yto\nsf  zto"))

    assert response.status_code == 302
    kdniao.refresh_from_db()
    assert kdniao.carriers == ["zto", "yto", "sf"]
    assert "zto, yto, sf</textarea>" in admin_client.get(url).content.decode()
    other = admin_client.get(f"/admin/tracking/trackingconnection/{seventeen.pk}/change/").content.decode()
    assert "every carrier but sf, yto, zto" in other


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("carriers", "message"),
    [
        ("zto, y to!", "“to!” is not a carrier code"),
        ("zto, sf", "Already tracked by another connection of the store: sf ("),
    ],
)
def test_a_bad_or_taken_carrier_is_a_form_error_and_writes_nothing(admin_client, store, carriers, message):
    _connection(store, "17track", carriers=["sf"])
    kdniao = _connection(store, "kdniao")

    response = admin_client.post(
        f"/admin/tracking/trackingconnection/{kdniao.pk}/change/", _form(carriers=carriers)
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    kdniao.refresh_from_db()
    assert kdniao.carriers == []


@pytest.mark.django_db
def test_the_command_sets_the_carriers_and_refuses_taken_ones(store):
    call_command(
        "create_tracking_connection", store.code, "kdniao", "--carriers", "ZTO,yto", stdout=StringIO()
    )
    assert TrackingConnection.objects.get(provider="kdniao").carriers == ["zto", "yto"]

    with pytest.raises(CommandError, match="Already tracked by another connection of the store: zto"):
        call_command(
            "create_tracking_connection", store.code, "17track", "--carriers", "zto", stdout=StringIO()
        )
    assert not TrackingConnection.objects.filter(provider="17track").exists()

    call_command("create_tracking_connection", store.code, "kdniao", "--carriers", "", stdout=StringIO())
    assert TrackingConnection.objects.get(provider="kdniao").carriers == []


@pytest.mark.django_db
def test_carriers_given_to_a_connection_later_get_its_parcels_in_transit_registered_too(
    admin_client, store, parcels
):
    kdniao = _connection(store, "kdniao")
    seventeen = _connection(store, "17track")
    assert registrations_seed(connection=kdniao, now=NOW) == 4  # no carriers named yet: it tracks all
    assert registrations_seed(connection=seventeen, now=NOW) == 4
    TrackingRegistration.objects.filter(connection=kdniao).delete()  # say Kdniao was added for mainland later
    Shipment.objects.filter(pk=parcels["yto"].pk).update(created_at=NOW - timedelta(days=40))  # long settled

    response = admin_client.post(
        f"/admin/tracking/trackingconnection/{kdniao.pk}/change/", _form(carriers="zto, yto")
    )

    assert response.status_code == 302
    kdniao.refresh_from_db()
    seventeen.refresh_from_db()
    assert registrations_seed(connection=kdniao, now=NOW) == 1  # the ZTO parcel in transit; not the old one
    assert registrations_seed(connection=seventeen, now=NOW) == 0  # its registrations stand
    assert set(
        TrackingRegistration.objects.filter(connection=kdniao).values_list("shipment__carrier", flat=True)
    ) == {"ZTO"}
    assert kdniao.registration_cursor == max(p.pk for p in parcels.values())
