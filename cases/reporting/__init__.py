"""Supervisor reporting: rollup tables kept by the worker, the report pages' figures read from them, store
health against the platforms' own formulas, the live war room and the post-live review."""
