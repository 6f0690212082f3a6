"""``forkshare inspect`` on the tiny prefork server and on the Debian nginx: the text, JSON and SVG
show the shared inode, who holds it through which fd, and the epoll registrations."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from forkshare.cli import main as forkshare
from forkshare.conformance.observe import command as inspect_command
from forkshare.conformance.observe.errors import GraphvizMissingError
from forkshare.conformance.observe.launch import RunningTarget, free_port
from forkshare.conformance.observe.rendering import epoll_event_names
from forkshare.conformance.observe.role import Role

StartTiny = Callable[[str, int], RunningTarget]  # the start_tiny fixture (conftest.py)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = forkshare(["inspect", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_epoll_events_are_named_with_exclusive_shown() -> None:
    assert epoll_event_names(0x10000019) == "IN|ERR|HUP|EXCLUSIVE"
    assert epoll_event_names(0x10000019, brief=True) == "IN|EXCLUSIVE"
    assert epoll_event_names(0x2019) == "IN|ERR|HUP|RDHUP"
    assert epoll_event_names(0x80000000 | 0x100) == "ET|0x100"


def test_no_server_named_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        forkshare(["inspect"])
    assert exit_info.value.code == 2
    assert "--port P" in capsys.readouterr().err


def test_a_port_nobody_listens_on_exits_2_naming_the_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    status, _, err = run(["--port", str(port)], capsys)
    assert status == 2
    assert f"nothing listens on TCP port {port}" in err


def test_a_pid_that_does_not_exist_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    status, _, err = run(["--pid", str(pid)], capsys)
    assert status == 2
    assert f"no process {pid}" in err


@pytest.mark.process
def test_inspect_shows_each_holder_and_its_fd_for_the_tiny_server(
    start_tiny: StartTiny, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_tiny("exclusive", 2)
    snap = server.snapshot()
    [listener] = snap.listeners
    status, out, _ = run(["--port", str(server.port)], capsys)
    assert status == 0
    for process in snap.processes:
        assert f"{process.pid}: 3" in out  # "held by (pid: fd)"
    assert f"socket:[{listener.inode}]" in out
    assert "sharing mode: exclusive" in out


@pytest.mark.process
def test_inspect_draws_the_shared_kernel_objects_as_text_and_json(
    start_tiny: StartTiny, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_tiny("exclusive", 2)
    status, out, _ = run(["--port", str(server.port)], capsys)
    assert status == 0
    assert "3 descriptors → 1 open file description → 1 socket → 1 accept queue" in out
    assert "reference count 3" in out
    status, out, _ = run(["--port", str(server.port), "--json"], capsys)
    objects = json.loads(out)["kernel_objects"]
    assert [d["reference_count"] for d in objects["descriptions"]] == [3]
    assert [s["reuseaddr"] for s in objects["sockets"]] == [True]


@pytest.mark.process
def test_missing_dot_is_a_clear_failure(
    start_tiny: StartTiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_tiny("blocking", 1)
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here
    with pytest.raises(GraphvizMissingError, match="apt-get install graphviz"):
        inspect_command.draw_svg("digraph {}", tmp_path / "x.svg")
    assert inspect_command.main(["--port", str(server.port), "--svg", str(tmp_path / "x")]) == 1


@pytest.mark.nginx
def test_inspect_on_nginx_shows_one_inode_held_by_master_and_both_workers(
    nginx: RunningTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    snap = nginx.snapshot()
    [listener] = snap.listeners
    master = nginx.group.pid
    workers = [p.pid for p in snap.with_role(Role.WORKER)]
    assert len(workers) == 2
    assert snap.holders(listener.inode) == tuple(sorted([master, *workers]))
    status, out, _ = run(["--port", str(nginx.port)], capsys)
    assert status == 0
    fd = snap.processes[0].fds_on(listener.inode)[0]
    assert f"socket:[{listener.inode}]" in out
    for pid in (master, *workers):
        assert f"{pid}: {fd}" in out
    # N3: both workers register the shared listener with EPOLLEXCLUSIVE (events 10000019).
    assert out.count("IN|EXCLUSIVE (10000019)") == 2
    assert "sharing mode: exclusive" in out


@pytest.mark.nginx
def test_inspect_json_on_nginx_has_exclusive_registrations(
    nginx: RunningTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(["--port", str(nginx.port), "--json"], capsys)
    assert status == 0
    document = json.loads(out)
    assert document["mode"]["mode"] == "exclusive"
    processes = document["snapshot"]["processes"]
    assert [p["role"] for p in processes] == ["master", "worker", "worker"]
    events = [r["events"] for p in processes for r in p["registrations"]]
    assert events == [0x10000019, 0x10000019]


@pytest.mark.nginx
def test_inspect_svg_on_nginx_draws_the_kernel_objects_and_epoll_edges(
    nginx: RunningTarget, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if shutil.which("dot") is None:
        pytest.fail("graphviz's dot is missing: apt-get install graphviz (CI installs it)")
    svg = tmp_path / "nginx.svg"
    status, _, _ = run(["--pid", str(nginx.group.pid), "--svg", str(svg)], capsys)
    assert status == 0
    text = svg.read_text()
    assert text.startswith("<?xml")
    assert text.count("worker ") >= 2
    assert "EXCLUSIVE" in text
    assert "reference count 3" in text  # the master's and both workers' descriptors
