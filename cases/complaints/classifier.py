"""What a buyer's message is about: a text classifier over the labelled corpus in `corpus/*.jsonl`.

Character n-gram TF-IDF (1 to 4 characters within word boundaries: no word segmentation needed for Chinese
or Thai, robust to typos and missing diacritics) joined with word uni- and bigrams, into a multinomial
logistic regression, trained with scikit-learn by `python manage.py train_classifier`. The trained model is
not a pickle: it is the vectorisers' vocabularies and IDF weights and the regression's coefficients, in
`model/classifier.npz`, with `model/manifest.json` holding its SHA-256, the corpus's SHA-256 it was trained
on, the versions and the held-out figures. Loading checks the checksum; inference is a sparse dot product
(no scikit-learn needed at run time beyond scipy's sparse matrices).

The language comes from py3langid (its model ships inside the package), narrowed to the languages the
shops sell in; Chinese is told apart as Simplified or Traditional by the characters used.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import sparse

CATEGORIES = ("not_received", "damaged", "wrong_item", "missing_item", "quality", "other")
LANGUAGES = ("zh-hans", "zh-hant", "en", "th", "ms", "id", "vi")
LATIN_LANGUAGES = ("en", "ms", "id", "vi")
HERE = Path(__file__).resolve().parent
CORPUS_DIR = HERE / "corpus"
MODEL_DIR = HERE / "model"
MODEL_FILE = MODEL_DIR / "classifier.npz"
MANIFEST_FILE = MODEL_DIR / "manifest.json"
MAX_CHARS = 2_000  # what is classified of a long message: its beginning says what it is about

# The vectorisers' settings: training and inference build the same features from them.
CHAR_NGRAMS = (1, 5)
WORD_NGRAMS = (1, 2)
WORD_PATTERN = r"(?u)\b\w+\b"


class ClassifierUnavailable(Exception):
    """No trained model, or one whose bytes do not match its manifest: complaints go to triage."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    lang: str


@dataclass(frozen=True)
class Classification:
    category: str
    confidence: float  # the model's probability of `category`
    language: str
    words: tuple[str, ...]  # the parts of the text that weighed most for `category`
    scores: dict[str, float] = field(default_factory=dict)


# --- text ------------------------------------------------------------------------------------------------

_REPEATS = re.compile(r"(.)\1{2,}")


def normalize(text: str) -> str:
    """What both training and inference see: NFKC (full-width folds), case-folded, a letter repeated for
    emphasis kept twice ("มากกกก", "sooo"), whitespace collapsed, at most MAX_CHARS."""
    value = unicodedata.normalize("NFKC", text[: MAX_CHARS * 2]).casefold()
    value = _REPEATS.sub(r"\1\1", value)
    return re.sub(r"\s+", " ", value).strip()[:MAX_CHARS]


# --- the corpus -----------------------------------------------------------------------------------------


