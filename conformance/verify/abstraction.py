"""The record a real server and a model state are compared on.

The model's :class:`~forkshare.model.observation.Observation` names processes by model pid and
sockets by sid; /proc names them by real pid and inode. Neither numbering means anything to the
other, so both sides are projected onto one :class:`Abstract` record, and conformance after a step
is a membership test: ``abstract_of_target in {abstract(observe(s)) for s in candidates}``.

The record keeps, for every live process, its :class:`~forkshare.conformance.observe.role.Role`
(master, worker, or orphan: a worker whose master is gone; :func:`role_of` is the one place the
model's roles are mapped onto it), whether it is stopped and how many listening sockets it holds a
descriptor for; the accept-queue length of every listening socket on the port; and, per client
in connection order, what the client saw (``pending``, ``served``, ``closed``, ``reset``,
``refused``, ``timeout``) and the role of the process owning its accepted connection (empty while
queued).

Discussion:
    *Why not compare pids through a mapping?* A bijection between model pids and real pids would
    have to be guessed (the model's respawned worker and the real one are matched by nothing but
    order), and a wrong guess reads as a violation. Multisets of per-process facts need no guess
    and still catch what the properties are about: a master that accepts, an orphan that serves,
    a worker without the shared socket, a queue nobody drains, a client reset.

    *A worker either holds listening sockets or not.* nginx keeps every reuseport clone in every
    worker (N1); the reference server closes its siblings' clones after fork; the model's fork
    inherits them all. Which clones a worker holds beyond its own changes no property (it only
    accepts from its own), so for workers and orphans the record keeps ``min(held, 1)``; masters
    keep the exact count. In passfd mode the model's workers inherit the listener and the
    reference server's close it (only the master accepts either way), so workers' listening
    descriptors are left out of the passfd record.

    *Closed or reset: one outcome.* Whether a connection that ends without a response ends with
    a FIN or a RST depends on whether the server read everything the client sent before it
    closed (``tcp_close`` sends RST only when unread data is left). The verifier's clients send
    their request in two parts, so a worker killed in between may have read it all, or not: the
    record says ``ended`` for both, and the monitors judge losses from the history instead.

    *A reset the client cannot see.* When a process holding an accepted connection dies, the
    kernel's close sends RST only if unread data is waiting (``tcp_close``); a client that never
    sent its request sees a plain FIN. The model's ``reset`` of such a connection is therefore
    recorded as ``closed``. Queued connections of a closing listener are always reset.

    *What is left out, and why.* Zombies (the model's ``DEAD`` phase, /proc state ``Z``) come and
    go within milliseconds and carry no descriptors; wake-up counts need a quiescent window per
    connection that the random run cannot afford; the mutex holder is hidden state (the trace
    validator checks it instead, :mod:`forkshare.conformance.verify.trace_check`).
"""

from __future__ import annotations

from dataclasses import dataclass

from forkshare.conformance.observe.role import Role
from forkshare.model import state as model
from forkshare.model.observation import Observation, Outcome, ProcessView, observe
from forkshare.model.state import System

ProcessFacts = tuple[Role, bool, int]
"""(role, stopped, listening sockets held; 0 or 1 for workers and orphans)."""


def facts(role: Role, stopped: bool, held: int, passfd: bool = False) -> ProcessFacts:
    """One process's entry in the record (see Discussion for the clipping; in passfd mode a
    worker's listening descriptors are not compared at all)."""
    if role is Role.MASTER:
        return (role, stopped, held)
    return (role, stopped, 0 if passfd else min(held, 1))


ClientFacts = tuple[str, str]
"""(outcome, role of the owner or "")."""


def role_of(state: System, pid: int) -> Role:
    """The role of model process ``pid`` as the observer names it: the model's master is a
    master, its worker a worker, or an orphan once its master is gone (N3); a helper a helper.

    Raises:
        ValueError: ``state`` has no process ``pid`` (a caller's bug: pids come from ``state``).
    """
    proc = state.process(pid)
    if proc is None:
        raise ValueError(f"model state has no process {pid}")
    if proc.role is model.Role.MASTER:
        return Role.MASTER
    if proc.role is model.Role.HELPER:
        return Role.HELPER
    return Role.ORPHAN if state.is_orphan(proc) else Role.WORKER


def role_in(view: ProcessView) -> Role:
    """The role of a process of an observation: a worker whose parent is gone is an orphan."""
    if view.role is model.Role.MASTER:
        return Role.MASTER
    if view.role is model.Role.HELPER:
        return Role.HELPER
    return Role.WORKER if view.parent else Role.ORPHAN


@dataclass(frozen=True, slots=True, order=True)
class Abstract:
    """What is compared: see the module docstring."""

    processes: tuple[ProcessFacts, ...]
    """Sorted: a multiset."""
    queues: tuple[int, ...]
    """Accept-queue lengths of the listening sockets, sorted."""
    clients: tuple[ClientFacts, ...]
    """In connection order."""

    def describe(self) -> str:
        """One line, e.g. ``master[2] worker[2] worker(stopped)[2] | queues 0 | conn: served/worker``."""
        procs = " ".join(
            f"{role}{'(stopped)' if stopped else ''}[{held}]"
            for role, stopped, held in self.processes
        )
        queues = ",".join(map(str, self.queues)) or "-"
        clients = " ".join(f"{o}/{r}" if r else o for o, r in self.clients) or "-"
        return f"{procs or 'no process'} | queues {queues} | clients {clients}"


def of_state(state: System, passfd: bool = False) -> Abstract:
    """The record of a model state (through :func:`~forkshare.model.observation.observe`);
    ``passfd``: the configuration's mode is passfd (see Discussion)."""
    return record(observe(state), passfd)


def record(view: Observation, passfd: bool = False) -> Abstract:
    """The record of an observation, the model's or a real server's (real pids and inodes):
    helpers and zombies are left out, the rest clipped as the Discussion says."""
    roles = {p.pid: role_in(p) for p in view.processes}
    return Abstract(
        processes=tuple(
            sorted(
                facts(roles[p.pid], p.stopped, len(p.holds), passfd)
                for p in view.processes
                if p.alive and roles[p.pid] is not Role.HELPER
            )
        ),
        queues=tuple(sorted(lst.queued for lst in view.listeners if lst.listening)),
        clients=tuple(
            (_ended(c.outcome), str(roles.get(c.owner, Role.WORKER)) if c.owner else "")
            for c in view.clients
        ),
    )


ENDED = "ended"
"""A client's connection ended without a response: closed (FIN) or reset (RST)."""


def _ended(outcome: str) -> str:
    """``closed`` and ``reset`` are one outcome in the record (see Discussion)."""
    return ENDED if outcome in (Outcome.CLOSED, Outcome.RESET) else outcome
