"""`make bench`: performance as ratios to raw baselines measured in the same run (DESIGN.md, "Quality bars").

A section is a module with `run(context) -> list[Table]`, registered below by name. Each section builds its
own data in the scratch database (emptied between sections) and measures its baselines itself, in the same
process and run, so the ratios hold on any machine. Sizes are multiplied by `context.scale`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from portal.bench.report import Table

# name -> module with `run(context: BenchContext) -> list[Table]`. Add a section by adding a line.
SECTIONS: dict[str, str] = {
    "tracking": "portal.bench.tracking",
    "rules": "portal.bench.rules",
    "queue": "portal.bench.queue",
    "api": "portal.bench.api",
    "evidence": "portal.bench.evidence",
    "imports": "portal.bench.imports",
    "complaints": "portal.bench.complaints",
    "reports": "portal.bench.reports",
}


@dataclass(frozen=True)
class BenchContext:
    scale: float
    database_url: str  # the scratch database, for subprocesses such as the WSGI server
    log: Callable[[str], None]  # progress lines (the command's stdout)

    def size(self, full: int, *, minimum: int = 1) -> int:
        """`full` at scale 1, shrunk (never below `minimum`) for smoke runs."""
        return max(minimum, round(full * self.scale))

    def seconds(self, full: float, *, minimum: float = 0.5) -> float:
        return max(minimum, full * self.scale)


def section_run(name: str, context: BenchContext) -> list[Table]:
    module = importlib.import_module(SECTIONS[name])
    return module.run(context)
