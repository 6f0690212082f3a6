"""``forkshare serve``: parse the options, take or open the listening sockets, run the master.

Everything that can fail before the first ``fork()`` fails here, with nothing left running: bad
options exit 2 (:class:`~forkshare.impl.errors.OptionsError`), a failed ``socket``/``bind``/
``listen`` exits 1 with the syscall's name and errno
(:class:`~forkshare.impl.errors.SyscallError`), and every socket opened so far is closed first.
"""

from __future__ import annotations

import logging
import os
import sys

from forkshare.impl import listeners as listening
from forkshare.impl.errors import ServeError
from forkshare.impl.listeners import Listener
from forkshare.impl.master import PARENT_VARIABLE, Master, write_pidfile
from forkshare.impl.options import Address, Options, load_options
from forkshare.impl.trace import Trace

log = logging.getLogger("forkshare.impl")


def main(argv: list[str]) -> int:
    """Run the server; returns the master's exit status (see :mod:`forkshare.impl.errors`).

    Raises:
        OptionsError: bad options (exit 2).
        ServeError: the sockets or the trace file cannot be set up (exit 1).
    """
    options = load_options(argv)
    configure_logging(options.log_level)
    if not sys.platform.startswith("linux"):
        raise ServeError("forkshare serve needs Linux (epoll, SO_REUSEPORT, PR_SET_PDEATHSIG)")
    if options.user is not None and os.geteuid() != 0:
        log.warning("--user %s ignored: the master does not run as root", options.user)
    return serve(options)


def configure_logging(level: str) -> None:
    """Log to stderr as ``forkshare[pid] level: message``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("forkshare[%(process)d] %(levelname)s: %(message)s"))
    root = logging.getLogger("forkshare")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def serve(options: Options) -> int:
    """Set up the sockets (inherited first, then opened) and run the master until it stops."""
    parent_text = os.environ.pop(PARENT_VARIABLE, "")
    trace = Trace.open(options.trace)
    inherited: list[Listener] = []
    held: list[Listener] = []
    try:
        inherited, source = listening.inherited_listeners(os.environ)
        if source == "upgrade":
            trace.emit("exec")
        listening.trace_listeners(trace, inherited, "inherit")
        held = open_listeners(options, inherited, trace)
        write_pidfile(options.pidfile)
        master = Master(options, held, trace, int(parent_text) if parent_text else None)
        return master.run()
    except BaseException:
        for listener in [*inherited, *held]:
            listener.close()
        raise
    finally:
        trace.close()


def open_listeners(options: Options, inherited: list[Listener], trace: Trace) -> list[Listener]:
    """Match the inherited sockets to the configuration and open whatever is missing.

    Without an explicit ``--listen``, the inherited sockets *are* the configuration (systemd's
    socket unit decides the addresses).
    """
    addresses: tuple[Address, ...] = options.listen
    if inherited and not options.listen_explicit:
        addresses = tuple(dict.fromkeys(listener.address for listener in inherited))
    wanted = listening.wanted_keys(addresses, options.is_reuseport, options.workers)
    result = listening.reconcile(inherited, wanted, options.backlog)
    for listener in result.close:
        log.warning("inherited socket %s is not configured: closing it", listener.address)
        trace.emit("close_listener", inode=listener.inode)
        listener.close()
    listening.set_mode_flags(result.listeners, options.mode)
    listening.trace_listeners(trace, result.opened, "listen")
    for listener in result.listeners:
        log.info(
            "listening on %s (inode %d, slot %s)", listener.address, listener.inode, listener.slot
        )
    return result.listeners
