"""Afterdesk's base app, in two layers (tests/portal/test_layout.py pins which way they import).

The floor, which `tracking` and `cases` build on and which imports neither: settings and env readers, stores,
memberships and roles (`models`, `choices`), store scoping (`selectors`), store services, database helpers
(`db`), uploads, the middleware, the admin's shared pieces, the API's machinery (`api/`), scheduled-task
plumbing (`tasks`).

The roof, which may use every app and which nothing in `tracking` or `cases` imports: the store pages
(`views`, `forms`, `import_views`), the URL modules (`urls`, `api/urls`), the demo shop (`demo/`), the benches
(`bench/`), the drills (`drills/`) and the management commands (`management/`).
"""
