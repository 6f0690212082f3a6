"""A process's part in a server, as every tool of the verifier names it: one vocabulary.

The observer reads roles from the process tree in /proc
(:mod:`~forkshare.conformance.observe.observer`), the tracer from the fork tree in an strace log
(:mod:`~forkshare.conformance.strace.syscall_trace`), and the verifier compares both with the
model's processes through :func:`forkshare.conformance.verify.abstraction.role_of`, the one place
where the model's :class:`~forkshare.model.state.Role` is mapped onto this one.

Discussion:
    *Why not the model's Role?* The model knows masters and workers; an orphan is a worker whose
    master is gone (:meth:`~forkshare.model.state.System.is_orphan`), and launchers and helpers
    are processes the model has no place for. The observer must not import the model (it knows
    nothing of it but the clients' outcomes), so the verifier owns the mapping instead.

    *One enum for two tools.* Which members a tool assigns differs (the observer never sees a
    launcher, the tracer never an orphan); one enum still means every tool prints and compares
    the same words.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """A process's part in the server."""

    MASTER = "master"
    """Owns the listening sockets and forks the workers (also an nginx upgrade's new master)."""
    WORKER = "worker"
    """A child of a master that serves connections."""
    ORPHAN = "orphan"
    """A worker whose master died: reparented to init or a subreaper (N3). Observer only."""
    LAUNCHER = "launcher"
    """A wrapper or a daemonising parent on the way to the master. Tracer only."""
    HELPER = "helper"
    """Any other process of the traced tree (a shell's short-lived child). Tracer only."""
