"""How well the complaint classifier does on examples it was not trained on: accuracy, macro-F1, per
language, and the confusion matrix (`python manage.py classifier_report`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from cases.complaints.classifier import CATEGORIES, Example, Model, classify_many


@dataclass
class Report:
    examples: int
    accuracy: float
    macro_f1: float
    by_language: dict[str, float]
    confusion: dict[str, Counter] = field(default_factory=dict)  # truth -> predicted -> count
    mistakes: list[tuple[str, str, str, str]] = field(default_factory=list)  # lang, truth, predicted, text

    def render(self) -> str:
        lines = [
            f"Held-out examples: {self.examples}",
            f"Accuracy: {self.accuracy:.3f}   macro-F1: {self.macro_f1:.3f}",
            "",
            "macro-F1 by language:",
            *(f"  {lang:8} {f1:.3f}" for lang, f1 in sorted(self.by_language.items())),
            "",
            "Confusion (rows: truth, columns: predicted):",
            "  " + " " * 13 + " ".join(f"{c[:12]:>12}" for c in CATEGORIES),
            *(
                f"  {truth[:12]:13}"
                + " ".join(f"{self.confusion.get(truth, Counter())[p]:>12}" for p in CATEGORIES)
                for truth in CATEGORIES
            ),
        ]
        return "\n".join(lines)


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    scores = []
    for label in sorted(set(truth)):
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p == label)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if p == label != t)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label != p)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def evaluate(model: Model, examples: Sequence[Example]) -> Report:
    predicted = [category for category, _confidence in classify_many([e.text for e in examples], model=model)]
    truth = [e.label for e in examples]
    confusion: dict[str, Counter] = defaultdict(Counter)
    by_language: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    mistakes = []
    for example, guess in zip(examples, predicted, strict=True):
        confusion[example.label][guess] += 1
        by_language[example.lang][0].append(example.label)
        by_language[example.lang][1].append(guess)
        if guess != example.label:
            mistakes.append((example.lang, example.label, guess, example.text))
    correct = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p)
    return Report(
        examples=len(examples),
        accuracy=round(correct / len(examples), 4) if examples else 0.0,
        macro_f1=round(macro_f1(truth, predicted), 4),
        by_language={lang: round(macro_f1(t, p), 4) for lang, (t, p) in by_language.items()},
        confusion=dict(confusion),
        mistakes=mistakes,
    )
