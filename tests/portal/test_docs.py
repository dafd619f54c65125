"""The documentation's promises, checked against the code.

README.md and docs/*.md name files, headings, management commands, make targets and environment variables. A
rename in the code must not leave a page pointing at something that no longer exists. What is checked, and the
rules that keep false positives out:

1. **Links.** Every relative Markdown link `[text](target)` outside code resolves to a file or folder of the
   repository, relative to the page; a `#anchor` (also a bare `#anchor` on the page itself) must be the slug of
   a heading of the target Markdown file, as GitHub makes them: lower case, every character that is not a
   letter, digit, space, `-` or `_` dropped, spaces turned to `-`, a repeated slug suffixed `-1`, `-2`, ...
   Links with a scheme (`https:`, `mailto:`) are not checked.
2. **Commands.** `python manage.py NAME` and `manage.py NAME` anywhere (code blocks included) name a command of
   `django.core.management.get_commands()`. `make NAME` inside code (a fenced block or a backticked span; in
   prose "make" is an English verb) names a target of the Makefile. Comments in fenced blocks are ignored.
3. **Environment variables.** An upper-case name is an environment variable only where the page says so,
   because Django settings (`TIME_ZONE`, `CONN_MAX_AGE`) look the same:
   - the backticked names in the first cell of a table whose header's first cell is "variable", and
   - the backticked UPPER_CASE names in a sentence that contains "environment variable".
   Each must be one the code reads: the `env_*("NAME")` calls and `os.environ` lookups of portal/settings.py
   and portal/env.py (`env_file_storage("FILES")` expands env.py's `{prefix}_S3_...` lookups to
   `FILES_S3_...`), the browser tests' switches (tests/browser/conftest.py), and the AWS credentials that the
   S3 library reads for the bucket (`AWS_LIBRARY_VARIABLES`, named in env.py's docstring).
4. **Completeness.** Every variable portal/settings.py and portal/env.py read is in docs/operations.md's
   variable table, and every page of docs/ is listed in docs/README.md.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
SETTINGS_FILES = (ROOT / "portal" / "settings.py", ROOT / "portal" / "env.py")
TEST_SWITCH_FILES = (ROOT / "tests" / "browser" / "conftest.py",)
# Read by botocore (django-storages' S3 backend), not by our code: portal/env.py's docstring names them.
AWS_LIBRARY_VARIABLES = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"(?<!\\)\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
MANAGE = re.compile(r"\bmanage\.py\s+([a-z_][a-z0-9_]*)")
MAKE = re.compile(r"(?:^|[\s;&|(])make\s+([a-z][a-z0-9_-]*)")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _fences(text: str) -> list[str]:
    return [match.group(0) for match in FENCE.finditer(text)]


def _prose(text: str) -> str:
    """The page without its fenced code blocks."""
    return FENCE.sub("", text)


def _without_code(text: str) -> str:
    return INLINE_CODE.sub("", _prose(text))


# --- 1. links ---------------------------------------------------------------------------------------------


def github_slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    slugs = set()
    for match in HEADING.finditer(_prose(path.read_text(encoding="utf-8"))):
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        slugs.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(slugs)


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(_without_code(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto: ...
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {_rel(linked)}")
    return broken


def test_the_pages_are_found():
    names = {_rel(page) for page in PAGES}
    assert {"README.md", "docs/README.md", "docs/operations.md", "docs/tracking.md"} <= names


def test_the_docs_index_lists_every_page():
    index = ROOT / "docs" / "README.md"
    linked = {
        target.partition("#")[0] for target in LINK.findall(_without_code(index.read_text(encoding="utf-8")))
    }
    pages = {page.name for page in (ROOT / "docs").glob("*.md")} - {"README.md"}
    assert sorted(pages - linked) == []


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_relative_link_resolves_to_a_file_and_heading(page):
    assert broken_links(page) == []


def test_github_slugs_drop_punctuation_and_join_words_with_hyphens():
    assert github_slug("The queue at ten million cases") == "the-queue-at-ten-million-cases"
    assert github_slug("Backups and restore") == "backups-and-restore"
    assert github_slug("`make bench`: what it measures") == "make-bench-what-it-measures"
    assert github_slug("Counts that do not grow with history") == "counts-that-do-not-grow-with-history"


def test_a_broken_link_and_a_missing_anchor_are_reported(tmp_path):
    (tmp_path / "other.md").write_text("# Title\n\n## A section\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#a-section) [gone](missing.md) [bad](other.md#nope) [self](#title-here)\n\n"
        "## Title here\n\n`[in code](ignored.md)`\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        f"other.md#nope: no heading #nope in {tmp_path / 'other.md'}",
    ]


# --- 2. commands and make targets -------------------------------------------------------------------------


def make_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-][A-Za-z0-9_. -]*):(?![=:])", line)
        if match:
            targets.update(name for name in match.group(1).split() if not name.startswith("."))
    return targets


def named_commands(text: str) -> set[str]:
    return set(MANAGE.findall(text))


def named_make_targets(text: str) -> set[str]:
    code = []
    for block in _fences(text):
        code.extend(line.split(" #", 1)[0] for line in block.splitlines()[1:-1])
    code.extend(INLINE_CODE.findall(_prose(text)))
    return {name for snippet in code for name in MAKE.findall(snippet)}


def test_make_targets_are_read_from_the_makefile():
    assert {"run", "test", "bench", "messages"} <= make_targets()


def test_commands_are_found_in_code_and_prose_and_make_only_in_code():
    text = (
        "Run `python manage.py\nevaluate_exceptions` or manage.py sync_tracking. We make sure.\n\n"
        "```sh\nmake bench  # make nothing\nDATABASE_URL=x make test\n```\n"
    )
    assert named_commands(text) == {"evaluate_exceptions", "sync_tracking"}
    assert named_make_targets(text) == {"bench", "test"}


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_named_command_and_make_target_exists(page):
    text = page.read_text(encoding="utf-8")
    assert sorted(named_commands(text) - set(get_commands())) == []
    assert sorted(named_make_targets(text) - make_targets()) == []


# --- 3. environment variables -----------------------------------------------------------------------------


def _environ_lookups(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(names, templates) of `os.environ.get(...)` / `os.environ[...]` in a module: a constant name, or an
    f-string template with `{}` where its one placeholder goes."""
    names, templates = set(), set()

    def take(arg: ast.expr) -> None:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            names.add(arg.value)
        elif isinstance(arg, ast.JoinedStr):
            templates.add(
                "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in arg.values)
            )

    def is_environ(node: ast.expr) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ"

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("get", "pop", "setdefault") and is_environ(node.func.value) and node.args:
                take(node.args[0])
        elif isinstance(node, ast.Subscript) and is_environ(node.value):
            take(node.slice)
    return names, templates


