"""The API's shared conventions, through its endpoints: keys, scopes, problem documents, body limits,
rate limits, Idempotency-Key, the schema and its docs."""

from __future__ import annotations

import base64
import threading
from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.urls import get_resolver

from cases.models import CaseEvent
from portal.api.idempotency import idempotency_prune
from portal.models import ApiKey, IdempotencyKey
from portal.services import api_key_revoke
from tests.api import Api, fields, problem
from tests.factories import make_case, make_store
from tracking.models import SKU


@pytest.fixture
def api(store):
    return Api(store)


@pytest.mark.django_db
def test_a_key_sees_its_store(api, store):
    response = api.get("store")
    assert response.status_code == 200
    assert response.json()["code"] == store.code
    assert response.json()["scopes"] == ["read", "write"]
    assert ApiKey.objects.get().last_used_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "missing"),
        ("Bearer afd_not-a-key", "unknown"),
        ("Basic dXNlcjpwYXNz", "another scheme"),
        ("Bearer", "empty"),
    ],
)
def test_without_a_valid_key_it_is_a_401_problem(store, header, why):
    client = Client(HTTP_AUTHORIZATION=header) if header else Client()
    response = client.get("/api/v1/store")
    assert response.status_code == 401, why
    assert problem(response)["code"] == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_a_revoked_key_is_refused_from_the_next_request(api):
    assert api.get("store").status_code == 200
    api_key_revoke(key=api.key)
    assert api.get("store").status_code == 401


@pytest.mark.django_db
def test_a_read_only_key_reads_and_cannot_write(store):
    api = Api(store, read_only=True)
    assert api.get("store").status_code == 200
    response = api.put("skus/A", {"name": "A", "unit_price": "1.00"})
    assert response.status_code == 403
    assert problem(response)["code"] == "forbidden"
    assert not SKU.objects.exists()


@pytest.mark.django_db
def test_an_unknown_path_under_the_api_is_a_problem_404(api):
    response = api.get("no-such-thing")
    assert response.status_code == 404
    assert problem(response)["code"] == "not_found"


@pytest.mark.django_db
def test_a_wrong_method_is_a_problem_405(api):
    response = api.delete("store")
    assert response.status_code == 405
    assert problem(response)["code"] == "method_not_allowed"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"{not json", "malformed_body", None),
        (b"", "malformed_body", None),
        (b"[]", "validation_error", ""),
        (b'{"name": "A", "unit_price": 1.5}', "validation_error", "unit_price"),
        (b'{"name": "A", "unit_price": "-1"}', "validation_error", "unit_price"),
        (b'{"name": "A", "unit_price": "1.00", "colour": "red"}', "validation_error", "colour"),
        (b'{"unit_price": "1.00"}', "validation_error", ""),
    ],
)
def test_bad_bodies_are_a_400_naming_the_field_and_write_nothing(api, body, code, field):
    response = api.put("skus/A", body)
    assert response.status_code == 400
    document = problem(response)
    assert document["code"] == code
    if field is not None:
        assert field in {error["field"] for error in document["errors"]}
    assert not SKU.objects.exists()


