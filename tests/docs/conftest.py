"""Fixtures of the docs browser test: the docs built by ``make docs`` and served on 127.0.0.1,
Debian's Chromium (skipped, with the reason, only where it is not installed), and every built page
opened once at each window width, with the explanation page photographed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Route

from tests.docs.chromium import CHROMIUM, chromium
from tests.docs.layout import PageView, Window
from tests.docs.site import BUILD, SCREENSHOTS, build_docs, built_pages, serve

WINDOWS = {390: 844, 1280: 800}
"""Width → height in CSS pixels: a phone (iPhone 12 to 15 class) and a laptop."""
LOCAL = "http://127.0.0.1:"
"""The only origin a page may load from: anything else would leave the machine."""
PHOTOGRAPHED = "explanation.html"
"""The page whose screenshots (every language, both widths, light and dark) go to SCREENSHOTS."""


@pytest.fixture(scope="session")
def docs_url() -> Iterator[str]:
    """The base URL of ``docs/_build``, freshly built by ``make docs`` and served on 127.0.0.1."""
    built = build_docs()
    assert built.returncode == 0, f"make docs failed:\n{built.stdout}\n{built.stderr}"
    with serve(BUILD) as url:
        yield url


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Headless Debian Chromium whose requests may only reach 127.0.0.1 (the docs server)."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium (see "
            ".ci/system-packages.toml), or run apt-get install chromium"
        )

    def refuse(route: Route) -> None:
        route.abort("blockedbyclient")  # reported by the page as a failed request

    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        context.route(lambda url: not url.startswith(LOCAL), refuse)
        yield context


@pytest.fixture(scope="session")
def views(browser: BrowserContext, docs_url: str) -> list[PageView]:
    """Every built page at every width in WINDOWS; the PHOTOGRAPHED page saved as screenshots."""
    pages = built_pages(BUILD)
    assert any(page.endswith(PHOTOGRAPHED) for page in pages), f"no {PHOTOGRAPHED} in {BUILD}"
    SCREENSHOTS.mkdir(exist_ok=True)
    seen: list[PageView] = []
    for width, height in WINDOWS.items():
        window = Window(browser, docs_url, width, height)
        try:
            for page in pages:
                seen.append(window.view(page))
                if page.endswith(PHOTOGRAPHED):
                    photograph(window, seen[-1])
        finally:
            window.close()
    return seen


def screenshot_path(view: PageView, scheme: str) -> Path:
    """``explanation-ja-390.png`` (light) or ``explanation-ja-390-dark.png`` under SCREENSHOTS."""
    suffix = "" if scheme == "light" else f"-{scheme}"
    return SCREENSHOTS / f"{Path(view.page).stem}-{view.lang}-{view.width}{suffix}.png"


def photograph(window: Window, view: PageView) -> None:
    """The first screen of ``view`` as the reader sees it, in the light and the dark scheme."""
    window.screenshot(screenshot_path(view, "light"), "light")
    window.screenshot(screenshot_path(view, "dark"), "dark")
