"""Every command shown in the docs is run or, when it cannot run here, parsed: the how-tos cannot
drift from the command line again.

How each console block is checked (its class, ``docs/contributing.rst``):

``run``
    Each command runs for real through ``bash`` from the repository's root, with ``.venv/bin`` first
    on ``PATH``, port 8080 replaced by a free port and ``/tmp/`` by a private directory, within
    :data:`RUN_TIMEOUT`; it must exit 0, or N for a block with the class ``exit-N``.
``session``
    The session blocks of one page run in order in one ``bash`` (so ``&``, ``%1`` and files written
    by one block serve the next), with the same substitutions. After a command that ends with ``&``
    the script waits until the port listens; every other command must exit 0, or N in a block
    with the class ``exit-N``; at the end every background job must have exited by itself (the
    page stops its server), else the test fails.
    The shell's process group is killed in teardown whatever happened.
``check``
    Not run. Every ``forkshare`` command is parsed by that sub-command's own argument parser (a
    usage error fails; ``$(…)`` and ``$VAR`` arguments count as ``1``), every ``make`` target must
    exist (``make -n``); other programs (``nginx``, ``jq``) are not checked. Each such block must
    be listed in :data:`NOT_RUN` with the reason it cannot run, and every entry of the list must
    still name a block.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.rst_blocks import CLASSES, DOCS, Block, blocks, pages

ROOT = DOCS.parent
VENV_BIN = ROOT / ".venv" / "bin"
RUN_TIMEOUT = 240.0
"""Seconds a ``run`` command may take (a ``forkshare verify`` takes about 25 s here)."""
SESSION_TIMEOUT = 240.0
"""Seconds a page's whole session may take (the verify how-to's: three verifier runs, about
90 s here)."""
PORT_WAIT = 20.0
"""Seconds a session waits for a server started with ``&`` to listen."""

NOT_RUN: dict[tuple[str, str], str] = {
    ("tutorial.rst", "make install"): "installs into .venv, which the test suite is running from",
    ("tutorial.rst", "make demo"): "installs first, then the tour; tests/cli/test_demo.py runs "
    "the tour itself in both languages",
    ("tutorial.rst", ".venv/bin/forkshare explore --all"): "takes a minute or more; the model's "
    "own tests cover every mode and variant",
    (
        "howto/explore-a-design.rst",
        "forkshare explore --all --json | jq -r 'select(.passes | not) | .run'",
    ): "the same exploration, a minute or more",
    ("howto/inspect-a-live-server.rst", "forkshare inspect --port 8080"): "needs a server the "
    "reader runs (nginx's pid file); the tutorial's session runs inspect for real",
    ("howto/inspect-a-live-server.rst", "forkshare inspect --port 8080 --svg server.svg"): "needs "
    "a server the reader runs",
    (
        "howto/inspect-a-live-server.rst",
        "forkshare trace --connections 3 -- nginx -g 'daemon off;'",
    ): "nginx and a WSGI app of the reader's; tests/conformance traces nginx and gunicorn",
    ("howto/verify-your-server.rst", "forkshare verify --profile docs/examples/nginx.toml"): "a "
    "minute against nginx; tests/docs/test_examples.py runs this profile with a short budget",
    ("explanation.rst", "make verdicts"): "ten minutes, and needs every server installed; "
    "tests/docs/test_verdicts.py checks the file and records one target with a short budget",
    ("contributing.rst", "make docs"): "builds both languages (the docs build is its own check)",
    ("contributing.rst", "make docs-po"): "rewrites the catalogs; test_catalogs.py checks they are "
    "up to date",
}
"""``check`` blocks, keyed by (page, first command), with the reason each is not run."""


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks(page)]


def console_blocks(kind: str) -> list[Block]:
    return [b for b in all_blocks() if b.language == "console" and b.kind == kind]


def block_id(block: Block) -> str:
    return block.where


# ---------------------------------------------------------------------------------------------
# Every block says what it is
# ---------------------------------------------------------------------------------------------


def test_every_literal_block_has_a_language() -> None:
    plain = [b.where for b in all_blocks() if not b.language]
    assert not plain, f"plain '::' literal blocks (use code-block console/text): {plain}"


def test_every_console_block_is_run_in_a_session_or_checked() -> None:
    unclassified = [
        b.where for b in all_blocks() if b.language == "console" and not b.kind and b.commands()
    ]
    assert not unclassified, (
        f"console blocks without exactly one class of {CLASSES}: {unclassified}"
    )


def test_no_command_hides_in_a_block_that_is_not_console() -> None:
    hidden = [
        b.where
        for b in all_blocks()
        if b.language not in ("console", "include")
        and any(line.startswith("$ ") for line in b.text.splitlines())
    ]
    assert not hidden, f"'$ ' commands outside console blocks: {hidden}"


def test_every_check_block_is_listed_with_its_reason() -> None:
    listed = {(b.page, b.commands()[0]) for b in console_blocks("check")}
    assert listed - NOT_RUN.keys() == set(), "check blocks missing from NOT_RUN"
    assert NOT_RUN.keys() - listed == set(), "NOT_RUN entries that name no check block"
    assert all(NOT_RUN.values()), "every block that is not run needs a reason"


# ---------------------------------------------------------------------------------------------
# check: parse without running
# ---------------------------------------------------------------------------------------------


def _check_commands() -> list[tuple[str, str]]:
    return [(b.where, c) for b in console_blocks("check") for c in b.commands()]


@pytest.mark.parametrize(("where", "command"), _check_commands())
def test_a_check_command_parses(where: str, command: str) -> None:
    words = _first_simple_command(command)
    program = Path(words[0]).name
    if program == "forkshare":
        _parse_forkshare(words[1:], where)
    elif program == "make":
        status = subprocess.run(
            ["make", "-n", *words[1:]], cwd=ROOT, capture_output=True, timeout=30, check=False
        )
        assert status.returncode == 0, f"{where}: no make target {words[1:]}"


def _first_simple_command(command: str) -> list[str]:
    """The words of the first command of a pipeline or list; ``$…`` words become ``1``."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    for word in lexer:
        if word in ("|", "||", "&&", ";", "&"):
            break
        words.append("1" if word.startswith("$") else word)
    return words


