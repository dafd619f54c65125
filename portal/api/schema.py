"""The OpenAPI document from the same structs that validate the bodies (portal.api.bodies).

`endpoint(...)` is `extend_schema` for our views: the request and response structs become `$ref`s to
components, and the problem responses the endpoint can give are listed with the problem schema.
`components_hook` (a drf-spectacular postprocessing hook) adds every struct referenced to the components,
as msgspec describes them (JSON Schema 2020-12, which OpenAPI 3.1 uses as is).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import msgspec
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiRequest,
    OpenApiResponse,
    extend_schema,
)

from portal.api.problems import PROBLEM_CONTENT_TYPE, Problem

_STRUCTS: dict[str, type] = {}

# What each problem status means, in every endpoint's list.
PROBLEMS: Mapping[int, str] = {
    400: "Malformed JSON, a wrong type, an unknown field or a value out of range; `errors` names each field.",
    401: "No API key, or an unknown or revoked one.",
    403: "A read-only key tried to write.",
    404: "No such object in this key's store.",
    405: "Method not allowed on this path.",
    409: "A request with this Idempotency-Key is still being processed; retry in a moment.",
    413: "The body is larger than the API takes.",
    415: "The body is not JSON.",
    422: "The Idempotency-Key was used for another request in the last 24 hours.",
    429: "Too many requests for this key; retry after `Retry-After` seconds.",
}
ALWAYS = (401, 429)
READ = (400, *ALWAYS)
WRITE = (400, 403, 413, 415, *ALWAYS)
POST = (*WRITE, 409, 422)


def ref(struct: type) -> dict[str, str]:
    name = struct.__name__
    known = _STRUCTS.setdefault(name, struct)
    if known is not struct:
        raise ValueError(f"two API structs are named {name}: {known!r} and {struct!r}")
    return {"$ref": f"#/components/schemas/{name}"}


def list_of(struct: type) -> dict[str, Any]:
    return {"type": "array", "items": ref(struct)}


def endpoint(
    *,
    summary: str,
    description: str = "",
    tags: Sequence[str],
    request: type | None = None,
    request_example: Any = None,
    responses: Mapping[int, tuple[type | dict | None, str]],
    examples: Mapping[int, Any] | None = None,
    errors: Iterable[int] = READ,
    parameters: Sequence[OpenApiParameter] = (),
    operation_id: str | None = None,
    request_media: Mapping[str, dict] | None = None,
):
    """extend_schema for one endpoint: `responses` {status: (struct or raw schema or None, description)},
    `errors` the problem statuses it can answer."""
    documented: dict[Any, OpenApiResponse] = {}
    for status, (schema, text) in responses.items():
        body = ref(schema) if isinstance(schema, type) else schema
        example = (examples or {}).get(status)
        documented[status] = OpenApiResponse(
            response=body,
            description=text,
            examples=[OpenApiExample(f"{status}", value=example, response_only=True)]
            if example is not None
            else [],
        )
    for status in sorted(set(errors)):
        documented[(status, PROBLEM_CONTENT_TYPE)] = OpenApiResponse(
            response=ref(Problem), description=PROBLEMS.get(status) or HTTPStatus(status).phrase
        )
    body = dict(request_media) if request_media else None
    if request is not None:
        body = {
            "application/json": OpenApiRequest(
                request=ref(request),
                examples=[OpenApiExample("example", value=request_example, request_only=True)]
                if request_example is not None
                else [],
            )
        }
    return extend_schema(
        summary=summary,
        description=description,
        tags=list(tags),
        request=body,
        responses=documented,
        parameters=list(parameters),
        operation_id=operation_id,
    )


def path_param(name: str, description: str, type_: type = str) -> OpenApiParameter:
    return OpenApiParameter(name, type_, OpenApiParameter.PATH, description=description)


def query_param(name: str, description: str, type_: Any = str, **kwargs: Any) -> OpenApiParameter:
    return OpenApiParameter(name, type_, OpenApiParameter.QUERY, description=description, **kwargs)


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (a UUID): a retry with the same key and body returns the first response, with "
        "`Idempotent-Replayed: true`, and does nothing twice. Kept 24 hours per store."
    ),
)


def components_hook(result: dict[str, Any], generator, request, public: bool) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS: the structs' schemas as components; request bodies with a struct or a form
    required."""
    if _STRUCTS:
        _, components = msgspec.json.schema_components(
            [_STRUCTS[name] for name in sorted(_STRUCTS)], ref_template="#/components/schemas/{name}"
        )
        result.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for path in result.get("paths", {}).values():
        for operation in path.values():
            request_body = operation.get("requestBody") if isinstance(operation, dict) else None
            content = request_body.get("content", {}) if request_body else {}
            if "$ref" in str(content) or "multipart/form-data" in content:
                request_body["required"] = True
    return result


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """The security scheme of portal.api.auth.ApiKeyAuthentication."""

    target_class = "portal.api.auth.ApiKeyAuthentication"
    name = "storeApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A store API key (`afd_...`), made on the store page or with "
            "`manage.py create_api_key STORE_CODE`.",
        }
