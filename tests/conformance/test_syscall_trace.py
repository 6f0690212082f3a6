"""Parsing strace logs and reconstructing roles, sockets and the rules, on logs captured from
nginx 1.22 (foreground and daemonising), a pyenv-wrapped Python server and the tiny prefork
server whose workers bind their own reuseport sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from forkshare.conformance.observe.errors import ProcFormatError
from forkshare.conformance.observe.role import Role
from forkshare.conformance.strace.strace_log import ProcessExit, Syscall, parse_strace
from forkshare.conformance.strace.syscall_trace import TraceAnalysis, analyze

SAMPLES = Path(__file__).parent / "samples"


def trace(name: str) -> TraceAnalysis:
    return analyze(parse_strace((SAMPLES / name).read_text().splitlines()))


def verdict(analysis: TraceAnalysis, rule: str) -> bool:
    return next(v.holds for v in analysis.verdicts if v.rule == rule)


# ---------------------------------------------------------------- the log format


def test_a_complete_call_keeps_its_arguments_result_and_time() -> None:
    [call] = parse_strace(["7434  02:48:49.771314 listen(5, 511)    = 0"])
    assert call == Syscall(0, 7434, "02:48:49.771314", "listen", "5, 511", 0, None)
    assert call.succeeded


def test_a_failed_call_keeps_its_errno() -> None:
    [call] = parse_strace(
        [
            "7436  02:48:49.774459 accept4(5, 0x7ffc, [112], SOCK_NONBLOCK) = -1 EAGAIN "
            "(Resource temporarily unavailable)"
        ]
    )
    assert isinstance(call, Syscall)
    assert (call.result, call.errno, call.succeeded) == (-1, "EAGAIN", False)


def test_an_unfinished_call_is_joined_with_its_resumption() -> None:
    events = parse_strace(
        [
            "7434  02:48:49.772401 clone(child_stack=NULL, flags=SIGCHLD <unfinished ...>",
            "7435  02:48:49.772500 listen(5, 1) = 0",
            "7434  02:48:49.772679 <... clone resumed>, child_tidptr=0x7f) = 7436",
        ]
    )
    assert [e.name for e in events if isinstance(e, Syscall)] == ["listen", "clone"]
    clone = events[1]
    assert isinstance(clone, Syscall)
    assert (clone.time, clone.result) == ("02:48:49.772679", 7436)
    assert clone.args == "child_stack=NULL, flags=SIGCHLD, child_tidptr=0x7f"


def test_exits_signals_and_interrupted_calls_are_read() -> None:
    events = parse_strace(
        [
            "9618  03:02:45.014609 <... accept4 resumed> <unfinished ...>) = ?",
            "9618  03:02:45.015874 +++ killed by SIGKILL +++",
            "7434  02:48:50.783112 --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER} ---",
            "7434  02:48:50.786152 +++ exited with 0 +++",
        ]
    )
    assert isinstance(events[0], Syscall)
    assert events[0].result is None
    assert events[1:] == (
        ProcessExit(1, 9618, "03:02:45.015874", None, "SIGKILL"),
        ProcessExit(2, 7434, "02:48:50.786152", 0, None),
    )


def test_a_line_that_is_not_strace_output_is_a_format_error() -> None:
    with pytest.raises(ProcFormatError, match="not an strace"):
        parse_strace(["hello world"])


# ---------------------------------------------------------------- roles and rules


def test_nginx_master_binds_and_listens_before_forking_two_workers() -> None:
    analysis = trace("strace_nginx.txt")
    master = analysis.master
    assert master is not None
    assert [p.pid for p in analysis.with_role(Role.WORKER)] == [7435, 7436]
    names = [c.name for c in master.calls]
    assert names.index("bind") < names.index("listen") < names.index("clone")
    assert analysis.listening == ("127.0.0.1:55123",)
    assert analysis.holds


def test_nginx_workers_register_the_inherited_listener_exclusive_and_one_accepts() -> None:
    analysis = trace("strace_nginx.txt")
    workers = analysis.with_role(Role.WORKER)
    for worker in workers:
        adds = [c for c in worker.calls if c.name == "epoll_ctl" and "EPOLL_CTL_ADD" in c.args]
        assert adds
        assert all("EPOLLEXCLUSIVE" in c.args and ", 5, " in c.args for c in adds)  # N3
    assert [w.accepts for w in workers] == [{}, {"127.0.0.1:55123": 1}]
    assert analysis.accept_count == 1


def test_a_daemonising_nginx_has_a_launcher_and_a_master_that_inherited_the_listener() -> None:
    analysis = trace("strace_nginx_daemon.txt")
    [launcher] = analysis.with_role(Role.LAUNCHER)
    master = analysis.master
    assert master is not None
    assert master.parent == launcher.pid
    assert len(analysis.with_role(Role.WORKER)) == 2
    assert "listen" in [c.name for c in launcher.calls]  # nginx binds before ngx_daemon()
    assert verdict(analysis, "master_listens_before_fork")
    assert verdict(analysis, "workers_never_bind")


def test_a_pyenv_shim_chain_is_not_mistaken_for_a_server_with_workers() -> None:
    analysis = trace("strace_pyenv_wrapper.txt")
    master = analysis.master
    assert master is not None
    assert master.program.endswith("/bin/python3")
    assert len(analysis.with_role(Role.WORKER)) == 1  # the one fork after listen()
    assert len(analysis.with_role(Role.HELPER)) > 20  # readlink, basename, pyenv-* …
    assert analysis.holds


def test_threads_are_not_processes() -> None:
    analysis = trace("strace_pyenv_wrapper.txt")
    assert 3638 not in [p.pid for p in analysis.processes]  # clone3(CLONE_THREAD) = 3638


def test_workers_that_bind_their_own_reuseport_socket_violate_both_rules() -> None:
    analysis = trace("strace_tiny_reuseport_private.txt")
    assert not verdict(analysis, "workers_never_bind")  # B10, G3: gunicorn --reuse-port
    assert not verdict(analysis, "master_listens_before_fork")
    evidence = next(v.evidence for v in analysis.verdicts if v.rule == "workers_never_bind")
    assert sum("bind(" in line for line in evidence) == 2
    assert not analysis.holds


def test_a_listen_after_the_first_worker_fork_violates_the_master_rule() -> None:
    lines = [
        "10  00:00:00.000001 socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 3",
        '10  00:00:00.000002 bind(3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("0.0.0.0")}, 16) = 0',
        "10  00:00:00.000003 listen(3, 5) = 0",
        "10  00:00:00.000004 clone(child_stack=NULL, flags=SIGCHLD) = 11",
        "10  00:00:00.000005 clone(child_stack=NULL, flags=SIGCHLD) = 12",
        "10  00:00:00.000006 socket(AF_INET6, SOCK_STREAM, IPPROTO_IP) = 4",
        '10  00:00:00.000007 bind(4, {sa_family=AF_INET6, sin6_port=htons(81), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::", &sin6_addr)}, 28) = 0',
        "10  00:00:00.000008 listen(4, 5) = 0",
        "11  00:00:00.000009 accept4(3, NULL, NULL, SOCK_CLOEXEC) = 5",
        "12  00:00:00.000010 accept4(4, NULL, NULL, SOCK_CLOEXEC) = -1 EBADF (Bad file descriptor)",
    ]
    analysis = analyze(parse_strace(lines))
    assert not verdict(analysis, "master_listens_before_fork")
    assert analysis.listening == ("0.0.0.0:80", "[::]:81")
    workers = analysis.with_role(Role.WORKER)
    assert [w.accepts for w in workers] == [{"0.0.0.0:80": 1}, {}]
    assert workers[1].failed_accepts == {"EBADF": 1}  # forked before fd 4 existed


def test_dup2_and_close_follow_the_listener_through_the_fd_table() -> None:
    lines = [
        "10  00:00:00.000001 socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 3",
        '10  00:00:00.000002 bind(3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        "10  00:00:00.000003 listen(3, 5) = 0",
        "10  00:00:00.000004 dup2(3, 7) = 7",
        "10  00:00:00.000005 close(3) = 0",
        "10  00:00:00.000006 clone(child_stack=NULL, flags=SIGCHLD) = 11",
        "10  00:00:00.000007 clone(child_stack=NULL, flags=SIGCHLD) = 12",
        "11  00:00:00.000008 accept4(7, NULL, NULL, SOCK_CLOEXEC) = 5",
        "12  00:00:00.000009 accept4(3, NULL, NULL, SOCK_CLOEXEC) = -1 EBADF (Bad file descriptor)",
    ]
    analysis = analyze(parse_strace(lines))
    workers = analysis.with_role(Role.WORKER)
    assert workers[0].accepts == {"127.0.0.1:80": 1}
    assert workers[1].failed_accepts == {"EBADF": 1}
