"""``forkshare trace`` on real servers: the tiny prefork server (shared and private reuseport)
and the Debian nginx; plus its usage errors and a target that fails to start."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forkshare.cli import main as forkshare
from forkshare.conformance.observe import procfs
from forkshare.conformance.observe.deadline import wait_until
from forkshare.conformance.observe.launch import free_port
from forkshare.conformance.observe.observer import snapshot
from forkshare.conformance.observe.role import Role
from forkshare.conformance.strace import strace_run

Command = Callable[[int], list[str]]  # the nginx_command fixture (conftest.py)

pytestmark = pytest.mark.process


@pytest.fixture(autouse=True)
def _strace_is_installed() -> None:
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: apt-get install strace (CI installs it)")


def trace(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = forkshare(["trace", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def trace_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    status, out, err = trace(["--json", *argv], capsys)
    assert out, err
    return status, json.loads(out)


def assert_all_gone(document: Any) -> None:
    """Every traced process was stopped (a zombie reparented to a non-reaping init counts)."""
    for process in document["analysis"]["processes"]:
        stat = procfs.read_stat(process["pid"])
        assert stat is None or stat.state in ("Z", "X"), process


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        forkshare(["trace", "--connections", "1"])
    assert exit_info.value.code == 2
    assert "give the server command after --" in capsys.readouterr().err


def test_missing_strace_is_a_usage_error_naming_the_package(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    status, _, err = trace(["--", "true"], capsys)
    assert status == 2
    assert "apt-get install strace" in err


def test_a_command_that_exits_before_listening_exits_3_with_its_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = trace(
        ["--timeout", "5", "--", "sh", "-c", "echo no-config >&2; exit 4"], capsys
    )
    assert status == 3
    assert "before listening" in err
    assert "no-config" in err


def test_a_program_that_does_not_exist_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = trace(["--", "/nonexistent/server"], capsys)
    assert status == 3
    assert "/nonexistent/server" in err


def test_a_server_that_never_listens_exits_3_after_the_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = trace(["--timeout", "0.5", "--", "sleep", "30"], capsys)
    assert status == 3
    assert "gave up after 0.5 s" in err


def test_tiny_shared_server_is_master_listens_then_forks_and_workers_accept(
    capsys: pytest.CaptureFixture[str], tiny_command: Callable[[str], Command]
) -> None:
    argv = tiny_command("blocking")(free_port())
    status, document = trace_json(["--connections", "2", "--", *argv], capsys)
    assert status == 0
    roles = [p["role"] for p in document["analysis"]["processes"]]
    assert roles == ["master", "worker", "worker"]
    assert [c["outcome"] for c in document["clients"]] == ["served", "served"]
    accepted = sum(sum(p["accepts"].values()) for p in document["analysis"]["processes"][1:])
    assert accepted == 2
    assert_all_gone(document)


def test_workers_binding_private_reuseport_sockets_exit_1_naming_the_rule(
    capsys: pytest.CaptureFixture[str], tiny_command: Callable[[str], Command]
) -> None:
    argv = tiny_command("reuseport-private")(free_port())
    status, out, _ = trace(["--", *argv], capsys)
    assert status == 1
    assert "✗ VIOLATED workers_never_bind" in out
    assert out.count("bind(3, {sa_family=AF_INET") >= 2


@pytest.mark.nginx
def test_trace_on_nginx_reports_the_master_binds_before_fork_and_workers_never_bind(
    capsys: pytest.CaptureFixture[str], nginx_command: Command
) -> None:
    port = free_port()
    argv = nginx_command(port)
    status, out, err = trace(["--connections", "3", "--port", str(port), "--", *argv], capsys)
    assert status == 0, err
    assert "✓ holds master_listens_before_fork" in out
    assert "✓ holds workers_never_bind" in out
    assert "none of 2 worker(s) called bind() or listen()" in out
    master_section = out.split("\nworker ")[0]
    assert f"bind(5, {{sa_family=AF_INET, sin_port=htons({port})" in master_section
    assert out.count("EPOLLEXCLUSIVE") >= 2  # each worker registers the inherited listener
    assert "clients: 3 connection(s): served, served, served" in out


GUNICORN_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\\n"]
"""


def gunicorn_argv(directory: Path, port: int, *options: str) -> list[str]:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.fail("gunicorn is missing from the venv: pip install -e '.[test]'")
    (directory / "app.py").write_text(GUNICORN_APP)
    bind = f"127.0.0.1:{port}"
    return [str(gunicorn), "-w", "2", *options, "--chdir", str(directory), "-b", bind, "app:app"]


@pytest.mark.gunicorn
def test_trace_on_gunicorn_finds_the_shared_listener_made_by_the_master(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = gunicorn_argv(tmp_path, free_port())
    status, out, err = trace(["--connections", "2", "--", *argv], capsys)
    assert status == 0, out + err
    assert "✓ holds workers_never_bind" in out


@pytest.mark.gunicorn
def test_trace_on_gunicorn_reuse_port_reports_workers_that_bind(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # DOMAIN §2.2, B10, G3: with --reuse-port each worker binds its own socket after fork.
    argv = gunicorn_argv(tmp_path, free_port(), "--reuse-port")
    status, out, _ = trace(["--connections", "2", "--", *argv], capsys)
    assert status == 1
    assert "✗ VIOLATED workers_never_bind" in out
    assert out.count("SO_REUSEPORT") >= 2  # both workers bind their own socket


def test_ctrl_c_while_tracing_kills_the_traced_server(
    monkeypatch: pytest.MonkeyPatch, tiny_command: Callable[[str], Command]
) -> None:
    seen: list[int] = []

    def interrupt(port: int) -> None:
        holders = wait_until(lambda: _three_holders(port), 5, "master and 2 workers hold it")
        seen.extend(holders)
        raise KeyboardInterrupt

    monkeypatch.setattr(strace_run, "probe", interrupt)
    port = free_port()
    with pytest.raises(KeyboardInterrupt):
        strace_run.run_under_strace(
            shutil.which("strace") or "strace",
            tiny_command("blocking")(port),
            port=port,
            connections=1,
            timeout=10,
        )
    assert len(seen) == 3  # master and 2 workers were holding the listener
    assert not any(
        (stat := procfs.read_stat(pid)) is not None and stat.state not in ("Z", "X") for pid in seen
    )


def _three_holders(port: int) -> list[int] | None:
    snap = snapshot(port=port)
    holders = list(snap.holders(snap.listeners[0].inode))
    return holders if len(holders) == 3 else None


def test_a_traced_server_can_be_read_while_it_runs_and_is_stopped_after_the_block(
    tiny_command: Callable[[str], Command],
) -> None:
    port = free_port()
    strace = shutil.which("strace") or "strace"
    with strace_run.traced_server(
        strace, tiny_command("exclusive")(port), port=port, timeout=10
    ) as server:
        server.wait_quiet()
        live = server.analysis()
        holders = _three_holders(port)
    assert server.port == port
    assert live.master is not None
    assert [c.name for c in live.master.calls if c.name in ("bind", "listen")] == ["bind", "listen"]
    # The workers made their own epoll instance after the fork, then registered the listener.
    for worker in live.with_role(Role.WORKER):
        names = [c.name for c in worker.calls]
        assert names.index("epoll_create1") < names.index("epoll_ctl"), names
    assert holders is not None
    assert server.stop() is server.stop()  # stopped once, at the end of the block
    assert not any(
        (stat := procfs.read_stat(pid)) is not None and stat.state not in ("Z", "X")
        for pid in holders
    )
