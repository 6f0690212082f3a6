"""Debian's Chromium under Playwright, with nothing downloaded.

Playwright's own browser builds are never installed (``playwright install`` would download one):
Playwright drives the system's ``/usr/bin/chromium`` (the ``chromium`` package of
``.ci/system-packages.toml``) through ``executable_path``, headless, with a fresh profile and with
every background service that could reach the network switched off.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LAUNCH_TIMEOUT_MS = 60_000
ACTION_TIMEOUT_MS = 30_000
"""Every navigation, evaluation and screenshot is bounded by this."""


@contextmanager
def chromium(profile: Path) -> Iterator[BrowserContext]:
    """Start headless Chromium with ``profile`` as its (fresh) user data directory.

    Yields the browser's one context; the browser is closed when the block ends.
    """
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=list(CHROMIUM_ARGS),
            timeout=LAUNCH_TIMEOUT_MS,
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()
