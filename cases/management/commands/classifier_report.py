from __future__ import annotations

from django.core.management.base import BaseCommand

from cases.complaints import classifier
from cases.complaints.evaluation import evaluate


class Command(BaseCommand):
    help = (
        "The complaint classifier on the corpus's held-out split: accuracy, macro-F1 overall and per "
        "language, the confusion matrix (trained on the rest of the corpus, as train_classifier does)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--mistakes", action="store_true", help="List the held-out examples it gets wrong."
        )

    def handle(self, *args, mistakes: bool, **options):
        examples = classifier.corpus()
        train = [e for e in examples if not classifier.held_out(e)]
        test = [e for e in examples if classifier.held_out(e)]
        report = evaluate(classifier.train(train), test)
        self.stdout.write(report.render())
        if mistakes:
            self.stdout.write("\nMistakes (language, truth -> predicted: text):")
            for lang, truth, guess, text in report.mistakes:
                self.stdout.write(f"  {lang:8} {truth} -> {guess}: {text}")
