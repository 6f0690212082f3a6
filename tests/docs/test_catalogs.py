"""The Japanese catalogs are complete: no untranslated or fuzzy message on a translated page, and
no English text that the catalogs have not seen.

Which messages must be translated (``docs/contributing.rst``): every message of the pages in
:data:`FULLY_TRANSLATED`; on the other reference pages, every message that comes from the page's
own text (its location is ``page.rst:LINE``). Messages from docstrings (autodoc, napoleon's field
names) stay English: the code is their source. The counts are those of ``msgfmt --statistics``:
translated, fuzzy, untranslated.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from tests.docs.rst_blocks import DOCS, pages

CATALOGS = DOCS / "locale" / "ja" / "LC_MESSAGES"
FULLY_TRANSLATED = (
    "index",
    "tutorial",
    "explanation",
    "howto/explore-a-design",
    "howto/inspect-a-live-server",
    "howto/verify-your-server",
    "reference/facts",
    "reference/glossary",
    "contributing",
)
"""Pages whose every message is translated; the other pages' own prose is too."""


def page_names() -> list[str]:
    return [str(p.relative_to(DOCS).with_suffix("")) for p in pages()]


def catalog(page: str) -> Catalog:
    with (CATALOGS / f"{page}.po").open("rb") as file:
        return read_po(file)


def messages(cat: Catalog) -> Iterator[Message]:
    return (m for m in cat if m.id)


def is_page_prose(message: Message) -> bool:
    """The message comes from a page's own text (a location ``….rst`` with a line number)."""
    return any(name.endswith(".rst") and line for name, line in message.locations)


def must_translate(page: str, message: Message) -> bool:
    return page in FULLY_TRANSLATED or is_page_prose(message)


def statistics(page: str) -> tuple[int, int, int]:
    """(translated, fuzzy, untranslated) among the messages that must be translated."""
    wanted = [m for m in messages(catalog(page)) if must_translate(page, m)]
    fuzzy = sum(1 for m in wanted if m.fuzzy)
    untranslated = sum(1 for m in wanted if not m.fuzzy and not m.string)
    return len(wanted) - fuzzy - untranslated, fuzzy, untranslated


def test_every_page_has_a_catalog_and_every_catalog_a_page() -> None:
    catalogs = {str(p.relative_to(CATALOGS).with_suffix("")) for p in CATALOGS.rglob("*.po")}
    assert catalogs == set(page_names())


def test_the_fully_translated_pages_exist() -> None:
    assert set(FULLY_TRANSLATED) <= set(page_names())


@pytest.mark.parametrize("page", page_names())
def test_no_message_is_untranslated_or_fuzzy(page: str) -> None:
    wrong = [
        f"{'fuzzy' if m.fuzzy else 'untranslated'}: {m.id!r:.90}"
        for m in messages(catalog(page))
        if must_translate(page, m) and (m.fuzzy or not m.string)
    ]
    translated, fuzzy, untranslated = statistics(page)
    assert not wrong, (
        f"{page}.po: {translated} translated, {fuzzy} fuzzy, {untranslated} untranslated; "
        "run 'make docs-po' and translate:\n" + "\n".join(wrong)
    )


INLINE_MARKUP = re.compile(
    r"``.+?``(?!`)|:[\w:+-]+:`[^`]+`|\*\*[^*]+\*\*|(?<![*\w])\*[^*\s][^*]*\*(?!\*)|`[^`]+`__?"
)
"""Inline literals, roles, strong, emphasis and links, as docutils recognises them."""


def unrecognisable_markup(text: str) -> list[str]:
    """Inline markup that docutils would show as plain text: Japanese has no spaces between
    words, and markup glued to a letter (``これは``x``です``) is not markup at all."""

    def is_boundary(char: str) -> bool:
        return not char or char.isspace() or unicodedata.category(char)[0] in "PZ"

    return [
        match[0]
        for match in INLINE_MARKUP.finditer(text)
        if not is_boundary(text[match.start() - 1 : match.start()])
        or not is_boundary(text[match.end() : match.end() + 1])
    ]


@pytest.mark.parametrize("page", page_names())
def test_translations_keep_their_inline_markup_recognisable(page: str) -> None:
    glued = {
        m.id: unrecognisable_markup(str(m.string)) for m in messages(catalog(page)) if m.string
    }
    glued = {str(k)[:60]: v for k, v in glued.items() if v}
    assert not glued, f"{page}.po: put a space between Japanese text and inline markup: {glued}"


def test_glued_markup_is_found() -> None:
    assert unrecognisable_markup("これは``x``です") == ["``x``"]
    assert unrecognisable_markup("これは ``x`` です。:fact:`K1`、**強調** (:doc:`a`)") == []


def test_the_rules_can_fail() -> None:
    cat = Catalog(locale="ja")
    cat.add("Hello", "", locations=[("../../docs/x.rst", 3)])
    # babel reads a docstring's location as ("forkshare.model.x", 1), ("of", None) and napoleon's
    # field names as ("….rst", None): neither is the page's own text.
    cat.add("Return type", "", locations=[("../../docs/x.rst", 0), ("forkshare.model.x", 1)])
    cat.add("Bye", "さようなら", locations=[("../../docs/x.rst", 5)], flags=["fuzzy"])
    flagged = [m.id for m in messages(cat) if must_translate("reference/x", m)]
    assert flagged == ["Hello", "Bye"]


@pytest.mark.slow
def test_the_catalogs_know_every_message_of_the_english_pages(tmp_path: Path) -> None:
    """A page changed without ``make docs-po`` would show English in the Japanese build."""
    subprocess.run(
        [
            "sphinx-build",
            "-q",
            "-b",
            "gettext",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "pot"),
        ],
        check=True,
        timeout=300,
        env=_venv_environment(),
    )
    stale = {}
    for page in page_names():
        with (tmp_path / "pot" / f"{page}.pot").open("rb") as file:
            wanted = {m.id for m in messages(read_po(file))}
        known = {m.id for m in messages(catalog(page))}
        if wanted - known:
            stale[page] = sorted(str(i)[:80] for i in wanted - known)
    assert not stale, f"run 'make docs-po' and translate: {stale}"


def _venv_environment() -> dict[str, str]:
    import os
    import sys

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env
