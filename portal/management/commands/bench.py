"""`make bench`: run the benchmark sections in a scratch PostgreSQL database and print their tables."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from portal.bench import SECTIONS, BenchContext, section_run
from portal.bench.db import scratch_database, scratch_name, scratch_reset


class Command(BaseCommand):
    help = (
        "Measure throughput as ratios to raw baselines from the same run, in a scratch database "
        "(<DATABASE_URL name>_bench) created and dropped on DATABASE_URL's PostgreSQL server. "
        "The configured database is never opened."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--only", action="append", choices=sorted(SECTIONS), metavar="SECTION",
            help=f"Run only this section (repeatable). Sections: {', '.join(SECTIONS)}.",
        )  # fmt: skip
        parser.add_argument(
            "--scale", type=float, default=1.0,
            help="Multiply data sizes and durations, e.g. 0.01 for a quick smoke run. Ratios are only meaningful at 1.",
        )  # fmt: skip
        parser.add_argument(
            "--database", help="Name of the scratch database (default: <configured name>_bench)."
        )
        parser.add_argument(
            "--keep-database", action="store_true", help="Leave the scratch database for inspection."
        )

    def handle(
        self,
        *args,
        only: list[str] | None,
        scale: float,
        database: str | None,
        keep_database: bool,
        **options,
    ):
        default = connections["default"]
        if default.vendor != "postgresql":
            raise CommandError(
                f"make bench measures PostgreSQL only, and DATABASE_URL points at {default.vendor}. "
                "Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/afterdesk_bench (a scratch database "
                "<name>_bench is created beside it and dropped after the run)."
            )
        if not scale > 0:
            raise CommandError("--scale must be greater than 0.")
        sections = list(dict.fromkeys(only or SECTIONS))
        name = database or scratch_name(default.settings_dict["NAME"])
        started = time.perf_counter()
        self.stdout.write(f"Scratch database {name} (scale {scale:g}); sections: {', '.join(sections)}")
        with scratch_database(name, keep=keep_database) as url:
            context = BenchContext(scale=scale, database_url=url, log=self.stdout.write)
            for index, section in enumerate(sections):
                if index:
                    scratch_reset()
                section_started = time.perf_counter()
                self.stdout.write(f"[{section}]")
                for table in section_run(section, context):
                    self.stdout.write("\n" + table.render() + "\n")
                self.stdout.write(f"[{section}] done in {time.perf_counter() - section_started:.0f}s")
        self.stdout.write(
            f"Total {time.perf_counter() - started:.0f}s; scratch database {'kept' if keep_database else 'dropped'}."
        )
