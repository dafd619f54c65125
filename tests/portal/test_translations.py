from __future__ import annotations

from pathlib import Path

import polib
from django.utils import translation

PO = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def test_every_ui_string_has_a_chinese_translation():
    po = polib.pofile(str(PO))

    untranslated = [e.msgid for e in po.untranslated_entries()]
    fuzzy = [e.msgid for e in po.fuzzy_entries()]

    assert untranslated == [], "run `make messages` and translate these"
    assert fuzzy == [], "review these guessed translations"


def test_the_compiled_catalogue_matches_the_source():
    po = polib.pofile(str(PO))

    def compiled(entry: polib.POEntry) -> str:
        if entry.msgid_plural:
            return translation.ngettext(entry.msgid, entry.msgid_plural, 2)
        return translation.gettext(entry.msgid)

    def source(entry: polib.POEntry) -> str:
        return entry.msgstr_plural[0] if entry.msgid_plural else entry.msgstr

    with translation.override("zh-hans"):
        stale = [e.msgid for e in po.translated_entries() if not e.msgctxt and compiled(e) != source(e)]
    assert stale == [], "run `make messages` (compilemessages) and commit the .mo"
