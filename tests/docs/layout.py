"""What a reader sees of one page at one window width, measured in the browser.

A page *scrolls sideways* when ``document.documentElement.scrollWidth > window.innerWidth``: some
element sticks out past the right edge of the window, and the reader has to pan to read. The probe
then names the culprit, what to fix: the widest element that sticks out past both the window and
its own parent (its descendants only follow it; a block parent does not grow with it), outside any
box that scrolls or clips on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from playwright.sync_api import BrowserContext, Page, Request, Response

FURO_INLINE_CONTENTS = "this-will-duplicate-information-and-it-is-still-useful-here"
ERROR_BOXES = (
    ".system-message, .problematic, "
    f".contents:not(.{FURO_INLINE_CONTENTS})"  # Furo paints an unmarked ``contents`` as an error
)
"""Things a page shows its reader only when the build went wrong."""

_MEASURE = """([errorBoxes]) => {
  const limit = window.innerWidth;
  const body = document.querySelector("article p") || document.body;
  const seen = {
    lang: document.documentElement.lang,
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: limit,
    font: getComputedStyle(body).fontFamily,
    errorBoxes: document.querySelectorAll(errorBoxes).length,
    culprit: null,
  };
  if (seen.scrollWidth <= limit) return seen;
  const inOwnBox = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") return true;
    }
    return false;
  };
  const sticksOut = (el, box) =>
    box.right > limit + 0.5 && box.right > el.parentElement.getBoundingClientRect().right + 0.5;
  let worst = null, worstWidth = -1;
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width > worstWidth && sticksOut(el, box) && !inOwnBox(el)) {
      worst = el; worstWidth = box.width;
    }
  }
  if (worst === null) return seen;
  const path = [];
  for (let el = worst; el && el !== document.body; el = el.parentElement) {
    let step = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "");
    for (const name of Array.from(el.classList).slice(0, 2)) step += "." + name;
    path.unshift(step);
  }
  seen.culprit = {
    path: path.join(" > "),
    width: Math.round(worstWidth),
    text: worst.innerText.trim().replace(/\\s+/g, " ").slice(0, 60),
  };
  return seen;
}"""


@dataclass(frozen=True, slots=True)
class Culprit:
    """The widest element sticking out past the window's right edge."""

    path: str
    """Its place in the page: ``article > section#x > div.table-wrapper > table``."""
    width: int
    text: str
    """The start of its text, to find it in the page."""


@dataclass(frozen=True, slots=True)
class PageView:
    """One page at one window width, as measured in Chromium."""

    page: str
    """The page's path under ``docs/_build`` (``html/ja/explanation.html``)."""
    width: int
    """The window's inner width in CSS pixels."""
    lang: str
    """The page's ``<html lang>``: which translation it is."""
    scroll_width: int
    """The document's width; more than ``width`` means the reader scrolls sideways."""
    culprit: Culprit | None
    font_family: str
    """The computed ``font-family`` of the page's running text."""
    error_boxes: int
    failed_requests: tuple[str, ...]
    """Files the page asked for that did not arrive (an error status, or refused: off the machine)."""

    @property
    def scrolls_sideways(self) -> bool:
        """Whether the page is wider than the window."""
        return self.scroll_width > self.width

    @property
    def first_font(self) -> str:
        """The first family of ``font_family``, unquoted: the font the text asks for first."""
        return self.font_family.split(",")[0].strip().strip("\"'")


class Window:
    """One browser tab at a fixed size, opening pages of the docs served at ``base_url``."""

    def __init__(self, context: BrowserContext, base_url: str, width: int, height: int) -> None:
        self.width = width
        self.base_url = base_url
        self._page: Page = context.new_page()
        self._page.set_viewport_size({"width": width, "height": height})
        self._failed: list[str] = []
        self._page.on("requestfailed", self._request_failed)
        self._page.on("response", self._response)

    def _request_failed(self, request: Request) -> None:
        self._failed.append(f"{request.url} ({request.failure})")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self._failed.append(f"{response.url} (HTTP {response.status})")

    def view(self, page: str) -> PageView:
        """Open ``page`` (a path under the served root), wait for its fonts, and measure it."""
        self._failed.clear()
        self._page.goto(self.base_url + page, wait_until="load")
        self._page.evaluate("document.fonts.ready.then(() => true)")
        return measure(self._page, page, tuple(self._failed))

    def screenshot(self, path: Path, scheme: Literal["light", "dark"] = "light") -> None:
        """Save what the window shows now, in the light or dark colour scheme, to ``path`` (PNG)."""
        self._page.emulate_media(color_scheme=scheme)
        try:
            self._page.screenshot(path=str(path))
        finally:
            self._page.emulate_media(color_scheme="light")

    def close(self) -> None:
        """Close the tab."""
        self._page.close()


def measure(page: Page, name: str, failed: tuple[str, ...] = ()) -> PageView:
    """Measure the page loaded in ``page`` (see the module docstring); ``name`` names it."""
    seen: dict[str, Any] = page.evaluate(_MEASURE, [ERROR_BOXES])
    culprit = seen["culprit"]
    return PageView(
        page=name,
        width=int(seen["innerWidth"]),
        lang=str(seen["lang"]),
        scroll_width=int(seen["scrollWidth"]),
        culprit=Culprit(**culprit) if culprit else None,
        font_family=str(seen["font"]),
        error_boxes=int(seen["errorBoxes"]),
        failed_requests=failed,
    )
