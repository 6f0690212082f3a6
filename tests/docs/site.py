"""The built docs as a reader gets them: ``make docs`` output under ``docs/_build``, every language
directory in it, served over HTTP on 127.0.0.1 from a thread."""

from __future__ import annotations

import functools
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).parents[2]
BUILD = REPOSITORY / "docs" / "_build"
"""Every build of the docs lands under here: ``html/``, and one directory per translation."""
SCREENSHOTS = BUILD / "screenshots"
NOT_PAGES = frozenset({"_static", "_sources", "_images", "screenshots"})
"""Directories of a build that hold assets, not pages a reader opens."""
BUILD_TIMEOUT = 600.0


def build_docs() -> subprocess.CompletedProcess[str]:
    """Run ``make docs``: the one definition of how (and in which languages) the docs are built.

    Sphinx rebuilds only what changed, so on an up-to-date tree this takes well under a second.
    """
    return subprocess.run(
        ["make", "--no-print-directory", "docs"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )


def built_pages(root: Path = BUILD) -> list[str]:
    """Every HTML page under ``root`` as a URL path relative to it, sorted (``html/index.html``)."""
    pages = (path.relative_to(root) for path in root.rglob("*.html"))
    return sorted(page.as_posix() for page in pages if NOT_PAGES.isdisjoint(page.parts))


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files without a log line per request on the test's stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        """Drop the access log (a failed request is reported by the browser instead)."""


@contextmanager
def serve(root: Path = BUILD) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 at a free port from a daemon thread; yields the base URL.

    The server is shut down and its socket closed when the block ends.
    """
    handler = functools.partial(_QuietHandler, directory=str(root))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, name="docs-server", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()
            thread.join(timeout=10)
