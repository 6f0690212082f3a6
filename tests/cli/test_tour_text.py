"""The tour's two languages: every message exists in both, with the same placeholders, and the
Japanese is Japanese; the language follows --lang, else the locale."""

from __future__ import annotations

import re
import string
from dataclasses import fields

import pytest

from forkshare.tour_text import ENGLISH, JAPANESE, choose_language

JAPANESE_SCRIPT = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
MESSAGES = [f.name for f in fields(ENGLISH) if f.name != "words"]


def texts(value: object) -> list[str]:
    """The strings of one message: itself, or every string inside a tuple."""
    if isinstance(value, str):
        return [value]
    assert isinstance(value, tuple)
    return [s for item in value for s in texts(item)]


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("name", MESSAGES)
def test_every_japanese_message_is_written_in_japanese(name: str) -> None:
    english, japanese = getattr(ENGLISH, name), getattr(JAPANESE, name)
    assert japanese != english
    assert any(JAPANESE_SCRIPT.search(text) for text in texts(japanese)), name


@pytest.mark.parametrize("name", [m for m in MESSAGES if m != "claims"])  # English: the model's
def test_both_languages_fill_the_same_placeholders(name: str) -> None:
    english, japanese = texts(getattr(ENGLISH, name)), texts(getattr(JAPANESE, name))
    assert [placeholders(t) for t in english] == [placeholders(t) for t in japanese]


def test_the_claims_translated_are_claims_of_the_model() -> None:
    from forkshare.model.invariants import INVARIANTS

    assert {name for name, _ in JAPANESE.claims} <= set(INVARIANTS)


@pytest.mark.parametrize(
    ("explicit", "environ", "expected"),
    [
        (None, {}, "en"),
        (None, {"LANG": "ja_JP.UTF-8"}, "ja"),
        (None, {"LANG": "ja"}, "ja"),
        (None, {"LANG": "ja_JP.UTF-8", "LC_ALL": "C.UTF-8"}, "en"),  # LC_ALL wins
        (None, {"LANG": "en_US.UTF-8", "LC_MESSAGES": "ja_JP.UTF-8"}, "ja"),
        (None, {"LC_ALL": "", "LANG": "ja_JP.eucJP"}, "ja"),  # an empty variable is not set
        ("en", {"LANG": "ja_JP.UTF-8"}, "en"),  # --lang wins
        ("ja", {}, "ja"),
    ],
)
def test_the_language_comes_from_lang_then_the_locale(
    explicit: str | None, environ: dict[str, str], expected: str
) -> None:
    assert choose_language(explicit, environ) == expected