@pytest.mark.django_db
def test_an_unknown_field_is_named_in_the_message(api):
    response = api.put("skus/A", {"name": "A", "unit_price": "1.00", "colour": "red"})
    assert "colour" in problem(response)["detail"]


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_a_415(api):
    response = api.client.put("/api/v1/skus/A", "name=A", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert problem(response)["code"] == "unsupported_media_type"


@pytest.mark.django_db
@override_settings(API_MAX_BODY_BYTES=64 * 1024)
def test_a_body_over_the_limit_is_a_413_and_writes_nothing(api):
    response = api.put("skus/A", {"name": "A", "unit_price": "1.00", "padding": "x" * 70_000})
    assert response.status_code == 413
    assert "65,536" in problem(response)["detail"]
    assert not SKU.objects.exists()


@pytest.mark.django_db
def test_a_body_larger_than_djangos_form_cap_is_read(api):
    """Django refuses request bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB, for forms) with an HTML 400;
    the API reads up to its own limit."""
    response = api.put("skus/A", {"name": "A", "unit_price": "1.00", "padding": "x" * 3_000_000})
    assert response.status_code == 400  # refused for the unknown field, not for the size
    assert problem(response)["code"] == "validation_error"


@pytest.mark.django_db
@override_settings(API_RATE_LIMIT="3/min")
def test_past_the_rate_limit_it_is_a_429_with_retry_after(api, store):
    other = Api(store)
    statuses = [api.get("store").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api.get("store")
    assert problem(response)["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    assert other.get("store").status_code == 200  # per key


# --- Idempotency-Key ----------------------------------------------------------------------------------


@pytest.fixture
def case(store):
    return make_case(store=store)


@pytest.mark.django_db
def test_a_retried_post_replays_the_first_answer_and_writes_once(api, case):
    first = api.post(f"cases/{case.pk}/notes", {"text": "Chased J&T"}, headers={"Idempotency-Key": "k-1"})
    again = api.post(f"cases/{case.pk}/notes", {"text": "Chased J&T"}, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert CaseEvent.objects.filter(case=case, kind="note").count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_422(api, case):
    api.post(f"cases/{case.pk}/notes", {"text": "one"}, headers={"Idempotency-Key": "k-2"})
    response = api.post(f"cases/{case.pk}/notes", {"text": "two"}, headers={"Idempotency-Key": "k-2"})
    assert response.status_code == 422
    assert problem(response)["code"] == "idempotency_key_reused"
    assert CaseEvent.objects.filter(case=case, kind="note").count() == 1


@pytest.mark.django_db
def test_json_key_order_and_spacing_do_not_make_another_body(api, case):
    api.post(f"cases/{case.pk}/notes", b'{"text": "one"}', headers={"Idempotency-Key": "k-3"})
    response = api.post(f"cases/{case.pk}/notes", b'{ "text":"one" }', headers={"Idempotency-Key": "k-3"})
    assert response["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_a_refused_post_frees_its_key(api, case):
    refused = api.post(f"cases/{case.pk}/notes", {"text": "   "}, headers={"Idempotency-Key": "k-4"})
    assert refused.status_code == 400
    assert not IdempotencyKey.objects.exists()
    assert (
        api.post(f"cases/{case.pk}/notes", {"text": "   "}, headers={"Idempotency-Key": "k-4"}).status_code
        == 400
    )


@pytest.mark.django_db
def test_keys_are_per_store(api, case):
    other_store = make_store(code="other")
    other_case = make_case(store=other_store)
    api.post(f"cases/{case.pk}/notes", {"text": "one"}, headers={"Idempotency-Key": "shared"})
    response = Api(other_store).post(
        f"cases/{other_case.pk}/notes", {"text": "one"}, headers={"Idempotency-Key": "shared"}
    )
    assert response.status_code == 201
    assert not response.has_header("Idempotent-Replayed")


@pytest.mark.django_db
def test_a_key_in_use_by_a_running_request_is_a_409(api, case):
    from django.utils import timezone

    from portal.api.idempotency import fingerprint

    body = b'{"text": "one"}'
    IdempotencyKey.objects.create(
        store=api.store, key="busy", fingerprint=fingerprint(method="POST", path=f"/api/v1/cases/{case.pk}/notes", body=body),
        method="POST", path="x", created_at=timezone.now(),
    )  # fmt: skip
    response = api.post(f"cases/{case.pk}/notes", body, headers={"Idempotency-Key": "busy"})
    assert response.status_code == 409
    assert response["Retry-After"] == "1"
    assert not CaseEvent.objects.filter(kind="note").exists()


@pytest.mark.django_db
def test_an_invalid_idempotency_key_is_a_400(api, case):
    response = api.post(f"cases/{case.pk}/notes", {"text": "one"}, headers={"Idempotency-Key": "x" * 300})
    assert response.status_code == 400
    assert problem(response)["code"] == "invalid_idempotency_key"


@pytest.mark.django_db
def test_keys_are_forgotten_after_24_hours(api, case):
    from datetime import timedelta

    from django.utils import timezone

    api.post(f"cases/{case.pk}/notes", {"text": "one"}, headers={"Idempotency-Key": "old"})
    assert idempotency_prune(now=timezone.now() + timedelta(hours=23)) == 0
    assert idempotency_prune(now=timezone.now() + timedelta(hours=25)) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_retries_with_one_key_write_once(store):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("real concurrency needs PostgreSQL")
    case = make_case(store=store)
    api = Api(store)
    statuses: list[int] = []

    def post() -> None:
        try:
            response = Api(store, secret=api.secret).post(
                f"cases/{case.pk}/notes", {"text": "once"}, headers={"Idempotency-Key": "race"}
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) <= {201, 409}
    assert CaseEvent.objects.filter(case=case, kind="note").count() == 1


# --- the key's management ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_api_key_prints_the_key_once_and_stores_only_its_hash(store):
    out = StringIO()
    call_command("create_api_key", store.code, "--name", "ERP", "--read-only", stdout=out)
    secret = out.getvalue().strip().splitlines()[-1]
    key = ApiKey.objects.get()
    assert secret.startswith("afd_") and secret.startswith(key.prefix)
    assert secret not in (key.key_hash, key.prefix)
    assert key.scopes == ["read"]
    assert Api(store, secret=secret).get("store").json()["key_name"] == "ERP"


@pytest.mark.django_db
def test_create_api_key_names_the_stores_when_the_code_is_wrong(store):
    with pytest.raises(CommandError, match=store.code):
        call_command("create_api_key", "nope", stdout=StringIO())
    assert not ApiKey.objects.exists()


# --- the schema --------------------------------------------------------------------------------------


def _api_routes() -> set[tuple[str, str]]:
    """Every (path, method) the API's URLs and views answer, from the URL configuration itself."""
    routes = set()
    resolver = get_resolver()
    for pattern in resolver.url_patterns:
        if str(pattern.pattern) != "api/v1/":
            continue
        for included in pattern.url_patterns:
            stack = [("", included)]
            while stack:
                prefix, entry = stack.pop()
                if hasattr(entry, "url_patterns"):
                    stack += [(prefix + str(entry.pattern), sub) for sub in entry.url_patterns]
                    continue
                view = getattr(entry.callback, "view_class", None)
                if view is None:
                    continue
                path = "/api/v1/" + prefix + str(entry.pattern)
                for method in ("get", "put", "post", "patch", "delete"):
                    if hasattr(view, method):
                        routes.add((_openapi_path(path), method))
    return routes


def _openapi_path(path: str) -> str:
    import re

    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)


@pytest.mark.django_db
def test_the_schema_documents_every_endpoint_with_its_errors():
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.1")
    documented = {(path, method) for path, operations in schema["paths"].items() for method in operations}
    assert _api_routes() - documented == set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "401" in operation["responses"], (path, method)
            assert "429" in operation["responses"], (path, method)
            if method in ("put", "post", "patch") and "requestBody" in operation:
                assert operation["requestBody"]["required"] is True
                assert "400" in operation["responses"]
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert "application/problem+json" in answer["content"], (path, method, status)
    assert {"OrderIn", "CaseSnapshot", "Problem", "BulkOut"} <= schema["components"]["schemas"].keys()
    assert schema["components"]["securitySchemes"]["storeApiKey"]["scheme"] == "bearer"


@pytest.mark.django_db
def test_the_api_docs_are_served_without_a_cdn():
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "cdn" not in page.lower()
    assert "/static/" in page


# --- what no database takes (found by schemathesis) -----------------------------------------------------


@pytest.mark.django_db
def test_input_no_database_stores_is_a_4xx_not_a_500(api, case):
    from portal.api.pagination import cursor_for

    body = {"title": "Live", "started_at": "2026-08-25T13:44:32-20:12"}  # an offset PostgreSQL refuses
    assert "started_at" in fields(
        api.put("live-sessions/L1", {**body, "started_at": "0154-08-25T13:44:32-20:12"})
    )
    assert api.put("live-sessions/L1", body).json()["started_at"] == "2026-08-26T09:56:32Z"
    assert "" in fields(
        api.put("live-sessions/L2", {"title": "a\u0000b", "started_at": "2026-08-25T13:44:32Z"})
    )
    assert (
        api.put("live-sessions/L3", {"title": "a\\u0000b", "started_at": "2026-08-25T13:44:32Z"}).status_code
        == 201
    )
    assert api.get("skus/a%00b").status_code == 400
    assert api.get("cases", order="a\x00b").status_code == 400
    assert api.get(f"cases/{2**70}").status_code == 404
    huge = base64.urlsafe_b64encode(f"[{2**70}]".encode()).decode().rstrip("=")
    assert api.get("cases", after=huge).status_code == 400
    assert api.get("cases", after=cursor_for([5])).status_code == 200
    assert api.post(f"cases/{case.pk}/notes%0A", {"text": "x"}).status_code == 404
