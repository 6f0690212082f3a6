"""A child command's JSON is read, its failure explained, its timeout bounded, and whatever it
started in a session of its own is killed with it."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from forkshare.conformance.observe import procfs
from forkshare.json_command import run_json_command

pytestmark = pytest.mark.process


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_the_document_printed_on_stdout_is_returned() -> None:
    result = run_json_command(python('print(\'{"verdict": "conforms", "steps": 3}\')'), 10)
    assert result.document == {"verdict": "conforms", "steps": 3}
    assert (result.reason, result.timed_out) == ("", None)


def test_without_a_document_the_reason_is_the_last_line_of_stderr() -> None:
    code = "import sys; print('Traceback …', file=sys.stderr); sys.exit(\"KeyError: 'x'\")"
    result = run_json_command(python(code), 10)
    assert result.document is None
    assert result.reason == "KeyError: 'x'"


def test_a_command_that_overruns_is_stopped_with_what_it_started(tmp_path: Path) -> None:
    # Like the verifier: a server started in a session of its own, which killing the command's
    # process group does not reach, and which a command killed by SIGINT does not clean up.
    pid_file = tmp_path / "server.pid"
    code = f"""
        import subprocess, sys, time
        server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                  start_new_session=True)
        open({str(pid_file)!r}, "w").write(str(server.pid))
        time.sleep(60)
    """
    result = run_json_command(python(code), 2.0)
    assert result.document is None
    assert result.timed_out == 2.0
    server = int(pid_file.read_text())
    assert procfs.read_stat(server) is None  # killed and reaped, not left to init
