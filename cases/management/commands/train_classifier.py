from __future__ import annotations

import platform
from datetime import UTC, datetime

from django.core.management.base import BaseCommand

from cases.complaints import classifier
from cases.complaints.evaluation import evaluate


class Command(BaseCommand):
    help = (
        "Train the complaint classifier on cases/complaints/corpus/*.jsonl and write the model (arrays, no "
        "pickle) with its manifest (checksums, versions, held-out figures) to cases/complaints/model/."
    )

    def handle(self, *args, **options):
        import sklearn

        examples = classifier.corpus()
        train = [e for e in examples if not classifier.held_out(e)]
        test = [e for e in examples if classifier.held_out(e)]
        self.stdout.write(f"{len(examples)} examples: {len(train)} to train on, {len(test)} held out.")
        report = evaluate(classifier.train(train), test)
        self.stdout.write(report.render())
        model = classifier.train(examples)  # the shipped model learns from every example
        manifest = classifier.save(model, manifest={
            "trained_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "corpus_sha256": classifier.corpus_digest(),
            "examples": len(examples),
            "held_out": {"examples": len(test), "accuracy": report.accuracy, "macro_f1": report.macro_f1,
                         "macro_f1_by_language": report.by_language},
            "features": {"char": len(model.char_vocabulary), "word": len(model.word_vocabulary)},
            "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__},
        })  # fmt: skip
        self.stdout.write(
            self.style.SUCCESS(f"Wrote {classifier.MODEL_FILE} (sha256 {manifest['sha256'][:12]}…).")
        )
