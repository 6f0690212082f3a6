"""The /proc parsers on text captured from Linux 6.18 (tests/conformance/samples) and on the live
kernel. Each sample's provenance is in the test that reads it."""

from __future__ import annotations

import fcntl
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from forkshare.conformance.observe import procfs
from forkshare.conformance.observe.errors import ProcFormatError
from forkshare.conformance.observe.procfs import Endpoint, TcpState

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


# ---------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0100007F:1F90", Endpoint("127.0.0.1", 8080)),
        ("00000000:0000", Endpoint("0.0.0.0", 0)),
        ("0201A8C0:0050", Endpoint("192.168.1.2", 80)),
        ("00000000000000000000000001000000:01BB", Endpoint("::1", 443)),
        ("0000000000000000FFFF00000100007F:C9AF", Endpoint("127.0.0.1", 51631)),
        ("B80D0120000000000000000001000000:0016", Endpoint("2001:db8::1", 22)),
    ],
)
def test_addresses_decode_little_endian_words_and_big_endian_ports(
    text: str, expected: Endpoint
) -> None:
    assert procfs.decode_address(text) == expected


@pytest.mark.parametrize("text", ["0100007F", "0100007F:1F9", "XX00007F:1F90", "0100:1F90"])
def test_malformed_addresses_are_a_format_error(text: str) -> None:
    with pytest.raises(ProcFormatError, match="not a /proc/net/tcp address"):
        procfs.decode_address(text)


def test_endpoint_prints_ipv6_in_brackets() -> None:
    assert str(Endpoint("::1", 80)) == "[::1]:80"
    assert str(Endpoint("127.0.0.1", 80)) == "127.0.0.1:80"


# ---------------------------------------------------------------- /proc/net/tcp


def test_listen_row_shows_the_accept_queue_length_in_rx_queue() -> None:
    # Captured like E1: listen(5), 3 connects, 1 accept.
    rows = procfs.parse_tcp_table(sample("net_tcp.txt"))
    [listener] = [r for r in rows if r.state == TcpState.LISTEN]
    assert listener.local == Endpoint("127.0.0.1", 0xA641)
    assert (listener.tx_queue, listener.rx_queue) == (0, 2)  # K11
    assert listener.inode == 9042


def test_queued_children_have_inode_zero_and_the_accepted_one_does_not() -> None:
    rows = procfs.parse_tcp_table(sample("net_tcp.txt"))
    server_side = [r for r in rows if r.local.port == 0xA641 and r.state != TcpState.LISTEN]
    assert sorted(r.inode for r in server_side) == [0, 0, 9046]  # K12
    accepted = next(r for r in server_side if r.inode)
    assert accepted.remote == Endpoint("127.0.0.1", 0xD258)  # FIFO: the first connect (E1)
    assert all(r.state == TcpState.ESTABLISHED for r in server_side)


def test_tcp6_rows_decode_dual_stack_and_loopback_addresses() -> None:
    rows = procfs.parse_tcp_table(sample("net_tcp6.txt"))
    assert rows[0].state == TcpState.LISTEN
    assert rows[0].local == Endpoint("::", 0xC9AF)
    assert rows[1].remote == Endpoint("127.0.0.1", 0xAB42)  # IPv4-mapped shown as IPv4
    assert rows[2].local == Endpoint("::1", 0x963A)


def test_a_short_tcp_row_is_a_format_error() -> None:
    with pytest.raises(ProcFormatError, match="short"):
        procfs.parse_tcp_row("   0: 0100007F:1F90 00000000:0000 0A")


# ---------------------------------------------------------------- stat, status, cmdline, children


def test_stat_splits_after_the_last_parenthesis() -> None:
    stat = procfs.parse_stat(sample("stat_paren_comm.txt"))
    assert stat.comm == "evil) S 1 (x"
    assert (stat.pid, stat.state, stat.ppid, stat.pgrp, stat.session) == (
        5100,
        "R",
        5098,
        5096,
        2646,
    )
    assert stat.starttime == 72600


def test_locks_show_holders_and_waiters_of_each_file() -> None:
    # Captured on Linux 6.18: a process holding an OFD read lock, a POSIX lock and an flock(),
    # and its child blocked in flock() on the same file (wchan locks_lock_inode_wait).
    locks = procfs.parse_locks(sample("proc_locks.txt"))
    assert [(lock.kind, lock.pid, lock.waiting) for lock in locks] == [
        ("OFDLCK", -1, False),
        ("POSIX", 13280, False),
        ("FLOCK", 13280, False),
        ("FLOCK", 13281, True),
    ]
    assert locks[2].file == locks[3].file == "fe:00:2147017"
    assert locks[3].access == "WRITE"


def test_a_short_locks_line_is_a_format_error() -> None:
    with pytest.raises(ProcFormatError, match="short /proc/locks line"):
        procfs.parse_locks("1: FLOCK ADVISORY WRITE")


