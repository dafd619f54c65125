"""What a benchmark section hands back: measurements, ratios to baselines from the same run, a printed table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

COLUMNS = ("metric", "value", "baseline", "ratio", "target", "result")


@dataclass(frozen=True)
class Measure:
    """One measured rate, e.g. 52,000 events/s. `note` says how it was measured (sample, batches, ...)."""

    name: str
    value: float
    unit: str
    note: str = ""

    def shown(self) -> str:
        return f"{_number(self.value)} {self.unit}"


@dataclass(frozen=True)
class Comparison:
    """`measure` as a multiple of `baseline`, against a target: PASS when ratio >= target."""

    measure: Measure
    baseline: Measure
    target: float

    @property
    def ratio(self) -> float:
        return self.measure.value / self.baseline.value if self.baseline.value else 0.0

    @property
    def passed(self) -> bool:
        return self.ratio >= self.target


@dataclass
class Table:
    title: str
    references: list[Measure] = field(default_factory=list)  # raw baselines and context, no target
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def missed(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.passed]

    def render(self) -> str:
        rows: list[tuple[str, ...]] = [COLUMNS]
        for m in self.references:
            rows.append((_label(m), m.shown(), "", "", "", ""))
        for c in self.comparisons:
            rows.append(
                (
                    _label(c.measure),
                    c.measure.shown(),
                    f"{c.baseline.name} {c.baseline.shown()}",
                    f"{_ratio(c.ratio)}x",
                    f">= {_ratio(c.target)}x",
                    "PASS" if c.passed else "MISS",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        right = {1, 3}  # numbers line up on the right
        lines = [self.title, "=" * len(self.title)]
        for index, row in enumerate(rows):
            cells = [
                cell.rjust(w) if i in right else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
            if index == 0:
                lines.append("  ".join("-" * w for w in widths))
        if self.comparisons:
            met = len(self.comparisons) - len(self.missed)
            lines.append(f"{met} of {len(self.comparisons)} targets met.")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)


def render_all(tables: Sequence[Table]) -> str:
    return "\n\n".join(table.render() for table in tables)


def _label(measure: Measure) -> str:
    return f"{measure.name} ({measure.note})" if measure.note else measure.name


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _ratio(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