@cache
def settings_variables() -> frozenset[str]:
    """Every environment variable portal/settings.py and portal/env.py read."""
    names: set[str] = set()
    templates: set[str] = set()
    prefixes: set[str] = set()
    for path in SETTINGS_FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found, shapes = _environ_lookups(tree)
        names |= found
        templates |= shapes
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args):
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            if node.func.id == "env_file_storage":
                prefixes.add(first.value)
            elif node.func.id.startswith("env_"):
                names.add(first.value)
    names |= {template.format(prefix) for template in templates for prefix in prefixes}
    return frozenset(names)


@cache
def known_variables() -> frozenset[str]:
    names = set(settings_variables()) | AWS_LIBRARY_VARIABLES
    for path in TEST_SWITCH_FILES:
        names |= _environ_lookups(ast.parse(path.read_text(encoding="utf-8")))[0]
    return frozenset(names)


def _backticked_names(text: str) -> set[str]:
    return {name for name in INLINE_CODE.findall(text) if ENV_NAME.match(name.strip())}


def variable_table_names(text: str) -> set[str]:
    """The backticked names in the first cell of every table whose header's first cell is "variable"."""
    names: set[str] = set()
    in_table = False
    for line in _prose(text).splitlines():
        cells = (
            [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else None
        )
        if cells is None:
            in_table = False
        elif not in_table and cells[0].lower() == "variable":
            in_table = True
        elif in_table and not set(cells[0]) <= set("-: "):
            names |= _backticked_names(cells[0])
    return names


def named_variables(text: str) -> set[str]:
    """Table names (above) and the backticked UPPER_CASE names of sentences saying "environment variable"."""
    names = variable_table_names(text)
    for paragraph in re.split(r"\n\s*\n", _prose(text)):
        if paragraph.lstrip().startswith("|"):
            continue
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z`*(])", paragraph):
            if "environment variable" in sentence.lower():
                names |= _backticked_names(sentence)
    return names


def test_settings_variables_are_read_from_the_code():
    names = settings_variables()
    assert {"DATABASE_URL", "SECRET_KEY", "REDIS_URL", "LOG_LEVEL", "Q_WORKERS"} <= names
    assert {"FILES_S3_BUCKET", "FILES_S3_ENDPOINT_URL", "FILES_S3_REGION", "FILES_S3_PREFIX"} <= names
    assert "TIME_ZONE" not in names


def test_only_declared_variables_are_checked():
    text = (
        "| variable | default |\n|---|---|\n| `DATABASE_URL`, `REDIS_URL` | x `TIME_ZONE` |\n\n"
        "The `PUBLIC_URL` environment variable. Django's `TIME_ZONE` setting is UTC.\n\n"
        "| setting | value |\n|---|---|\n| `CONN_MAX_AGE` | 60 |\n"
    )
    assert named_variables(text) == {"DATABASE_URL", "REDIS_URL", "PUBLIC_URL"}


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_named_environment_variable_is_read_by_the_code(page):
    assert sorted(named_variables(page.read_text(encoding="utf-8")) - known_variables()) == []


# --- 4. completeness --------------------------------------------------------------------------------------


def test_operations_documents_every_variable_the_settings_read():
    documented = variable_table_names((ROOT / "docs" / "operations.md").read_text(encoding="utf-8"))
    assert sorted(settings_variables() - documented) == []
