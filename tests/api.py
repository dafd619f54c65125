"""A small client for the storefront API in tests: JSON in and out, a store's key in every request."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from portal.models import Store
from portal.services import api_key_create


class Api:
    def __init__(self, store: Store, *, read_only: bool = False, secret: str | None = None):
        self.store = store
        if secret is None:
            self.key, secret = api_key_create(store=store, name=f"test {store.code}", read_only=read_only)
        self.secret = secret
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    def _send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **params
    ):
        url = path if path.startswith("/") else f"/api/v1/{path}"
        extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in (headers or {}).items()}
        if method == "get":
            return self.client.get(url, params, **extra)
        data = body if isinstance(body, (bytes, str)) else json.dumps(body) if body is not None else ""
        return getattr(self.client, method)(url, data, content_type="application/json", **extra)

    def get(self, path: str, **params):
        return self._send("get", path, **params)

    def put(self, path: str, body: Any, **kwargs):
        return self._send("put", path, body, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs):
        return self._send("post", path, body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs):
        return self._send("patch", path, body, **kwargs)

    def delete(self, path: str, **kwargs):
        return self._send("delete", path, **kwargs)


def api_object_routes(
    *, sku: str, live_session: str, order_id: str, case, event, endpoint, delivery, compensation
) -> list[tuple[str, str, Any]]:
    """(method, path, body) of every API route that names one of a store's objects, read and write, each
    with a valid body: another store's key must get 404 on every one (tests/cases/test_api_cases.py) and the
    access matrix asks them with every kind of key (tests/portal/test_access_matrix.py). The PUTs by natural
    key are not here: they name no object of another store, they make the key's own."""
    return [
        ("get", f"skus/{sku}", None),
        ("put", f"skus/{sku}/stock", {"on_hand": 1}),
        ("get", f"live-sessions/{live_session}", None),
        ("get", f"orders/{order_id}", None),
        ("patch", f"orders/{order_id}", {"status": "cancelled"}),
        ("get", f"cases/{case.pk}", None),
        ("post", f"cases/{case.pk}/notes", {"text": "x"}),
        ("post", f"cases/{case.pk}/buyer-replies", {"text": "x"}),
        ("post", f"events/{event.pk}/ack", {"status": "delivered"}),
        ("post", f"cases/{case.pk}/compensations", {"kind": "full_refund"}),
        ("get", f"cases/{case.pk}/evidence", None),
        ("post", f"cases/{case.pk}/evidence", {"kind": "other"}),
        ("get", f"compensations/{compensation.pk}", None),
        ("post", f"compensations/{compensation.pk}/result", {"status": "executed"}),
        ("get", f"webhook-endpoints/{endpoint.pk}", None),
        ("patch", f"webhook-endpoints/{endpoint.pk}", {"is_active": False}),
        ("delete", f"webhook-endpoints/{endpoint.pk}", None),
        ("get", f"webhook-endpoints/{endpoint.pk}/deliveries", None),
        ("post", f"webhook-endpoints/{endpoint.pk}/deliveries/{delivery.pk}/redeliver", None),
    ]


def order_body(order_id: str | None = None, *, sku: str = "SKU-1", quantity: int = 1, **fields: Any) -> dict:
    """A valid order for a MYR store; `fields` override (shipments=[...], live_session=..., ...)."""
    body: dict[str, Any] = {
        "buyer": {"name": "Nur Aisyah", "platform_id": "tt-77001", "phone": "+60123456789", "language": "ms"},
        "address": {"country": "MY", "province": "Selangor", "city": "Petaling Jaya", "district": "SS2",
                    "street": "12 Jalan SS2/55", "postal_code": "47300"},
        "placed_at": "2026-11-11T20:05:00+08:00",
        "ship_by": "2026-11-13T20:05:00+08:00",
        "amount": "59.90",
        "currency": "MYR",
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": "59.90"}],
    }  # fmt: skip
    if order_id is not None:
        body["platform_order_id"] = order_id
    body.update(fields)
    return body


def problem(response) -> dict:
    """The problem document of a refusal, checked to be one."""
    assert response["Content-Type"] == "application/problem+json", response.content
    document = response.json()
    assert document["status"] == response.status_code
    assert {"type", "title", "status", "code", "detail"} <= document.keys()
    return document


def fields(response) -> dict[str, str]:
    return {error["field"]: error["detail"] for error in problem(response).get("errors", [])}
