"""Errors as RFC 9457 `application/problem+json`: every refusal of the API, from any layer, in one shape.

    {"type": "about:blank", "title": "Bad Request", "status": 400, "code": "validation_error",
     "detail": "lines[1].quantity: Expected `int` >= 1", "instance": "/api/v1/orders/580001",
     "errors": [{"field": "lines[1].quantity", "detail": "Expected `int` >= 1"}]}

`code` is the stable machine-readable reason; `errors` names each field that was refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

import msgspec
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


class FieldError(msgspec.Struct):
    field: str
    detail: str


class Problem(msgspec.Struct, omit_defaults=True):
    """An error response (RFC 9457)."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: str = ""
    errors: list[FieldError] = []


class ApiError(exceptions.APIException):
    """A refusal with a status, a stable code and a message; field errors optional. Nothing was written."""

    def __init__(
        self,
        detail: str,
        *,
        status: int = 400,
        code: str = "invalid_request",
        errors: Iterable[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(detail=detail, code=code)
        self.status_code = status
        self.problem_code = code
        self.field_errors = [FieldError(field=field, detail=message) for field, message in errors]
        self.headers = dict(headers or {})


def validation_error(errors: Iterable[tuple[str, str]], *, detail: str = "") -> ApiError:
    errors = list(errors)
    detail = detail or "; ".join(f"{field}: {message}" if field else message for field, message in errors)
    return ApiError(detail, status=400, code="validation_error", errors=errors)


def problem_response(
    *,
    status: int,
    code: str,
    detail: str,
    instance: str = "",
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    problem = Problem(
        type="about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        code=code,
        detail=detail,
        instance=instance,
        errors=errors or [],
    )
    response = HttpResponse(msgspec.json.encode(problem), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# DRF's exceptions -> our codes.
_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "malformed_body",
    exceptions.AuthenticationFailed: "unauthenticated",
    exceptions.NotAuthenticated: "unauthenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "validation_error",
}


def _flatten(detail: Any, prefix: str = "") -> list[FieldError]:
    """DRF's nested error dict/list as (field path, message) pairs."""
    if isinstance(detail, Mapping):
        out: list[FieldError] = []
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "detail") else str(key)
            out += _flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name)
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (Mapping, list)) for item in detail):
            return [FieldError(field=prefix, detail=str(item)) for item in detail]
        out = []
        for index, item in enumerate(detail):
            out += _flatten(item, f"{prefix}[{index}]")
        return out
    return [FieldError(field=prefix, detail=str(detail))]


def problem_exception_handler(exc: Exception, context: Mapping[str, Any]) -> HttpResponse | None:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every exception a view raises, as a problem response."""
    request = context.get("request")
    instance = request.path if request is not None else ""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if not isinstance(exc, exceptions.APIException):
        # A bug. DRF rolls the request's transaction back; the caller gets a problem document, not HTML.
        log.error("API error on %s", instance, exc_info=exc)
        return problem_response(
            status=500, code="server_error", instance=instance,
            detail="Something went wrong on our side. Retrying is safe: every write is idempotent.",
        )  # fmt: skip
    headers: dict[str, str] = {}
    errors: list[FieldError] = []
    if isinstance(exc, ApiError):
        code, detail, errors, headers = exc.problem_code, str(exc.detail), exc.field_errors, exc.headers
    elif isinstance(exc, exceptions.ValidationError):
        code = "validation_error"
        errors = _flatten(exc.detail)
        detail = "; ".join(f"{e.field}: {e.detail}" if e.field else e.detail for e in errors)
    else:
        code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
        detail = str(exc.detail)
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    return problem_response(
        status=exc.status_code, code=code, detail=detail, instance=instance, errors=errors, headers=headers
    )


@csrf_exempt  # a caller with a key and no cookie POSTing to a wrong path hears about the path, not CSRF
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any path under /api/v1/ that names no endpoint."""
    return problem_response(
        status=404,
        code="not_found",
        detail="No such endpoint. The API's endpoints are listed at /api/docs/.",
        instance=request.path,
    )
