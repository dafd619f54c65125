"""`manage.py drill faults|load`: the product under faults and under load, end to end (portal.drills)."""

from __future__ import annotations

import logging
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from portal.drills import drill_database


class Command(BaseCommand):
    help = (
        "Drills on a private PostgreSQL cluster (DATABASE_URL's server when none can be made): `faults` replays "
        "signed provider pushes while killing the worker and restarting the database, then checks nothing was "
        "lost or doubled; `load` has agents work the queue over HTTP while pushes arrive. Exits 1 when a check fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        drills = parser.add_subparsers(dest="drill", required=True)
        faults = drills.add_parser("faults", help="Pushes under worker kills and database restarts.")
        faults.add_argument("--events", type=int, default=100_000, help="Pushes to send (default 100,000).")
        faults.add_argument(
            "--parcels", type=int, default=20_000, help="Parcels they are about (default 20,000)."
        )
        faults.add_argument(
            "--kills", type=int, default=20, help="SIGKILLs of the worker's process tree (default 20)."
        )
        faults.add_argument("--restarts", type=int, default=5, help="PostgreSQL restarts (default 5).")
        faults.add_argument("--rate", type=float, default=400.0, help="Pushes per second (default 400).")
        faults.add_argument(
            "--seed", type=int, default=1, help="Random seed of the stream and the fault moments."
        )
        faults.add_argument(
            "--drain-timeout", type=float, default=600.0, help="Seconds to wait for the worker at the end."
        )
        faults.add_argument(
            "--shared-database", action="store_true", help="Use DATABASE_URL's server (no restarts)."
        )
        load = drills.add_parser("load", help="Agents working the queue while pushes arrive.")
        load.add_argument("--duration", type=float, default=60.0, help="Seconds of load (default 60).")
        load.add_argument(
            "--agents", type=int, default=4, help="Agents, each a logged-in session (default 4)."
        )
        load.add_argument(
            "--agent-rate", type=float, default=2.0, help="Case actions per second per agent (default 2)."
        )
        load.add_argument(
            "--push-rate", type=float, default=100.0, help="Provider pushes per second (default 100)."
        )
        load.add_argument("--seed", type=int, default=1)
        load.add_argument("--shared-database", action="store_true", help="Use DATABASE_URL's server.")

    def handle(self, *args, drill: str, **options) -> None:
        started = time.monotonic()
        logging.getLogger("django-q").setLevel(logging.WARNING)  # the drill's own wake-ups, one line each
        if connections["default"].vendor != "postgresql":
            raise CommandError(
                f"The drills run on PostgreSQL only, and DATABASE_URL points at {connections['default'].vendor}. "
                "Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/afterdesk (the drill makes a private "
                "cluster beside it when it can)."
            )
        if drill == "faults":
            ok, summary = self._faults(options)
        else:
            ok, summary = self._load(options)
        self.stdout.write(f"{summary} ({time.monotonic() - started:.0f}s)")
        if not ok:
            raise CommandError(f"drill {drill}: a check failed (see the table above).", returncode=1)

    def _faults(self, options: dict) -> tuple[bool, str]:
        from portal.drills.faults import FaultOptions, run

        fault = FaultOptions(
            events=options["events"], parcels=options["parcels"], kills=options["kills"],
            restarts=options["restarts"], rate=options["rate"], seed=options["seed"],
            drain_timeout=options["drain_timeout"],
        )  # fmt: skip
        if fault.parcels < 1 or fault.events < fault.parcels:
            raise CommandError(
                "--parcels must be at least 1 and --events at least --parcels (a push per parcel)."
            )
        if fault.kills < 0 or fault.restarts < 0 or not fault.rate > 0 or not fault.drain_timeout > 0:
            raise CommandError(
                "--kills and --restarts must be 0 or more, --rate and --drain-timeout above 0."
            )
        self.stdout.write(
            f"drill faults: {fault.events:,} pushes over {fault.parcels:,} parcels at {fault.rate:g}/s, "
            f"{fault.kills} worker kills, {fault.restarts} database restarts"
        )
        with drill_database(log=self.stdout.write, private=not options["shared_database"]) as database:
            result = run(fault, database, self.stdout.write)
        self.stdout.write("\n" + result.report.render() + "\n")
        return result.ok, result.summary

    def _load(self, options: dict) -> tuple[bool, str]:
        from portal.drills.load import LoadOptions, run

        load = LoadOptions(
            duration=options["duration"], agents=options["agents"], agent_rate=options["agent_rate"],
            push_rate=options["push_rate"], seed=options["seed"],
        )  # fmt: skip
        if not load.duration > 0 or load.agents < 1 or not load.agent_rate > 0 or load.push_rate < 0:
            raise CommandError(
                "--duration and --agent-rate must be above 0, --agents at least 1, --push-rate 0 or more."
            )
        self.stdout.write(
            f"drill load: {load.agents} agents at {load.agent_rate:g} actions/s each, "
            f"{load.push_rate:g} pushes/s, for {load.duration:g}s"
        )
        with drill_database(log=self.stdout.write, private=not options["shared_database"]) as database:
            result = run(load, database, self.stdout.write)
        self.stdout.write("\n" + result.report.render() + "\n")
        return result.ok, result.summary
