"""Every built page of the docs, in every language, read in a real browser (Debian's Chromium) at a
phone's width (390 px) and a laptop's (1280 px): nothing scrolls sideways, Japanese pages use a
Japanese font, no page shows a build error, nothing is fetched from off the machine, and the
explanation page is photographed for the record (``docs/_build/screenshots``)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from tests.docs.conftest import PHOTOGRAPHED, WINDOWS, screenshot_path
from tests.docs.layout import PageView, measure

pytestmark = [pytest.mark.process, pytest.mark.browser]

JAPANESE_FONTS = frozenset({"Noto Sans CJK JP", "Hiragino Sans", "Yu Gothic", "Meiryo"})


def describe(view: PageView) -> str:
    """``html/x.html at 390 px: 1400 px wide; widest: div.document (1340 px) "text…"``."""
    where = f"{view.page} at {view.width} px: {view.scroll_width} px wide"
    if view.culprit is None:
        return where
    culprit = view.culprit
    return f'{where}; widest: {culprit.path} ({culprit.width} px) "{culprit.text}"'


def test_no_page_scrolls_sideways_on_a_phone_or_a_laptop(views: list[PageView]) -> None:
    too_wide = [describe(view) for view in views if view.scrolls_sideways]
    assert not too_wide, "\n".join(too_wide)


def test_japanese_pages_use_a_japanese_font_and_the_others_do_not(views: list[PageView]) -> None:
    wrong = [
        f"{view.page} (lang={view.lang!r}) at {view.width} px: font-family {view.font_family}"
        for view in views
        if (view.first_font in JAPANESE_FONTS) != view.lang.startswith("ja")
    ]
    assert not wrong, "\n".join(wrong)


def test_no_page_shows_its_reader_a_build_error(views: list[PageView]) -> None:
    assert [(view.page, view.width) for view in views if view.error_boxes] == []


def test_every_file_a_page_asks_for_is_served_from_the_build(views: list[PageView]) -> None:
    failed = [f"{view.page}: {request}" for view in views for request in view.failed_requests]
    assert not failed, "\n".join(failed)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_explanation_page_is_photographed_at_both_widths_in_every_language(
    views: list[PageView],
) -> None:
    photographed = [view for view in views if view.page.endswith(PHOTOGRAPHED)]
    assert {view.width for view in photographed} == set(WINDOWS)
    for view in photographed:
        for scheme in ("light", "dark"):
            assert png_size(screenshot_path(view, scheme)) == (view.width, WINDOWS[view.width])


def test_the_probe_names_the_element_that_pushes_the_page_out(browser: BrowserContext) -> None:
    page = browser.new_page()
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        page.set_content(
            '<html lang="en"><body><article><p>fits</p>'
            '<div class="scrolls" style="overflow-x: auto"><pre style="width: 2000px">x</pre></div>'
            '<div class="fixed" style="width: 1340px"><p>too wide</p></div></article></body></html>'
        )
        view = measure(page, "synthetic")
    finally:
        page.close()
    assert view.scrolls_sideways
    assert view.culprit is not None
    assert (view.culprit.path, view.culprit.width) == ("article > div.fixed", 1340)
