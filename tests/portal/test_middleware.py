from __future__ import annotations

import pytest
from django.test import Client, override_settings

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.portal.machine_urls")]


def test_a_machine_endpoint_skips_the_browser_middleware_and_csrf():
    client = Client(enforce_csrf_checks=True)

    response = client.post("/webhooks/machine/hello/", data=b"{}", content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {
        "word": "hello",
        "url_name": "machine",
        "has_session": False,
        "has_user": False,
    }
    assert "X-Frame-Options" not in response  # clickjacking middleware not run
    assert "Content-Language" not in response  # nor locale


def test_an_ordinary_view_under_the_prefix_goes_through_the_whole_stack():
    response = Client().get("/webhooks/browser/")

    assert response.status_code == 200
    assert response.json() == {"user": "AnonymousUser", "has_session": True}
    assert response["X-Frame-Options"] == "DENY"


def test_a_path_under_the_prefix_that_resolves_to_nothing_is_the_usual_404():
    response = Client().post("/webhooks/nothing-here/", data=b"{}", content_type="application/json")

    assert response.status_code == 404


def test_an_exception_in_a_machine_endpoint_becomes_the_usual_response():
    response = Client().post("/webhooks/machine/missing/", data=b"{}", content_type="application/json")

    assert response.status_code == 404


def test_without_the_prefix_setting_a_machine_endpoint_still_works_through_the_stack_and_stays_csrf_exempt():
    with override_settings(MACHINE_ENDPOINT_PREFIXES=()):
        client = Client(enforce_csrf_checks=True)
        response = client.post("/webhooks/machine/hello/", data=b"{}", content_type="application/json")

    assert response.status_code == 200
    assert response.json()["has_session"] is True
    assert response["X-Frame-Options"] == "DENY"


def test_ordinary_pages_keep_their_middleware():
    response = Client().get("/livez")

    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"


def test_a_machine_endpoint_answers_503_with_retry_after_while_the_database_is_unreachable():
    response = Client().post("/webhooks/machine/database-down/", data=b"{}", content_type="application/json")

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "Retry later" in response.json()["error"]
