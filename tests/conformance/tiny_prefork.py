"""A tiny prefork server for the observer's live tests (run as a script, never imported).

``python tiny_prefork.py MODE WORKERS PORT`` binds 127.0.0.1:PORT, forks WORKERS workers and
prints ``PORT <n>`` once they are forked. Each worker answers a connection with its
pid and a newline, then holds the connection open until the client closes it (so the observer can
see who accepted it). Modes (ARCHITECTURE.md):

* ``blocking``: the master's socket, blocking ``accept()`` in every worker.
* ``poll`` / ``exclusive``: the master's socket, non-blocking, in a per-worker epoll set, without
  or with EPOLLEXCLUSIVE.
* ``reuseport``: the master opens one SO_REUSEPORT clone per worker before forking; worker *i*
  accepts only on clone *i* and keeps the others open (nginx, N1).
* ``reuseport-private``: each worker binds its own SO_REUSEPORT socket after fork (gunicorn
  ``--reuse-port``, B10); the master holds none.
* ``passfd``: only the master listens; it accepts and passes each connection to the next worker
  over a Unix socket with SCM_RIGHTS (Node cluster round robin, J1).

The master exits when it gets SIGTERM; the tests kill the process group anyway.
"""

from __future__ import annotations

import functools
import os
import select
import signal
import socket
import sys
from collections.abc import Callable


def listener(port: int = 0, reuseport: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    return sock


def serve(conn: socket.socket) -> None:
    with conn:
        conn.sendall(f"{os.getpid()}\n".encode())
        while conn.recv(4096):
            pass


def accept_blocking(sock: socket.socket) -> None:
    while True:
        serve(sock.accept()[0])


def accept_epoll(sock: socket.socket, exclusive: bool) -> None:
    sock.setblocking(False)
    poller = select.epoll()
    poller.register(sock.fileno(), select.EPOLLIN | (select.EPOLLEXCLUSIVE if exclusive else 0))
    while True:
        poller.poll()
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            continue  # a herd loser (K4)
        conn.setblocking(True)
        serve(conn)


def receive_passed(channel: socket.socket, inherited: socket.socket) -> None:
    inherited.close()  # like a Node cluster worker, which is exec'd without the listener
    while True:
        _, fds, _, _ = socket.recv_fds(channel, 1, 1)
        if not fds:
            os._exit(0)
        serve(socket.socket(fileno=fds[0]))


def fork_worker(run: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            run()
        finally:
            os._exit(0)  # the child must never return into the master's code
    return pid


def main(mode: str, workers: int, port: int) -> None:
    if mode == "reuseport":
        clones = [listener(port, reuseport=True) for _ in range(workers)]
    elif mode == "reuseport-private":
        clones = []
    else:
        clones = [listener(port)]
    channels = []
    for index in range(workers):
        if mode == "passfd":
            master_end, worker_end = socket.socketpair()
            channels.append(master_end)
            fork_worker(functools.partial(receive_passed, worker_end, clones[0]))
        elif mode == "reuseport":
            fork_worker(functools.partial(accept_blocking, clones[index]))
        elif mode == "reuseport-private":
            fork_worker(lambda: accept_blocking(listener(port, reuseport=True)))
        elif mode == "blocking":
            fork_worker(lambda: accept_blocking(clones[0]))
        else:
            fork_worker(lambda: accept_epoll(clones[0], exclusive=mode == "exclusive"))
    print(f"PORT {port}", flush=True)
    if mode == "passfd":
        sequence = 0
        while True:
            conn, _ = clones[0].accept()
            socket.send_fds(channels[sequence % workers], [b"c"], [conn.fileno()])
            conn.close()
            sequence += 1
    while True:
        try:
            os.wait()
        except ChildProcessError:
            signal.pause()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