def corpus(directory: Path | None = None) -> list[Example]:
    directory = directory or CORPUS_DIR
    examples = []
    for path in sorted(directory.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row["label"] not in CATEGORIES or row["lang"] not in LANGUAGES:
                raise ValueError(
                    f"{path.name}:{number}: label {row['label']!r} or lang {row['lang']!r} unknown"
                )
            examples.append(Example(row["text"], row["label"], row["lang"]))
    return examples


def corpus_digest(directory: Path | None = None) -> str:
    directory = directory or CORPUS_DIR
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.jsonl")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def held_out(example: Example, share: float = 0.2) -> bool:
    """Whether an example is in the held-out split: by a hash of its text, so the split is the same on every
    machine and an example stays on its side when others are added."""
    value = int(hashlib.sha256(example.text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return value < share


# --- the model ----------------------------------------------------------------------------------------


@dataclass
class Model:
    """The trained model's arrays: per vectoriser a vocabulary (term -> column) and IDF weights, then the
    regression's coefficients (classes x columns) and intercepts."""

    classes: tuple[str, ...]
    char_vocabulary: dict[str, int]
    char_idf: np.ndarray
    word_vocabulary: dict[str, int]
    word_idf: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    # The language among the Latin-script ones (Malay and Indonesian are near twins py3langid often swaps),
    # learnt from the same features on the corpus's own language labels.
    lang_classes: tuple[str, ...] = ()
    lang_coef: np.ndarray | None = None
    lang_intercept: np.ndarray | None = None

    counters: tuple = ()  # the two CountVectorizers over the fixed vocabularies, made on first use
    terms: tuple = ()  # column -> term of each vocabulary (the deciding words), made on first use

    def features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        if not self.counters:
            self.counters = (_counter("char", self.char_vocabulary), _counter("word", self.word_vocabulary))
        blocks = [
            _tfidf(counter.transform(texts).astype(np.float64), idf)
            for counter, idf in zip(self.counters, (self.char_idf, self.word_idf), strict=True)
        ]
        return sparse.hstack(blocks, format="csr")

    def probabilities(self, texts: Sequence[str], features: sparse.csr_matrix | None = None) -> np.ndarray:
        features = self.features(texts) if features is None else features
        scores = features @ self.coef.T + self.intercept
        scores = scores - scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)


def _counter(kind: str, vocabulary: dict[str, int]):
    from sklearn.feature_extraction.text import CountVectorizer

    if kind == "char":
        return CountVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, preprocessor=normalize,
                               vocabulary=vocabulary, lowercase=False, dtype=np.float64)  # fmt: skip
    return CountVectorizer(analyzer="word", ngram_range=WORD_NGRAMS, token_pattern=WORD_PATTERN,
                           preprocessor=normalize, vocabulary=vocabulary, lowercase=False, dtype=np.float64)  # fmt: skip


def _tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """scikit-learn's TfidfTransformer(sublinear_tf=True, norm="l2") with the stored IDF weights, in place on
    the sparse values (no diagonal matrix the size of the vocabulary per call)."""
    from sklearn.preprocessing import normalize as l2

    weighted = counts.tocsr(copy=True)
    weighted.data = (np.log(weighted.data) + 1) * idf[weighted.indices]
    return l2(weighted, norm="l2", copy=False)


def train(examples: Iterable[Example], *, c: float = 20.0) -> Model:
    """Fit the vectorisers and the regression on `examples` (scikit-learn), and keep only their arrays."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    examples = list(examples)
    texts = [e.text for e in examples]
    labels = [e.label for e in examples]
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, preprocessor=normalize, lowercase=False,
                            sublinear_tf=True, min_df=2, dtype=np.float64)  # fmt: skip
    words = TfidfVectorizer(analyzer="word", ngram_range=WORD_NGRAMS, token_pattern=WORD_PATTERN,
                            preprocessor=normalize, lowercase=False, sublinear_tf=True, min_df=1, dtype=np.float64)  # fmt: skip
    matrix = sparse.hstack([chars.fit_transform(texts), words.fit_transform(texts)], format="csr")
    regression = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    regression.fit(matrix, labels)
    latin = [i for i, e in enumerate(examples) if e.lang in LATIN_LANGUAGES]
    languages = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    languages.fit(matrix[latin], [examples[i].lang for i in latin])
    return Model(
        lang_classes=tuple(languages.classes_),
        lang_coef=languages.coef_.astype(np.float64),
        lang_intercept=languages.intercept_.astype(np.float64),
        classes=tuple(regression.classes_),
        char_vocabulary={term: int(i) for term, i in chars.vocabulary_.items()},
        char_idf=chars.idf_.astype(np.float64),
        word_vocabulary={term: int(i) for term, i in words.vocabulary_.items()},
        word_idf=words.idf_.astype(np.float64),
        coef=regression.coef_.astype(np.float64),
        intercept=regression.intercept_.astype(np.float64),
    )


def save(model: Model, *, manifest: dict, directory: Path = MODEL_DIR) -> dict:
    """Write the model's arrays (no pickle) and its manifest, with the arrays' SHA-256."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE.name
    char_terms = sorted(model.char_vocabulary, key=model.char_vocabulary.get)
    word_terms = sorted(model.word_vocabulary, key=model.word_vocabulary.get)
    with path.open("wb") as handle:
        np.savez_compressed(
            handle, classes=np.array(model.classes), char_terms=np.array(char_terms, dtype=str),
            char_idf=model.char_idf, word_terms=np.array(word_terms, dtype=str), word_idf=model.word_idf,
            coef=model.coef.astype(np.float32), intercept=model.intercept, lang_classes=np.array(model.lang_classes),
            lang_coef=model.lang_coef.astype(np.float32), lang_intercept=model.lang_intercept,
        )  # fmt: skip
    manifest = {**manifest, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    (directory / MANIFEST_FILE.name).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def load(directory: Path = MODEL_DIR) -> Model:
    path, manifest_path = directory / MODEL_FILE.name, directory / MANIFEST_FILE.name
    if not path.exists() or not manifest_path.exists():
        raise ClassifierUnavailable("No trained model: run `python manage.py train_classifier`.")
    data = path.read_bytes()
    manifest = json.loads(manifest_path.read_text())
    if hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
        raise ClassifierUnavailable("The model's bytes do not match its manifest's checksum: train it again.")
    import io

    arrays = np.load(io.BytesIO(data), allow_pickle=False)
    return Model(
        classes=tuple(str(c) for c in arrays["classes"]),
        char_vocabulary={str(t): i for i, t in enumerate(arrays["char_terms"])},
        char_idf=arrays["char_idf"],
        word_vocabulary={str(t): i for i, t in enumerate(arrays["word_terms"])},
        word_idf=arrays["word_idf"],
        coef=arrays["coef"].astype(np.float64),
        intercept=arrays["intercept"],
        lang_classes=tuple(str(c) for c in arrays["lang_classes"]),
        lang_coef=arrays["lang_coef"].astype(np.float64),
        lang_intercept=arrays["lang_intercept"],
    )


def manifest() -> dict:
    try:
        return json.loads(MANIFEST_FILE.read_text())
    except (OSError, ValueError):
        return {}


@lru_cache(maxsize=1)
def _model() -> Model:
    return load()


# --- language -------------------------------------------------------------------------------------------

# Characters written differently in Traditional and Simplified Chinese, common in buyers' messages.
_TRADITIONAL = set(
    "這個來們貨還沒裡說買賣錢問題東發單號運費過給讓對會時間點為與從轉寄數張換關開氣後準備壞漏實際處理"
)
_SIMPLIFIED = set(
    "这个来们货还没里说买卖钱问题东发单号运费过给让对会时间点为与从转寄数张换关开气后准备坏漏实际处理"
)
_TRADITIONAL, _SIMPLIFIED = _TRADITIONAL - _SIMPLIFIED, _SIMPLIFIED - _TRADITIONAL
_LANGID_TO_OURS = {"en": "en", "th": "th", "ms": "ms", "id": "id", "vi": "vi"}


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE as LANGID_MODEL
    from py3langid.langid import LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(LANGID_MODEL, norm_probs=True)
    identifier.set_languages(["en", "zh", "th", "ms", "id", "vi"])
    return identifier


def language_of(text: str, *, model: Model | None = None, features: sparse.csr_matrix | None = None) -> str:
    """The message's language among LANGUAGES: Thai and Chinese by their scripts (a few Thai or Han
    characters decide it even amid Latin words), Vietnamese by its diacritics; the other Latin-script ones
    by the corpus-trained language model when it is sure (buyers' slang is what tells Malay from
    Indonesian), by py3langid otherwise."""
    han = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    thai = sum(1 for ch in text if "\u0e00" <= ch <= "\u0e7f")
    if thai and thai >= han:
        return "th"
    if han:
        traditional = sum(1 for ch in text if ch in _TRADITIONAL)
        simplified = sum(1 for ch in text if ch in _SIMPLIFIED)
        return "zh-hant" if traditional > simplified else "zh-hans"
    if re.search(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", text.casefold()):
        return "vi"
    if model is not None and features is not None and model.lang_coef is not None:
        scores = features @ model.lang_coef.T + model.lang_intercept
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))[0]
        probabilities = scores / scores.sum()
        best = int(np.argmax(probabilities))
        if probabilities[best] >= 0.6:
            return model.lang_classes[best]
    label, _probability = _identifier().classify(text)
    return _LANGID_TO_OURS.get(label, "en")


# --- classifying ----------------------------------------------------------------------------------------


def classify(text: str, *, model: Model | None = None) -> Classification:
    """The category of a buyer's message, its confidence, its language, and the words that decided it."""
    model = model or _model()
    clean = normalize(text)
    features = model.features([clean])
    probabilities = model.probabilities([clean], features)[0]
    best = int(np.argmax(probabilities))
    return Classification(
        category=model.classes[best],
        confidence=round(float(probabilities[best]), 4),
        language=language_of(text, model=model, features=features),
        words=_deciding(model, clean, best, features),
        scores={label: round(float(p), 4) for label, p in zip(model.classes, probabilities, strict=True)},
    )


def classify_many(texts: Sequence[str], *, model: Model | None = None) -> list[tuple[str, float]]:
    """(category, confidence) of many texts at once (the report and the benchmark)."""
    model = model or _model()
    probabilities = model.probabilities([normalize(t) for t in texts])
    best = probabilities.argmax(axis=1)
    return [(model.classes[i], float(probabilities[row, i])) for row, i in enumerate(best)]


def _deciding(
    model: Model, clean: str, best: int, features: sparse.csr_matrix, top: int = 5
) -> tuple[str, ...]:
    """The parts of the text that pushed most towards the chosen category, as a person reads them: a
    character n-gram is shown as the word it is part of (for scripts written with spaces), or as itself
    (Thai and Chinese run on without spaces); words and word pairs as they are."""
    columns = features.tocoo()
    weights = model.coef[best]
    char_count = len(model.char_vocabulary)
    if not model.terms:
        model.terms = (_inverse(model.char_vocabulary), _inverse(model.word_vocabulary))
    char_terms, word_terms = model.terms
    tokens = re.findall(r"\w+", clean)
    scored: dict[str, float] = {}
    for column, value in zip(columns.col, columns.data, strict=True):
        contribution = value * weights[column]
        if contribution <= 0:
            continue
        if column < char_count:
            term = char_terms[column].strip()
            if len(term) < 2 or not any(ch.isalnum() for ch in term):
                continue
            word = next((token for token in tokens if term in token), None)
            if word is None:
                continue  # an n-gram across a space or a punctuation mark: nothing a reader would point at
            unspaced = any("\u0e00" <= ch <= "\u0e7f" or "\u3040" <= ch <= "\u9fff" for ch in word)
            term = term if unspaced or len(word) > 15 else word  # Thai and Chinese run on: the n-gram itself
        else:
            term = word_terms[column - char_count]
        scored[term] = scored.get(term, 0.0) + contribution
    out: list[str] = []
    for term, _score in sorted(scored.items(), key=lambda item: -item[1]):
        if any(term in kept or kept in term for kept in out):
            continue
        out.append(term)
        if len(out) == top:
            break
    return tuple(out)


def _inverse(vocabulary: dict[str, int]) -> list[str]:
    terms = [""] * len(vocabulary)
    for term, index in vocabulary.items():
        terms[index] = term
    return terms
