"""Which way the imports go between the apps, read from the source with `ast` (no Django, no database).

`portal` is two things: the floor every app stands on (stores, memberships, scoping, settings, db helpers, the
API's machinery, the middleware), and the roof over all of them (the store pages, the URL modules, the demo, the
benches, the drills, the management commands). `tracking` and `cases` import the floor; the roof imports them.
These tests pin that:

- the floor modules (FLOOR, an explicit list) import nothing from `cases` or `tracking`;
- every portal module is either floor or roof (ROOF), so a new module is placed on purpose;
- `tracking` never imports `cases` (it reaches a shipment's cases through the reverse relation, and the API's
  open cases by dotted path);
- `cases.models` imports nothing that imports it back: the checks its `clean()` methods run live in
  `cases.validators`, which imports no models.

An import is any `import` or `from ... import` statement anywhere in a module, inside functions too (a
deferred import is still a dependency). Imports under `if TYPE_CHECKING:` are skipped: they never run, and are
the standard way to name a type without depending on its module. Dotted paths in strings
(`import_string("cases.workflow...")`, `include("cases.api.urls")`, task names) are not imports: they are how the
floor names the roof's code without importing it.

Migrations are included: they run inside every `migrate`, so a portal migration importing cases code would
make the floor depend on cases on every database. Migrations should use the historical `apps.get_model`.

Chosen over import-linter: the rules are four, a few dozen lines of `ast` state them where the suite already
runs, and the self-checks below prove the checker fails on a violation, with no new dependency or config file.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("portal", "cases", "tracking")
UPPER_APPS = ("cases", "tracking")

# The floor: what cases and tracking may import. A name is a module, or a package and everything in it.
FLOOR = (
    "portal",  # the package's __init__
    "portal.admin",  # the admin site's shared pieces (tracking.admin builds on them)
    "portal.api",  # the API's machinery: key auth, problems, bodies, pagination, idempotency, throttling, views
    "portal.apps",
    "portal.asgi",
    "portal.checks",
    "portal.choices",
    "portal.db",
    "portal.env",
    "portal.login_throttle",
    "portal.middleware",
    "portal.migrations",
    "portal.models",
    "portal.selectors",
    "portal.services",
    "portal.settings",
    "portal.tasks",
    "portal.templatetags",
    "portal.uploads",
    "portal.wsgi",
)
# The roof: may import every app; nothing in cases or tracking imports it.
ROOF = (
    "portal.api.urls",  # wires tracking's and cases' API URLs in (by dotted path today)
    "portal.bench",
    "portal.demo",
    "portal.drills",
    "portal.forms",
    "portal.import_views",
    "portal.management",  # seed_demo, bench, drill, setup_schedules, create_api_key
    "portal.urls",
    "portal.views",
)


# --- the checker ------------------------------------------------------------------------------------------


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, imported module) for every import in `source`, the module named `module`, at any depth; for
    `from a import b` both `a` and `a.b` (b may be a module). Relative imports are resolved."""
    found: list[tuple[int, str]] = []
    package = module if is_package else module.rpartition(".")[0]

    def visit(nodes: Iterable[ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _type_checking(node):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.extend((node.lineno, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                found.append((node.lineno, base))
                found.extend(
                    (node.lineno, f"{base}.{alias.name}" if base else alias.name)
                    for alias in node.names
                    if alias.name != "*"
                )
            visit(ast.iter_child_nodes(node))

    visit(ast.parse(source).body)
    return found


def _within(name: str, roots: Iterable[str]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def forbidden_imports(
    source: str, module: str, forbidden: Iterable[str], *, is_package: bool = False
) -> list[str]:
    """'module:line imports target' for each import of `source` that reaches into a `forbidden` package."""
    forbidden = tuple(forbidden)
    return [
        f"{module}:{line} imports {target}"
        for line, target in imports_of(source, module, is_package=is_package)
        if _within(target, forbidden)
    ]


def floor_violations(sources: Mapping[str, str]) -> list[str]:
    """The floor's imports of cases, tracking or the roof, for {module: source} (only FLOOR modules are read):
    a floor module importing the roof would bring cases and tracking in through it."""
    return [
        problem
        for module, source in sorted(sources.items())
        if _within(module, FLOOR) and not _within(module, ROOF)
        for problem in forbidden_imports(source, module, UPPER_APPS + ROOF)
    ]


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def app_sources(*apps: str) -> dict[str, tuple[str, bool]]:
    """{module: (source, is_package)} for every .py file of the apps, migrations included."""
    sources = {}
    for app in apps:
        for path in sorted((ROOT / app).rglob("*.py")):
            name, is_package = _module_name(path)
            sources[name] = (path.read_text(encoding="utf-8"), is_package)
    return sources


def import_graph(sources: Mapping[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """{module: the first-party modules it imports}, each import resolved to the module it loads (`from a
    import b` is `a.b` when that is a module, else `a`) plus the packages it runs on the way (`a.b` runs `a`)."""
    graph: dict[str, set[str]] = {}
    for module, (source, is_package) in sources.items():
        edges = set()
        for _line, target in imports_of(source, module, is_package=is_package):
            if target not in sources:
                continue
            edges.add(target)
            parts = target.split(".")
            edges.update(".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in sources)
        edges.discard(module)
        graph[module] = edges
    return graph


def reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return seen


# --- the rules --------------------------------------------------------------------------------------------


def test_the_floor_imports_nothing_from_cases_or_tracking():
    sources = {module: source for module, (source, _pkg) in app_sources("portal").items()}
    assert floor_violations(sources) == []


def test_every_portal_module_is_floor_or_roof():
    modules = app_sources("portal")
    unplaced = [m for m in modules if not _within(m, FLOOR) and not _within(m, ROOF)]
    assert unplaced == [], "add each to FLOOR or ROOF in tests/portal/test_layout.py (and say why)"
    # a roof entry inside a floor package wins (portal.api.urls); no module is named in both lists
    assert not set(FLOOR) & set(ROOF)


def test_cases_and_tracking_import_only_the_floor_of_portal():
    problems = [
        f"{module} imports {target}"
        for module, (source, is_package) in app_sources(*UPPER_APPS).items()
        for _line, target in imports_of(source, module, is_package=is_package)
        if _within(target, ("portal",)) and target != "portal" and _within(target, ROOF)
    ]
    assert problems == []


def test_tracking_never_imports_cases():
    problems = [
        problem
        for module, (source, is_package) in app_sources("tracking").items()
        for problem in forbidden_imports(source, module, ("cases",), is_package=is_package)
    ]
    assert problems == []


def test_the_case_models_import_nothing_that_imports_them_back():
    graph = import_graph(app_sources(*APPS))
    below_models = reachable(graph, "cases.models")
    assert "cases.models" not in below_models  # no cycle through the models
    assert not below_models & {"cases.messages", "cases.policy", "cases.appeals"}
    assert "cases.validators" in below_models  # what clean() runs, imported at module level
    assert not {m for m in reachable(graph, "cases.validators") if m.endswith(".models")}


# --- the checker fails when it should ---------------------------------------------------------------------


def test_a_floor_module_importing_cases_is_caught_wherever_the_import_is():
    for source, target in (
        ("from cases.models import Case\n", "cases.models"),
        ("import cases.selectors\n", "cases.selectors"),
        ("def late():\n    from tracking import models\n", "tracking"),
        ("class Late:\n    def go(self):\n        import tracking.ingest as ingest\n", "tracking.ingest"),
        ("from .views import store_list\n", "portal.views"),  # the roof, relatively: brings cases in
    ):
        problems = floor_violations(
            {"portal.selectors": source, "portal.api.auth": source.replace(".views", "..views")}
        )
        assert f"portal.selectors:{source.count(chr(10))} imports {target}" in problems, problems
        assert any(problem.startswith("portal.api.auth:") for problem in problems), problems
    # and the rule itself fails on it, as it would in the suite
    sources = {"portal.selectors": "from cases.models import Case\n"}
    try:
        assert floor_violations(sources) == []
    except AssertionError:
        pass
    else:
        raise AssertionError("the floor rule passed a floor module importing cases")


def test_the_roof_and_type_only_imports_are_not_violations():
    assert floor_violations({"portal.views": "from cases.selectors import cases_for_user\n"}) == []
    assert floor_violations({"portal.demo.seed": "import cases.engine\n"}) == []
    type_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cases.models import Case\n"
    assert floor_violations({"portal.selectors": type_only}) == []
    # a string naming the roof's code is not an import
    assert (
        floor_violations({"portal.services": 'RELEASE = "cases.workflow.cases_release_from_member"\n'}) == []
    )


def test_a_cycle_through_the_models_is_caught():
    sources = {
        "cases": ("", True),
        "cases.models": ("def clean():\n    from cases.policy import policy_errors\n", False),
        "cases.policy": ("from cases.models import StorePolicy\n", False),
    }
    assert "cases.models" in reachable(import_graph(sources), "cases.models")
