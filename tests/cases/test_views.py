from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cases.models import Case
from tests.factories import make_case, make_user


@pytest.mark.django_db
def test_the_case_list_shows_the_users_cases_with_their_order_and_parcel(agent_client, store):
    case = make_case(store=store, type="stalled_in_transit")

    response = agent_client.get(reverse("cases:list"))

    assert response.status_code == 200
    body = response.content.decode()
    assert case.order.platform_order_id in body
    assert case.shipment.tracking_number in body
    assert "Stalled in transit" in body


@pytest.mark.django_db
def test_an_agent_never_sees_another_stores_cases_in_the_list(agent_client, store, other_store):
    mine = make_case(store=store)
    theirs = make_case(store=other_store)

    body = agent_client.get(reverse("cases:list"), {"status": "all"}).content.decode()

    assert mine.order.platform_order_id in body
    assert theirs.order.platform_order_id not in body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "params", "headers"),
    [
        ("cases:detail", {}, {}),
        ("cases:detail", {}, {"HX-Request": "true"}),
    ],
)
def test_another_stores_case_is_a_404_on_every_page(agent_client, other_store, name, params, headers):
    theirs = make_case(store=other_store)

    response = agent_client.get(reverse(name, args=[theirs.pk]), params, headers=headers)

    assert response.status_code == 404


@pytest.mark.django_db
def test_filtering_by_another_stores_id_is_refused_not_leaked(agent_client, other_store):
    make_case(store=other_store)

    response = agent_client.get(reverse("cases:list"), {"store": other_store.pk})

    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.django_db
def test_the_case_page_tells_the_parcels_story(agent_client, store):
    case = make_case(store=store)

    response = agent_client.get(reverse("cases:detail", args=[case.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    assert case.shipment.tracking_number in body
    assert "Raised" in body


@pytest.mark.django_db
def test_an_htmx_request_gets_only_the_table_partial(agent_client, store):
    make_case(store=store)

    response = agent_client.get(
        reverse("cases:list"), {"type": "stalled_in_transit"}, headers={"HX-Request": "true"}
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="case-table"')
    assert "<html" not in body


@pytest.mark.django_db
def test_filters_narrow_the_queue(agent_client, store):
    stalled = make_case(store=store, type="stalled_in_transit")
    lost = make_case(store=store, type="lost")

    body = agent_client.get(reverse("cases:list"), {"type": "lost"}).content.decode()
    assert lost.order.platform_order_id in body
    assert stalled.order.platform_order_id not in body

    body = agent_client.get(reverse("cases:list"), {"q": stalled.shipment.tracking_number}).content.decode()
    assert stalled.order.platform_order_id in body
    assert lost.order.platform_order_id not in body


@pytest.mark.django_db
def test_a_malformed_filter_is_a_400_with_a_message(agent_client):
    response = agent_client.get(reverse("cases:list"), {"type": "nonsense", "after": "x"})

    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.django_db
def test_keyset_pages_walk_every_case_once_in_due_order(agent_client, store, monkeypatch):
    monkeypatch.setattr("cases.selectors.PAGE_SIZE", 2)
    made = [make_case(store=store).pk for _ in range(5)]
    url = reverse("cases:list")

    seen: list[int] = []
    params: dict[str, str] = {}
    while True:
        body = agent_client.get(url, params).content.decode()
        seen += [int(pk) for pk in re.findall(r'data-case-id="(\d+)"', body)]
        after = re.search(r'href="\?[^"]*after=(\d+)"', body)
        if not after:
            break
        params = {"after": after.group(1)}
    assert seen == made


@pytest.mark.django_db
def test_the_case_list_needs_a_login(client):
    response = client.get(reverse("cases:list"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.django_db
def test_a_user_with_no_store_sees_an_empty_queue(client, store):
    make_case(store=store)
    client.force_login(make_user("nobody"))

    response = client.get(reverse("cases:list"))

    assert response.status_code == 200
    assert "No cases here." in response.content.decode()


@pytest.mark.django_db
def test_the_case_list_costs_the_same_queries_for_10_and_60_cases(agent_client, store):
    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert agent_client.get(reverse("cases:list")).status_code == 200
        return len(ctx.captured_queries)

    for _ in range(10):
        make_case(store=store)
    with_10 = queries_for_list()
    for _ in range(50):
        make_case(store=store)
    with_60 = queries_for_list()

    assert with_10 == with_60
    assert with_60 <= 7  # session, user, memberships, stores, live sessions, assignees, the page


@pytest.mark.django_db
def test_the_case_page_query_count_does_not_grow_with_the_timeline(
    agent_client, store, django_assert_max_num_queries
):
    case = make_case(store=store)

    # 10 for the case, its order, parcel, timeline, messages and templates; 3 for the compensation panel
    # (its rows, the store's policy, the carrier claim); 2 for the evidence card (the files, the appeals)
    with django_assert_max_num_queries(15):
        assert agent_client.get(reverse("cases:detail", args=[case.pk])).status_code == 200


@pytest.mark.django_db
def test_a_batch_incident_page_lists_its_complaints_and_the_batchs_buyers(agent_client, store):
    from cases.services import case_raise
    from tests.factories import make_sku

    sku = make_sku(store=store, code="SER-30")
    complaint = make_case(store=store, type="damaged")
    incident, _ = case_raise(
        type="quality_batch", order=None, store_id=store.pk, sku_id=sku.pk, lot="LOT-1",
        summary="Quality incident on SER-30 LOT-1",
        facts={"buyers_count": 1, "buyers": [{"platform_order_id": "580999", "buyer_name": "Siti Aminah"}]},
    )  # fmt: skip
    Case.objects.filter(pk=complaint.pk).update(parent=incident)

    body = agent_client.get(reverse("cases:detail", args=[incident.pk])).content.decode()
    assert "1 complaint in this incident" in body
    assert complaint.order.platform_order_id in body
    assert "Siti Aminah" in body

    child = agent_client.get(reverse("cases:detail", args=[complaint.pk])).content.decode()
    assert f'href="{reverse("cases:detail", args=[incident.pk])}"' in child