def _parse_forkshare(argv: list[str], where: str) -> None:
    from forkshare.cli import SUBCOMMANDS

    name, rest = argv[0], argv[1:]
    assert name in SUBCOMMANDS, f"{where}: no sub-command {name!r}"
    overrides = runpy.run_path(str(DOCS / "conf.py"))["forkshare_cli_parsers"]
    module_name, _, function = overrides.get(name, SUBCOMMANDS[name].module).partition(":")
    module = __import__(module_name, fromlist=["_"])
    parser = getattr(module, function or "build_parser")()
    try:
        parser.parse_args(rest)
    except SystemExit as error:
        pytest.fail(f"{where}: forkshare {name} rejects {rest} (status {error.code})")


# ---------------------------------------------------------------------------------------------
# run and session: for real
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def substitute(command: str, port: int, scratch: Path) -> str:
    """The command as the test runs it: its own port and scratch directory."""
    return command.replace("8080", str(port)).replace("/tmp/", f"{scratch}/")


def shell_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    return env


def run_bash(script: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in its own process group; kill the group afterwards, whatever happened."""
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=ROOT,
        env=shell_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = "", f"timed out after {timeout} s"
    finally:
        _kill_group(process.pid)
        process.wait(timeout=10)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _run_commands() -> Iterator[tuple[Block, str]]:
    for block in console_blocks("run"):
        for command in block.commands():
            yield block, command


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.parametrize(
    ("block", "command"), list(_run_commands()), ids=[f"{b.where}" for b, _ in _run_commands()]
)
def test_a_run_command_exits_as_the_page_says(block: Block, command: str, tmp_path: Path) -> None:
    actual = substitute(command, free_port(), tmp_path)
    result = run_bash(actual, RUN_TIMEOUT)
    assert result.returncode == block.expected_status, (
        f"{block.where}: `{actual}` exited {result.returncode}, the page says "
        f"{block.expected_status}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )


def session_script(session: list[Block], port: int, scratch: Path) -> str:
    """One bash script for a page's session blocks (see the module docstring)."""
    lines = [
        "set -u",
        f"wait_port() {{ {shlex.quote(sys.executable)} -c {shlex.quote(WAIT_PORT)} {port}; }}",
    ]
    for block in session:
        for command in block.commands():
            actual = substitute(command, port, scratch)
            quoted = shlex.quote(f"{block.where}: {actual}")
            lines.append(actual)
            if actual.rstrip().endswith("&"):
                lines.append(f"wait_port || {{ echo 'never listened:' {quoted} >&2; exit 98; }}")
            else:
                expected = block.expected_status
                lines.append(
                    f"status=$?; [ $status -eq {expected} ] || "
                    f'{{ echo "status $status, not {expected}:" {quoted} >&2; exit 97; }}'
                )
    lines += [
        f'for _ in $(seq {int(PORT_WAIT * 5)}); do [ -z "$(jobs -pr)" ] && exit 0; sleep 0.2; done',
        "echo 'a background job outlived the session:' $(jobs -pr) >&2; exit 99",
    ]
    return "\n".join(lines)


WAIT_PORT = textwrap.dedent(
    f"""
    import socket, sys, time
    deadline = time.monotonic() + {PORT_WAIT}
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
            sys.exit(0)
        except OSError:
            time.sleep(0.1)
    sys.exit(1)
    """
)
"""Wait (bounded) until something listens on the port given as the argument."""


def _sessions() -> dict[str, list[Block]]:
    sessions: dict[str, list[Block]] = {}
    for block in console_blocks("session"):
        sessions.setdefault(block.page, []).append(block)
    return sessions


@pytest.mark.process
@pytest.mark.parametrize("page", sorted(_sessions()))
def test_a_pages_session_runs_start_to_finish(page: str, tmp_path: Path) -> None:
    script = session_script(_sessions()[page], free_port(), tmp_path)
    result = run_bash(script, SESSION_TIMEOUT)
    assert result.returncode == 0, (
        f"{page}:\n{script}\n---\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
