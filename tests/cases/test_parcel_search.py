"""The queue's search box also finds parcels by tracking number or order id, with a case or without."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import make_case, make_order, make_shipment
from tracking.models import Order, Shipment
from tracking.selectors import shipments_find_for_user

HX = {"HX-Request": "true", "HX-Target": "case-table"}


def parcel_links(body: str) -> list[str]:
    return re.findall(r'data-parcel="(\d+)"', body)


@pytest.mark.django_db
def test_a_tracking_number_with_no_case_finds_its_parcel_and_says_so(agent_client, store):
    parcel = make_shipment(
        order=make_order(store=store, platform_order_id="577001"), tracking_number="JT0001"
    )

    response = agent_client.get(reverse("cases:list"), {"q": "JT0001"})

    body = response.content.decode()
    assert response.status_code == 200
    assert parcel_links(body) == [str(parcel.pk)]
    assert f'href="{reverse("tracking:shipment", args=[parcel.pk])}"' in body
    assert "577001" in body
    assert "No case matches, but the parcel above does" in body


@pytest.mark.django_db
def test_an_order_id_finds_every_parcel_of_the_order_newest_first(agent_client, store):
    order = make_order(store=store, platform_order_id="577002")
    first = make_shipment(order=order, tracking_number="JT0002")
    second = make_shipment(order=order, tracking_number="JT0003", carrier="flash-express")
    second.booked_at = first.booked_at.replace(year=first.booked_at.year + 1)
    second.save(update_fields=["booked_at"])

    response = agent_client.get(reverse("cases:list"), {"q": " 577002 "}, headers=HX)

    assert parcel_links(response.content.decode()) == [str(second.pk), str(first.pk)]


@pytest.mark.django_db
def test_a_number_typed_in_small_letters_still_finds_the_parcel(agent_client, store):
    parcel = make_shipment(order=make_order(store=store), tracking_number="SHP5592982969")

    response = agent_client.get(reverse("cases:list"), {"q": "shp5592982969"})

    assert parcel_links(response.content.decode()) == [str(parcel.pk)]


@pytest.mark.django_db
def test_a_parcel_with_a_case_shows_above_its_case(agent_client, store):
    case = make_case(store=store)
    parcel = case.shipment

    body = agent_client.get(reverse("cases:list"), {"q": parcel.tracking_number}).content.decode()

    assert parcel_links(body) == [str(parcel.pk)]
    assert f'href="{reverse("cases:detail", args=[case.pk])}"' in body
    assert "No case matches" not in body


@pytest.mark.django_db
def test_another_store_s_parcel_is_never_found(agent_client, other_store):
    theirs = make_shipment(
        order=make_order(store=other_store, platform_order_id="577005"), tracking_number="JT0005"
    )

    for term in ("JT0005", "577005"):
        body = agent_client.get(reverse("cases:list"), {"q": term}).content.decode()
        assert parcel_links(body) == []
        assert reverse("tracking:shipment", args=[theirs.pk]) not in body


@pytest.mark.django_db
def test_no_search_no_parcel_lookup_and_a_search_costs_two_queries_more(agent_client, store):
    make_shipment(order=make_order(store=store), tracking_number="JT0006")

    def queries(**params) -> int:
        with CaptureQueriesContext(connection) as ctx:
            body = agent_client.get(reverse("cases:list"), params, headers=HX).content.decode()
        return len(ctx.captured_queries), parcel_links(body)

    plain, none_shown = queries()
    searched, shown = queries(q="JT0006")

    assert none_shown == [] and len(shown) == 1
    assert searched == plain + 3  # the name lookup counts its orders; the order by its id, then its parcels


def shipment_scans(plan: dict) -> list[dict]:
    """Every node of a JSON query plan that reads the shipments table."""
    found = [plan] if plan.get("Relation Name") == "tracking_shipment" else []
    for child in plan.get("Plans", []):
        found += shipment_scans(child)
    return found


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans are PostgreSQL's")
def test_the_lookup_reads_only_the_matching_shipments_through_their_indexes(agent, store):
    parcel = make_shipment(
        order=make_order(store=store, platform_order_id="577007"), tracking_number="JT0007"
    )
    # Other parcels of the store, and statistics: with a table of one row every index on store_id looks as
    # good as the one keyed by the number (the reports' (store, created_at) index was picked then).
    for n in range(120):
        make_shipment(
            order=make_order(store=store, platform_order_id=f"6{n:05d}"), tracking_number=f"JX{n:05d}"
        )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Shipment._meta.db_table}")
        cursor.execute(f"ANALYZE {Order._meta.db_table}")
    for term in ("JT0007", "577007"):
        with CaptureQueriesContext(connection) as ctx:
            assert [s.pk for s in shipments_find_for_user(agent, term)] == [parcel.pk]
        query = ctx.captured_queries[-1]  # after the user's store ids
        with connection.cursor() as cursor:
            # A table this small is cheapest to scan whole; forbid that to see which index path is taken.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN (FORMAT JSON) {query['sql']}")
            plan = cursor.fetchone()[0][0]["Plan"]
        scans = shipment_scans(plan)
        # Each read of the table is keyed by what was searched (or by the ids found so), never a walk over
        # all the stores' shipments filtered afterwards.
        keyed = re.compile(r"\b(tracking_number|order_id|id)\b")  # not store_id alone
        conditions = [scan.get("Index Cond") or scan.get("Recheck Cond") or "" for scan in scans]
        assert conditions and all(keyed.search(condition) for condition in conditions), conditions
