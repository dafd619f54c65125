from __future__ import annotations

import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_healthz_reports_the_database_and_whether_the_worker_keeps_up(client):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import make_store
    from tracking.models import TrackingConnection, WebhookDelivery

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "worker": "ok"}

    connection = TrackingConnection.objects.create(
        store=make_store(code="health"), provider="aftership", webhook_secret="s" * 16
    )
    oldest = timezone.now() - timedelta(minutes=8)
    WebhookDelivery.objects.create(connection=connection, body=b"{}", received_at=oldest)
    response = client.get("/healthz")

    assert response.status_code == 200  # this web process is fine: it stays in the load balancer's rotation
    assert response.json() == {
        "status": "degraded", "database": "ok", "worker": "behind", "pushes_waiting": "1",
        "oldest_waiting_since": oldest.isoformat(),
    }  # fmt: skip


@pytest.mark.django_db
def test_the_root_goes_to_the_case_queue(agent_client):
    response = agent_client.get("/")

    assert response.status_code == 302
    assert response.url == reverse("cases:list")


@pytest.mark.django_db
def test_logging_in_lands_on_the_cases(client, agent):
    response = client.post(
        reverse("login"), {"username": "alice", "password": "pw-for-tests-123"}, follow=True
    )

    assert response.redirect_chain[-1][0] == reverse("cases:list")
    assert "alice" in response.content.decode()


@pytest.mark.django_db
def test_a_wrong_password_is_a_form_error(client, agent):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})

    assert response.status_code == 200
    assert "didn" in response.content.decode()


@pytest.mark.django_db
def test_switching_to_chinese_translates_the_queue(agent_client):
    agent_client.post(reverse("set_language"), {"language": "zh-hans", "next": "/cases/"})

    body = agent_client.get(reverse("cases:list")).content.decode()

    assert 'lang="zh-hans"' in body
    assert "工单" in body


@pytest.mark.django_db
def test_the_api_schema_is_served(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert b"openapi" in response.content
