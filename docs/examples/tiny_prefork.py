"""A tiny prefork HTTP server: the master binds and listens, N forked workers accept.

    python3 tiny_prefork.py --port 8080 --workers 4

The master creates the listening socket before it forks, so every worker's descriptor points at
the same socket and its one accept queue (K1). Workers wait in epoll with EPOLLEXCLUSIVE, so one
connection wakes one worker (K5), as nginx does by default. Signals as in nginx: HUP reload (new
workers on the same socket, then QUIT to the old ones), QUIT graceful stop, TERM/INT fast stop.
A worker that dies is replaced; workers exit when the master dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import select
import signal
import socket
import sys

MASTER_SIGNALS = {signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def open_listener(host: str, port: int, backlog: int) -> socket.socket:
    """socket, SO_REUSEADDR, bind, listen: once, in the master, before any fork."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # O_NONBLOCK belongs to the shared open file description: set it here, before the fork,
    # because a worker that set it later would change it for every other holder too.
    sock.setblocking(False)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def serve(conn: socket.socket) -> None:
    """Read one request head and answer with this worker's pid; one request per connection."""
    with conn:
        conn.setblocking(True)
        conn.settimeout(5.0)
        request = b""
        try:
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            body = f"pid={os.getpid()}\n".encode()
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            conn.sendall(head.encode() + body)
        except OSError:
            return  # the client went away or was too slow: nothing to answer


def run_worker(sock: socket.socket, master: int) -> None:
    """Accept and serve until QUIT (finish the current request) or TERM/INT (die at once)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != master:  # the master died before prctl took effect
        return
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGQUIT, lambda signum, frame: None)  # noticed through the pipe
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)  # inherited blocked from the master
    poller = select.epoll()
    poller.register(sock.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
    poller.register(wake_read, select.EPOLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == wake_read:
                if signal.SIGQUIT in os.read(wake_read, 64):
                    sock.close()  # this worker's descriptor only: the socket stays open
                    return
                continue
            try:
                conn, _ = sock.accept()
            except BlockingIOError:
                continue  # another worker took it
            serve(conn)


def spawn(sock: socket.socket) -> int:
    """fork(): the child's descriptor refers to the master's socket; the child never returns."""
    master = os.getpid()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            run_worker(sock, master)
            status = 0
        finally:
            os._exit(status)  # never run the master's code in a worker
    return pid


def reap() -> list[int]:
    """Every child that has exited, without blocking."""
    dead: list[int] = []
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return dead
        if pid == 0:
            return dead
        dead.append(pid)


def run_master(sock: socket.socket, workers: int) -> int:
    """Fork the workers, then handle signals one at a time (sigwait: no handler in the master)."""
    generation = 1
    children: dict[int, int] = {spawn(sock): generation for _ in range(workers)}
    stopping = False
    while True:
        signum = signal.sigwait(MASTER_SIGNALS)
        if signum == signal.SIGCHLD:
            for pid in reap():
                born = children.pop(pid, None)
                if born == generation and not stopping:
                    children[spawn(sock)] = generation  # respawn into the current generation
            if stopping and not children:
                return 0
        elif signum == signal.SIGHUP and not stopping:
            generation += 1
            old = list(children)
            children.update({spawn(sock): generation for _ in range(workers)})
            for pid in old:  # the new generation is already accepting on the same socket
                os.kill(pid, signal.SIGQUIT)
        elif signum in (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT):
            stopping = True
            sock.close()  # the socket goes away when the last worker closes it too
            for pid in children:
                os.kill(pid, signal.SIGQUIT if signum == signal.SIGQUIT else signal.SIGTERM)
            if not children:
                return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backlog", type=int, default=511)
    args = parser.parse_args()
    signal.pthread_sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)  # before the fork: no signal is lost
    try:
        sock = open_listener(args.host, args.port, args.backlog)
    except OSError as error:
        print(f"bind({args.host}:{args.port}) failed: {error}", file=sys.stderr)
        return 1
    print(f"listening on {args.host}:{args.port}, {args.workers} workers", file=sys.stderr)
    return run_master(sock, args.workers)


if __name__ == "__main__":
    sys.exit(main())