@pytest.mark.process
def test_the_live_kernel_shows_an_flock_waiter() -> None:
    holder_fd, path = tempfile.mkstemp()
    fcntl.flock(holder_fd, fcntl.LOCK_EX)
    child = subprocess.Popen(
        [sys.executable, "-c", f"import fcntl; fcntl.flock(open({path!r}), fcntl.LOCK_EX)"]
    )
    try:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            waiting = [lock for lock in procfs.read_locks() if lock.pid == child.pid]
            if waiting:
                break
            time.sleep(0.02)
        assert waiting
        assert waiting[0].waiting
        assert waiting[0].kind == "FLOCK"
        mine = [lock for lock in procfs.read_locks() if lock.pid == os.getpid()]
        assert [lock.file for lock in mine] == [waiting[0].file]
    finally:
        child.kill()
        child.wait(5.0)
        os.close(holder_fd)
        os.unlink(path)


@pytest.mark.process
def test_an_exec_changes_the_stack_start_but_not_the_pid_or_start_time() -> None:
    program = "import os, time; time.sleep(0.3); os.execv('/bin/sleep', ['sleep', '5'])"
    child = subprocess.Popen([sys.executable, "-c", program])
    try:
        deadline = time.monotonic() + 5.0
        before = procfs.read_stat(child.pid)
        # Popen returns once exec has begun; the new image's stack is set up a moment later.
        while time.monotonic() < deadline and before is not None and before.startstack == 0:
            time.sleep(0.01)
            before = procfs.read_stat(child.pid)
        after = before
        while time.monotonic() < deadline and after is not None and after.comm != "sleep":
            time.sleep(0.02)
            after = procfs.read_stat(child.pid)
        assert before is not None
        assert after is not None
        assert after.comm == "sleep"
        assert after.starttime == before.starttime
        assert after.startstack != before.startstack != 0  # K20's re-exec, seen from outside
    finally:
        child.kill()
        child.wait(5.0)


def test_status_gives_ppid_euid_threads_and_context_switches() -> None:
    status = procfs.parse_status(sample("status.txt"))
    assert (status.name, status.ppid, status.euid, status.threads) == ("python3", 5032, 0, 1)
    assert (status.voluntary_ctxt_switches, status.nonvoluntary_ctxt_switches) == (14, 7)


def test_status_without_context_switches_is_a_format_error() -> None:
    with pytest.raises(ProcFormatError, match="voluntary_ctxt_switches"):
        procfs.parse_status("Name:\tx\nPPid:\t1\nUid:\t0\t0\t0\t0\nThreads:\t1\n")


def test_nginx_process_titles_are_one_argument_without_the_nul_padding() -> None:
    worker = procfs.parse_cmdline((SAMPLES / "cmdline_nginx_worker.bin").read_bytes())
    master = procfs.parse_cmdline((SAMPLES / "cmdline_nginx_master.bin").read_bytes())
    assert worker == ("nginx: worker process",)
    assert master[0].startswith("nginx: master process /usr/sbin/nginx")


def test_children_are_space_separated_pids() -> None:
    assert procfs.parse_children("12 13 \n") == (12, 13)
    assert procfs.parse_children("") == ()


# ---------------------------------------------------------------- fd links and fdinfo


def test_socket_links_give_their_inode_and_other_links_none() -> None:
    assert procfs.socket_inode("socket:[19141]") == 19141
    assert procfs.socket_inode("pipe:[6087]") is None
    assert procfs.socket_inode("/tmp/socket:[1]") is None
    assert procfs.is_eventpoll("anon_inode:[eventpoll]")
    assert not procfs.is_eventpoll("anon_inode:[eventfd]")


def test_listener_fdinfo_shows_cloexec_then_inheritable_and_nonblocking() -> None:
    # E5: Python's sockets are CLOEXEC (02000002); set_inheritable + setblocking(False) → 04002.
    before = procfs.parse_fdinfo(sample("fdinfo_listener_cloexec.txt"))
    after = procfs.parse_fdinfo(sample("fdinfo_listener_inheritable_nonblocking.txt"))
    assert before.is_cloexec
    assert not before.is_nonblocking
    assert not after.is_cloexec
    assert after.is_nonblocking
    assert after.inode == 9042
    assert after.epoll == ()


def test_epoll_fdinfo_shows_exclusive_registrations() -> None:
    [entry] = procfs.parse_fdinfo(sample("fdinfo_epoll_exclusive.txt")).epoll
    assert entry.is_exclusive
    assert entry.wants_input
    assert entry.events == 0x10000019  # E5, N3


