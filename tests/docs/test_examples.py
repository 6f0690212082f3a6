"""Every file in ``docs/examples/`` is shown in a page and used for real.

:data:`USES` says how each file is exercised; a file without an entry, or an entry without a
file, fails. The example server and the verify profiles are run by the console blocks that show
them (``test_shell_blocks.py``); the nginx profile, whose documented run takes a minute, and the
``forkshare serve`` options file are exercised here.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from forkshare.impl.options import load_options
from tests.docs.rst_blocks import DOCS, blocks, pages
from tests.docs.test_shell_blocks import ROOT, run_bash

EXAMPLES = DOCS / "examples"
USES = {
    "tiny_prefork.py": "run by the session of howto/verify-your-server.rst and by the verify and "
    "trace blocks",
    "myserver.toml": "run by `forkshare verify --profile docs/examples/myserver.toml` (a run block)",
    "nginx.toml": "test_the_nginx_profile_verifies_nginx_with_a_short_budget",
    "nginx.conf.in": "test_the_nginx_profile_verifies_nginx_with_a_short_budget (the profile's "
    "command fills it in)",
    "serve.toml": "test_the_serve_options_file_is_accepted_by_the_server",
}


def included() -> set[str]:
    return {
        Path(b.include).name
        for page in pages()
        for b in blocks(page)
        if b.language == "include" and "examples/" in b.include
    }


def test_every_example_is_shown_in_a_page() -> None:
    present = {p.name for p in EXAMPLES.iterdir() if p.is_file()}
    assert present == included()


def test_every_example_is_used_by_a_test() -> None:
    present = {p.name for p in EXAMPLES.iterdir() if p.is_file()}
    assert present == set(USES)


def test_the_serve_options_file_is_accepted_by_the_server() -> None:
    options = load_options(["--config", str(EXAMPLES / "serve.toml")])
    assert options.mode == "exclusive"
    assert options.workers == 4


@pytest.mark.process
@pytest.mark.nginx
@pytest.mark.skipif(shutil.which("nginx", path="/usr/sbin:/usr/bin") is None, reason="no nginx")
def test_the_nginx_profile_verifies_nginx_with_a_short_budget(tmp_path: Path) -> None:
    replay = tmp_path / "replay.json"
    command = (
        "forkshare verify --profile docs/examples/nginx.toml --examples 2 --steps 4 "
        f"--replay-out {replay}"
    )
    result = run_bash(command, 240)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def test_the_repository_root_is_where_the_examples_run_from() -> None:
    # The profiles name docs/examples/… relative to the root, as the pages tell readers to run.
    assert (ROOT / "docs" / "examples" / "tiny_prefork.py").is_file()
    assert subprocess.run(["git", "rev-parse"], cwd=ROOT, check=False, timeout=10).returncode == 0
