"""The base of every API view, and the API's own endpoint (`GET /api/v1/store`: who am I)."""

from __future__ import annotations

from typing import Any

import msgspec
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.views import APIView

from portal.api.bodies import json_response
from portal.api.idempotency import HEADER, idempotency_claim, idempotency_complete, idempotency_release
from portal.api.problems import ApiError
from portal.api.schema import endpoint
from portal.models import ApiKey, Store


class StoreAPIView(APIView):
    """An endpoint of one store's API. Authentication, scopes, rate limits and errors come from
    REST_FRAMEWORK settings; this adds what DRF has no setting for: the body read up to
    settings.API_MAX_BODY_BYTES (413 beyond, named) and Idempotency-Key on every POST (portal.api.idempotency).
    Handlers return HttpResponses (portal.api.bodies.json_response) and use `self.store`."""

    store: Store
    key: ApiKey

    def body_limit(self) -> int:
        """The largest body this endpoint reads (an upload endpoint takes more than a JSON one)."""
        return settings.API_MAX_BODY_BYTES

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # DRF's APIView.dispatch, with the body read first and the idempotent handler call.
        self.args, self.kwargs = args, kwargs
        limit = self.body_limit()
        too_large = _body_read(request, limit)
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            if too_large:
                raise ApiError(
                    f"The body is larger than the {limit:,} bytes this endpoint takes; "
                    "send fewer orders per request (a bulk request takes up to 1,000), or a smaller file.",
                    status=413,
                    code="body_too_large",
                )
            _path_and_query_check(request, kwargs)
            self.initial(request, *args, **kwargs)
            self.key = request.auth
            self.store = self.key.store
            method = request.method.lower()
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if handler is None:
                handler = self.http_method_not_allowed
            key = request.headers.get(HEADER)
            if request.method == "POST" and key is not None:
                response = self._idempotent(request, handler, key, *args, **kwargs)
            else:
                response = handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    def _idempotent(self, request: Request, handler, key: str, *args: Any, **kwargs: Any) -> HttpResponse:
        claimed = idempotency_claim(
            store=self.store, key=key, method=request.method, path=request.path, body=request.body,
            content_type=request.content_type or "",
        )  # fmt: skip
        if isinstance(claimed, HttpResponse):
            return claimed
        try:
            with transaction.atomic():
                response = handler(request, *args, **kwargs)
                idempotency_complete(claimed, response)
        except BaseException:
            idempotency_release(claimed)
            raise
        response[HEADER] = claimed.key
        return response


BIGINT_MAX = 2**63 - 1


def _path_and_query_check(request: Request, kwargs: dict[str, Any]) -> None:
    """What no database takes: the NUL character in the path or a parameter (a 400), an id beyond 64 bits
    (no such object: a 404)."""
    values = [*request.query_params.keys(), *(v for vs in request.query_params.lists() for v in vs[1])]
    if "\x00" in request.path or any("\x00" in value for value in values):
        raise ApiError(
            "The path and parameters may not contain the NUL character.", status=400, code="invalid_request"
        )
    if any(isinstance(value, int) and not 0 < value <= BIGINT_MAX for value in kwargs.values()):
        raise exceptions.NotFound("No such object in this store.")


def _body_read(request: HttpRequest, limit: int) -> bool:
    """Read the body into request.body up to `limit` bytes, judged on the declared length
    before anything is read. Returns True when it is larger (nothing read). Django's own cap
    (DATA_UPLOAD_MAX_MEMORY_SIZE, made for forms) would refuse a large bulk with an HTML 400."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        return True
    if length > 0 and not hasattr(request, "_body"):
        request._body = request.read(length)
    return False


class StoreOut(msgspec.Struct):
    """The store this API key belongs to, and the key itself."""

    code: str
    name: str
    platform: str
    region: str
    currency: str
    timezone: str
    key_name: str
    key_prefix: str
    scopes: list[str]


class StoreView(StoreAPIView):
    @endpoint(
        summary="The key's store",
        operation_id="store_get",
        description="Which store this API key belongs to, its currency and time zone, and the key's scopes. "
        "A good first call to check a key.",
        tags=["store"],
        responses={200: (StoreOut, "The store and the key.")},
    )
    def get(self, request: Request) -> HttpResponse:
        store, key = self.store, self.key
        return json_response(
            StoreOut(
                code=store.code, name=store.name, platform=store.platform, region=store.region,
                currency=store.currency, timezone=store.timezone, key_name=key.name, key_prefix=key.prefix,
                scopes=list(key.scopes),
            )
        )  # fmt: skip