def test_epoll_fdinfo_lists_every_registration_with_its_target_inode() -> None:
    entries = procfs.parse_fdinfo(sample("fdinfo_epoll_plain.txt")).epoll
    assert [(e.tfd, e.events, e.target_inode) for e in entries] == [
        (8, 0x19, 0x2357),
        (3, 0x2019, 0x2352),  # EPOLLRDHUP
    ]
    assert not any(e.is_exclusive for e in entries)


def test_an_nginx_worker_registers_the_listener_exclusive_and_its_channel_not() -> None:
    entries = procfs.parse_fdinfo(sample("fdinfo_epoll_nginx_worker.txt")).epoll
    by_fd = {e.tfd: e for e in entries}
    assert by_fd[5].is_exclusive
    assert not by_fd[6].is_exclusive
    assert by_fd[8].events == 0x80000019  # EPOLLET


def test_epoll_fdinfo_from_kernels_before_3_8_has_no_target_inode() -> None:
    info = procfs.parse_fdinfo(sample("fdinfo_epoll_kernel_3_0.txt"))
    assert info.inode is None
    assert [(e.tfd, e.target_inode) for e in info.epoll] == [(5, None)]


def test_malformed_tfd_line_is_a_format_error() -> None:
    with pytest.raises(ProcFormatError, match="tfd: x"):
        procfs.parse_fdinfo("flags:\t02\ntfd: x events")


# ---------------------------------------------------------------- netstat and wchan


def test_netstat_gives_listen_overflows_and_drops() -> None:
    tables = procfs.parse_netstat(sample("netstat.txt"))
    assert {"TcpExt", "IpExt"} <= tables.keys()
    counters = procfs.listen_counters(tables)
    assert counters == procfs.ListenCounters(
        tables["TcpExt"]["ListenOverflows"], tables["TcpExt"]["ListenDrops"]
    )


def test_netstat_with_mismatched_lines_is_a_format_error() -> None:
    with pytest.raises(ProcFormatError, match="disagree"):
        procfs.parse_netstat("TcpExt: A B\nTcpExt: 1\n")


def test_wchan_zero_means_running() -> None:
    assert procfs.parse_wchan("0") == ""
    assert procfs.parse_wchan("inet_csk_accept") == "inet_csk_accept"


# ---------------------------------------------------------------- the live kernel


def test_live_listener_is_found_with_its_queue_and_in_our_fd_table() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            rows = procfs.read_tcp_table()
            [row] = [r for r in rows if r.state == TcpState.LISTEN and r.local.port == port]
            assert row.rx_queue == 1
            links = procfs.read_fd_links(os.getpid())
            assert links is not None
            assert links[listener.fileno()] == f"socket:[{row.inode}]"
            queued = [r for r in rows if r.local.port == port and r.state != TcpState.LISTEN]
            assert [r.inode for r in queued] == [0]


def test_live_epoll_registration_is_read_back_from_our_own_fdinfo() -> None:
    with socket.socket() as listener, select.epoll() as poller:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        poller.register(listener.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
        info = procfs.read_fdinfo(os.getpid(), poller.fileno())
        assert info is not None
        [entry] = info.epoll
        own = procfs.read_fdinfo(os.getpid(), listener.fileno())
        assert own is not None
        assert (entry.tfd, entry.target_inode, entry.is_exclusive) == (
            listener.fileno(),
            own.inode,
            True,
        )


def test_live_process_files_parse_for_ourselves() -> None:
    pid = os.getpid()
    stat = procfs.read_stat(pid)
    status = procfs.read_status(pid)
    assert stat is not None
    assert status is not None
    assert stat.ppid == status.ppid == os.getppid()
    assert procfs.read_context_switches(pid) is not None
    assert procfs.read_cmdline(pid)
    assert procfs.read_wchan(pid) is not None
    assert pid in procfs.read_children(os.getppid())
    assert procfs.read_listen_counters().overflows >= 0


def test_a_process_that_is_gone_reads_as_none_not_an_exception() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert procfs.read_stat(pid) is None
    assert procfs.read_status(pid) is None
    assert procfs.read_cmdline(pid) is None
    assert procfs.read_fd_links(pid) is None
    assert procfs.read_fdinfo(pid, 0) is None
    assert procfs.read_wchan(pid) is None
    assert procfs.read_context_switches(pid) is None
    assert procfs.read_children(pid) == ()
    assert procfs.read_tcp_table(pid) == ()


def test_time_wait_rows_can_be_skipped_without_decoding() -> None:
    text = sample("net_tcp.txt")
    header, first, *rest = text.splitlines()
    time_wait = first.replace(" 0A ", " 06 ").replace("0100007F:A641", "ZZZZ:ZZZZ", 1)
    rows = procfs.parse_tcp_table("\n".join([header, time_wait, *rest]), skip_time_wait=True)
    assert len(rows) == len(rest)  # the undecodable TIME_WAIT row was never decoded
    with pytest.raises(ProcFormatError):
        procfs.parse_tcp_table("\n".join([header, time_wait]))
