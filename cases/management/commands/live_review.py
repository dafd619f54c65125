from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from cases.reporting.review import live_review_write, review_url
from tracking.models import LiveSession


class Command(BaseCommand):
    help = (
        "Write the post-live review of a live session now, replacing the one written before. The schedule "
        "emails its store's supervisors and admins a link if nobody was told of a review of this session yet."
    )

    def add_arguments(self, parser):
        parser.add_argument("session_id", type=int, help="The live session's id (as in /reports/live/<id>/).")

    def handle(self, *args, session_id: int, **options):
        session = LiveSession.objects.select_related("store").filter(pk=session_id).first()
        if session is None:
            raise CommandError(f"No live session with id {session_id}.")
        review = live_review_write(session=session)
        recommendations = len(review.recommendations)
        self.stdout.write(
            f"Wrote the review of {session.title!r} ({session.store.code}): "
            f"{review.figures['orders']['count']} orders, {recommendations} recommendation"
            f"{'' if recommendations == 1 else 's'}.\n{review_url(review)}"
        )
