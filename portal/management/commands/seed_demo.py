"""`manage.py seed_demo`: the demo shop the day after a big livestream, with four weeks of history. Safe to run
again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from portal.demo import (
    DEFAULT_ORDERS,
    DEFAULT_SEED,
    HISTORY_DAYS,
    LIVE_TITLE,
    PAST_LIVE_TITLE,
    SHOPEE_TH,
    TTS_MY,
    WORSE_LANE,
    SeedReport,
    demo_seed,
)


class Command(BaseCommand):
    help = (
        "Create the demo stores, users, catalogue, livestream orders, parcels, tracking and cases, four weeks "
        "of history with a past live session and its review, and the report rollups. Deterministic for a "
        "seed; a second run creates nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--orders",
            type=int,
            default=DEFAULT_ORDERS,
            help=f"Live-session orders (default {DEFAULT_ORDERS}); the history and the past live session scale "
            "with it.",
        )
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help=f"Random seed (default {DEFAULT_SEED})."
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing when the demo stores already have orders."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["orders"] <= 200_000:
            raise CommandError("--orders must be between 1 and 200000.")
        report = demo_seed(
            orders=options["orders"], seed=options["seed"], now=timezone.now(), if_empty=options["if_empty"]
        )
        for line in summary_lines(report):
            self.stdout.write(line)


def summary_lines(report: SeedReport) -> list[str]:
    if report.skipped:
        return ["The demo stores already have orders; nothing to do (--if-empty)."]
    as_of = f"{report.now:%Y-%m-%d %H:%M} UTC"
    if not report.created_anything:
        return [f"Nothing new: the demo data for seed {report.seed} is already in place (as of {as_of})."]
    created = report.created
    lines = [
        f"Demo data as of {as_of}, seed {report.seed}: {report.orders_requested} orders in the "
        f'"{LIVE_TITLE}" live session on {TTS_MY.code}, regular orders on {TTS_MY.code} and {SHOPEE_TH.code}.',
        "Created: "
        + ", ".join(
            f"{created[label]} {label}"
            for label in (
                "stores",
                "users",
                "memberships",
                "SKUs",
                "orders",
                "order lines",
                "shipments",
                "tracking connections",
                "webhook deliveries",
                "tracking events",
                "cases",
                "evidence files",
                "appeals",
            )
        )
        + ".",
    ]
    if report.cases_by_type:
        by_type = ", ".join(f"{kind} {count}" for kind, count in sorted(report.cases_by_type.items()))
        lines.append(f"Cases by type: {by_type}.")
        lines.append(
            f"Assigned to agent: {created['cases assigned']} ({created['cases in progress']} in progress); "
            "the rest are new and unassigned."
        )
    if created["scheduled pushes"]:
        lines.append(
            f"Parcels in transit keep moving: {created['scheduled pushes']} more checkpoints arrive as carrier "
            "pushes over the next three days while the worker runs."
        )
    if created["history cases"]:
        lines.append(
            f"History: {HISTORY_DAYS} days of orders with {created['history cases']} cases worked and resolved "
            f"({created['reopened']} reopened), {created['compensations']} compensations executed, "
            f"{created['claims']} carrier claims; {WORSE_LANE[1]} got worse in {WORSE_LANE[2]} this week."
        )
    if created["live reviews"]:
        lines.append(f'The "{PAST_LIVE_TITLE}" live session ended days ago; its post-live review is written.')
    if report.rollup_days:
        lines.append(f"Report rollups built over {report.rollup_days} store-days: /reports/ has its figures.")
    if report.passwords_reset:
        lines.append(f"Reset the demo password of {report.passwords_reset} user(s).")
    if report.anchored:
        lines.append("Timed to match the existing demo live session.")
    return lines
