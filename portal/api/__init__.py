"""The REST API's shared machinery: one authentication (a store's API key), one permission check (the key's
scopes), one error format (RFC 9457 problem details), one idempotency mechanism, one cursor pagination, one
way to read and write bodies (msgspec structs). Each app's `<app>/api/` holds its endpoints; `portal.api.urls`
mounts them under /api/v1/."""
