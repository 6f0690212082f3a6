"""``forkshare demo`` run for real, as ``make demo`` runs it: a live server under strace, the
model, the proofs and the verifier, in English and in Japanese. The output must carry the facts
the tour promises: the system calls by name, one socket inode shared by every process, one open
file description, who accepted each connection, and the counterexample's property."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forkshare.demo import build_parser

pytestmark = [pytest.mark.process, pytest.mark.slow]

TOUR_TIMEOUT = 150.0
"""The tour's own bounds add up to about 90 s at worst (server start, proofs, verify)."""
JAPANESE_SCRIPT = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
ROW = re.compile(r"│ (\d+) │ 127\.0\.0\.1:\d+ +│ \S+ (\d+) +│ pid=(\d+) generation=\d+ slot=(\d+)")


def tour(
    *arguments: str, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the tour in a fresh interpreter, as the command line does (stdout not a terminal)."""
    env = {**os.environ, "LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8", **(environ or {})}
    return subprocess.run(
        [sys.executable, "-m", "forkshare", "demo", *arguments],
        capture_output=True,
        text=True,
        timeout=TOUR_TIMEOUT,
        env=env,
        check=False,
    )


def parts(output: str) -> list[str]:
    """The text of each of the six parts, split at their headings ``n/6``."""
    pieces = re.split(r"^\s*[1-6]/6 ", output, flags=re.MULTILINE)
    assert len(pieces) == 7, output
    return pieces[1:]


@pytest.fixture(scope="module")
def english() -> str:
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: apt-get install strace (make test installs it)")
    result = tour("--lang", "en")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def japanese() -> str:
    result = tour(environ={"LANG": "ja_JP.UTF-8"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_trace_shows_each_roles_system_calls(english: str) -> None:
    trace = parts(english)[0]
    master = re.split(r"^ worker \d+", trace, flags=re.MULTILINE)[0]
    for call in ("socket(AF_INET", "SO_REUSEADDR", "bind(3", "listen(3", "clone("):
        assert call in master, call
    assert trace.count("epoll_create1(") == 3  # one epoll instance per worker, made after fork
    assert trace.count("EPOLL_CTL_ADD, 3, {events=EPOLLIN|EPOLLEXCLUSIVE}") == 3
    assert "✓ the master listened before it forked its workers" in trace
    assert "✗" not in trace


def test_the_picture_shows_one_socket_inode_shared_by_every_process(english: str) -> None:
    picture = parts(english)[1]
    assert "4 descriptors → 1 open file description → 1 socket → 1 accept queue" in picture
    assert "reference count 4" in picture
    assert len(set(re.findall(r"socket:\[(\d+)\]", picture))) == 1
    assert picture.count("fd 3") == 4
    assert "SO_REUSEADDR on" in picture


def test_each_connection_is_accepted_by_the_worker_that_answers_it(english: str) -> None:
    connections = parts(english)[2]
    rows = ROW.findall(connections)
    assert [int(number) for number, *_ in rows] == [1, 2, 3, 4]
    for _, acceptor, replier, slot in rows:
        assert acceptor == replier  # /proc and the server's own reply agree
        assert 0 <= int(slot) < 3
    accepted = re.findall(r"called accept4 (\d+) time", connections)
    assert sum(map(int, accepted)) == 4  # the trace saw every accept


def test_the_model_prints_the_counterexample_with_its_property(english: str) -> None:
    model = parts(english)[3]
    assert "violates no_queued_connection_lost" in model
    assert "kill_worker(" in model
    assert "aborted" in model


def test_the_proofs_and_the_verifier_each_report(english: str) -> None:
    proofs, verifier = parts(english)[4], parts(english)[5]
    assert re.search(r"Proved \d+ of \d+ obligations|The proof suite gave no result", proofs)
    assert re.search(r"\d+ steps in [\d.]+ s|The server violated|The verifier gave no", verifier)


def test_the_japanese_tour_is_japanese_in_every_part(japanese: str) -> None:
    for number, part in enumerate(parts(japanese), start=1):
        assert JAPANESE_SCRIPT.search(part), f"part {number} has no Japanese"
    assert "ディスクリプタ 4 個 → オープンファイル記述 1 個 → ソケット 1 個" in japanese
    assert "EPOLLEXCLUSIVE" in japanese
    assert "no_queued_connection_lost に違反" in japanese
    assert "The " not in japanese  # no English sentence left over


def test_lang_overrides_the_locale() -> None:
    result = tour("--lang", "en", "--quick", environ={"LANG": "ja_JP.UTF-8"})
    assert result.returncode == 0, result.stderr
    assert "How do the workers share" in result.stdout
    assert not JAPANESE_SCRIPT.search(result.stdout)


def test_without_strace_the_tour_says_so_and_goes_on(tmp_path: Path) -> None:
    result = tour("--quick", "--lang", "en", environ={"PATH": str(tmp_path)})  # no strace there
    assert result.returncode == 0, result.stderr
    assert "strace is not installed" in result.stdout
    assert "1 open file description" in result.stdout
    assert "violates no_queued_connection_lost" in result.stdout


def test_help_explains_the_tour_and_the_language() -> None:
    text = " ".join(build_parser().format_help().split())
    for words in ("--lang", "LANG", "strace", "open file description", "--quick"):
        assert words in text
