"""Sentences the system writes on a case (its summary, its timeline entries), readable in each reader's language.

A rule runs in a worker with no reader in sight, so what it writes is kept as an English message id and its
parameters (`Text`), and rendered when someone reads it: a Chinese agent reads Chinese, an English one
English. The English rendering is also stored in the plain columns (`Case.summary`, `CaseEvent.message`), so
search, exports and the admin keep working, and rows written before this existed still show their text.

Parameters are data, not words: a carrier is kept as its code and shown by its brand name, a subtag by its
label, and a parameter may itself be a Text (or a list of them, joined) for sentences built from parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

from django.utils import translation
from django.utils.translation import gettext

from tracking.carriers import carrier_name
from tracking.choices import subtag_label

DATA_KEY = "text"  # where a CaseEvent's data keeps its Text
SUMMARY_KEY = "summary_text"  # where a Case's facts keep its summary's Text


class Text:
    """An English message id (marked with gettext_noop where it is written) and its parameters."""

    __slots__ = ("msgid", "params")

    def __init__(self, msgid: str, **params: Any) -> None:
        self.msgid = msgid
        self.params = params

    def render(self, language: str | None = None) -> str:
        """The sentence in `language`, or in the active language when None."""
        with translation.override(language) if language else nullcontext():
            translated = gettext(self.msgid)
            if not self.params and "%(" not in translated:
                return translated
            return translated % {key: _shown(key, value) for key, value in self.params.items()}

    def __str__(self) -> str:
        return self.render("en")

    def __repr__(self) -> str:
        return f"Text({self.msgid!r}, **{self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and (self.msgid, self.params) == (other.msgid, other.params)

    def __hash__(self) -> int:
        return hash(self.msgid)

    def as_data(self) -> dict[str, Any]:
        """JSON for a model's JSON field; `Text.from_data` reads it back."""
        return {"msgid": self.msgid, "params": {key: _data(value) for key, value in self.params.items()}}

    @classmethod
    def from_data(cls, data: object) -> Text | None:
        if not isinstance(data, Mapping) or not isinstance(data.get("msgid"), str):
            return None
        params = data.get("params") if isinstance(data.get("params"), Mapping) else {}
        return cls(data["msgid"], **{key: _from_data(value) for key, value in params.items()})


def _data(value: Any) -> Any:
    if isinstance(value, Text):
        return value.as_data()
    if isinstance(value, list | tuple):
        return [_data(item) for item in value]
    return value


def _from_data(value: Any) -> Any:
    if isinstance(value, Mapping):
        return Text.from_data(value) or value
    if isinstance(value, list):
        return [_from_data(item) for item in value]
    return value


def _shown(key: str, value: Any) -> Any:
    if isinstance(value, Text):
        return value.render()
    if isinstance(value, list):
        return "; ".join(str(_shown(key, item)) for item in value)
    if key == "carrier":
        return carrier_name(value)
    if key == "subtag":
        label = str(subtag_label(value))
        return label.lower() if translation.get_language() in (None, "en") else label
    return value


def event_data(text: str | Text, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A timeline entry's data, carrying its message's Text when the message is one."""
    data = dict(data or {})
    if isinstance(text, Text):
        data[DATA_KEY] = text.as_data()
    return data


def text_or(stored: str, data: object) -> str:
    """The Text kept in `data` rendered in the active language, else the stored plain text (also when the
    kept parameters no longer fit the message: a page never fails over a sentence)."""
    text = Text.from_data(data)
    if text is None:
        return stored
    try:
        return text.render()
    except (KeyError, ValueError, TypeError):
        return stored


def case_summary(case: Any) -> str:
    """A case's summary in the reader's language (its stored English summary for older cases)."""
    facts = case.facts if isinstance(case.facts, Mapping) else {}
    return text_or(case.summary, facts.get(SUMMARY_KEY))


def event_message(event: Any) -> str:
    """A timeline entry's message in the reader's language (notes and message bodies are shown as written)."""
    data = event.data if isinstance(event.data, Mapping) else {}
    return text_or(event.message, data.get(DATA_KEY))
