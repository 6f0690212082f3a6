"""The structure probe: who the server's processes are, how they share the listener, what leaks.

:func:`probe_structure` waits (bounded by ``DiscoveryBudget.workers``) for the workers to exist
and sleep. A master that listens alone for ``first_client`` seconds (no other process holds a
listener) gets a client with a partial request; if the master itself holds that connection for
``accept_grace`` seconds while still no other process holds a listener or the connection, the
server is not a prefork server (:data:`NOT_PREFORK`). A master whose workers are slow to start
does not accept meanwhile, and a passfd master hands the connection on to a worker, so the
holder of the connection tells them apart; a child that holds neither (a log helper) does not
make a single-process server prefork. Then ``looks`` snapshots give the sharing mode
(:func:`~forkshare.conformance.observe.sharing_mode.infer_mode`, the majority of the looks), the
listener descriptors held outside the server's tree (leaks) and F9 (which reuseport clones each
worker keeps).

Discussion:
    *Deciding the mode from facts.* ``infer_mode`` prefers ``unknown`` to a guess. Discovery must
    hand the verifier a mode, so when every worker shares the one listening socket but /proc
    does not show how idle workers wait (busy, or a wait channel it does not know), the socket
    is taken as shared in ``poll`` mode: the model's poll mode lets any idle worker take a
    connection and claims nothing about how many wake up, so it is the weakest claim
    consistent with the facts. The finding says it was decided so (basis ``shared socket``), and
    a claimed shared mode is then never called contradicted. When even that pattern is missing
    (workers that hold different sockets on one address, say), poll is still the answer, with a
    reason that asks for the mode in the profile (basis ``guess``: it contradicts no claim); the
    verifier needs a mode to run at all.
"""

from __future__ import annotations

import contextlib
import enum
import socket
import time
from collections import Counter
from dataclasses import dataclass

from forkshare.conformance.observe.observer import connection_holders
from forkshare.conformance.observe.procfs import Endpoint
from forkshare.conformance.observe.sharing_mode import ModeInference, SharingMode, infer_mode
from forkshare.conformance.verify.probe_run import (
    LOOK,
    DiscoveryBudget,
    ProbeRun,
    ServerView,
    partial_client,
    seconds_since,
)

NOT_PREFORK = "one process listens and accepts"


class ModeBasis(enum.StrEnum):
    """How the sharing mode was decided (module Discussion)."""

    OBSERVED = "observed"
    """/proc shows it (:func:`~forkshare.conformance.observe.sharing_mode.infer_mode`)."""
    SHARED_SOCKET = "shared socket"
    """Every worker holds the one listener; how they wait is not visible: poll."""
    GUESS = "guess"
    """Nothing decides: poll, so that the verifier can run; it contradicts no claim."""


@dataclass(frozen=True, slots=True)
class Structure:
    """Who the server's processes are and how they share the listener.

    Attributes:
        view: the last look at the server (None when nothing listened).
        mode: the sharing mode, None when not decided (or not a prefork server).
        mode_reason: the evidence for ``mode``, one sentence.
        basis: how the mode was decided (module Discussion).
        not_prefork: :data:`NOT_PREFORK` for a server with one process, else None.
        leaked: one line per listener descriptor held outside the server's tree.
        clones: F9 in words (reuseport with the master's clones only), else None.
        notes: anything else worth a line (workers that did not settle, a daemonising server).
    """

    view: ServerView | None
    mode: SharingMode | None
    mode_reason: str
    basis: ModeBasis
    not_prefork: str | None
    leaked: tuple[str, ...]
    clones: str | None
    notes: tuple[str, ...]


def probe_structure(run: ProbeRun, budget: DiscoveryBudget) -> Structure:
    """Wait for the server to settle, then read its structure and sharing mode (module
    docstring)."""
    view, not_prefork = _settle_or_judge_single(run, budget)
    if view is None:
        return Structure(None, None, "nothing listened", ModeBasis.GUESS, None, (), None, ())
    looks = [view, *_more_looks(run, budget.looks - 1)]
    notes = list(run.notes)
    if not not_prefork and len(view.workers) < run.workers:
        notes.append(
            f"{len(view.workers)} of {run.workers} workers existed and slept after "
            f"{budget.workers:g} s"
        )
    mode, reason, basis = (
        (None, NOT_PREFORK, ModeBasis.OBSERVED) if not_prefork else _decide_mode(looks)
    )
    return Structure(
        view=view,
        mode=mode,
        mode_reason=reason,
        basis=basis,
        not_prefork=not_prefork,
        leaked=_leak_lines(looks),
        clones=_clones(looks) if mode is SharingMode.REUSEPORT else None,
        notes=tuple(notes),
    )


def _settle_or_judge_single(
    run: ProbeRun, budget: DiscoveryBudget
) -> tuple[ServerView | None, str | None]:
    """Wait (bounded by ``budget.workers``) until the workers exist and sleep; a master that
    listens alone gets a partial request and, holding it ``accept_grace`` seconds while no other
    process holds a listener or the connection, is judged :data:`NOT_PREFORK` (module docstring).

    Returns:
        The last look (None if nothing ever listened) and :data:`NOT_PREFORK` or None.
    """
    started = time.monotonic()
    last: ServerView | None = None
    with contextlib.ExitStack() as stack:
        judge = _SingleJudge(run.port, budget.accept_grace)
        while True:
            view = run.look()
            last = view or last
            if view is not None and view.is_settled(run.workers):
                return view, None
            if (
                view is not None
                and judge.client is None
                and judge.alone(view)
                and seconds_since(started) >= budget.first_client
            ):
                with contextlib.suppress(OSError):  # refused or timed out: try at the next look
                    judge.client = stack.enter_context(partial_client(run.port))
            if view is not None and judge.is_single(view):
                return view, NOT_PREFORK
            if seconds_since(started) >= budget.workers:
                return last, None
            time.sleep(LOOK)


@dataclass(slots=True)
class _SingleJudge:
    """Watches who holds the partial request of :func:`_settle_or_judge_single`."""

    port: int
    grace: float
    client: socket.socket | None = None
    held_by_master_since: float | None = None
    handed_on: bool = False
    """A process other than the master held the connection: prefork (passfd), whatever follows."""

    @staticmethod
    def alone(view: ServerView) -> bool:
        """The master is the only process of the server that holds a listener."""
        return view.master is not None and not any(w.held_inodes for w in view.workers)

    def is_single(self, view: ServerView) -> bool:
        """True once the master alone has held the client ``grace`` seconds, no other process
        holding a listener meanwhile."""
        master = view.master
        if master is None or self.client is None or self.handed_on or not self.alone(view):
            self.held_by_master_since = None
            return False
        holders = set(connection_holders(Endpoint(*self.client.getsockname()[:2]), self.port))
        if holders - {master}:
            self.handed_on = True
        if holders != {master}:
            self.held_by_master_since = None
            return False
        if self.held_by_master_since is None:
            self.held_by_master_since = time.monotonic()
        return seconds_since(self.held_by_master_since) >= self.grace


def _more_looks(run: ProbeRun, count: int) -> list[ServerView]:
    looks: list[ServerView] = []
    for _ in range(count):
        time.sleep(LOOK)
        view = run.look()
        if view is not None:
            looks.append(view)
    return looks


def _decide_mode(looks: list[ServerView]) -> tuple[SharingMode | None, str, ModeBasis]:
    inference = _majority([infer_mode(view.server) for view in looks])
    if inference.mode is not SharingMode.UNKNOWN:
        return inference.mode, inference.reason, ModeBasis.OBSERVED
    view = looks[-1]
    holding = [w for w in view.workers if view.inodes and w.held_inodes == view.inodes]
    if len(view.inodes) == 1 and view.workers and len(holding) == len(view.workers):
        [inode] = view.inodes
        return (
            SharingMode.POLL,
            f"{len(holding)} workers share socket:[{inode}], but /proc does not show how they "
            f"wait ({inference.reason}): taken as poll, which claims nothing about wake-ups",
            ModeBasis.SHARED_SOCKET,
        )
    if view.workers:
        return (
            SharingMode.POLL,
            f"/proc does not decide ({inference.reason}): taken as poll, the weakest claim; "
            "set mode in the profile if the verdicts are unexplained behaviour",
            ModeBasis.GUESS,
        )
    return None, inference.reason, ModeBasis.GUESS


def _majority(inferences: list[ModeInference]) -> ModeInference:
    """The mode most looks agree on (unknown looks left out), with the count if not all."""
    known = [i for i in inferences if i.mode is not SharingMode.UNKNOWN]
    if not known:
        return inferences[-1]
    mode, count = Counter(i.mode for i in known).most_common(1)[0]
    first = next(i for i in known if i.mode is mode)
    if count == len(inferences):
        return first
    others = ", ".join(sorted({i.mode.value for i in inferences} - {mode.value}))
    return ModeInference(
        mode, f"{first.reason} ({count} of {len(inferences)} looks; else {others})"
    )


def _leak_lines(looks: list[ServerView]) -> tuple[str, ...]:
    lines: dict[tuple[int, int, int], str] = {}
    for view in looks:
        for process in view.leaked:
            for fd in process.listener_fds:
                lines[(process.pid, fd.inode, fd.fd)] = (
                    f"pid {process.pid} ({process.cmdline[:80]}), outside the server's process "
                    f"tree (parent {process.ppid}), holds socket:[{fd.inode}] as fd {fd.fd}"
                )
    return tuple(lines[key] for key in sorted(lines))


def _clones(looks: list[ServerView]) -> str:
    """F9: how many of the master's reuseport clones each worker keeps, as most looks show it
    (one look can catch a worker between fork and closing the clones it does not keep)."""
    return Counter(_clones_in(view) for view in looks).most_common(1)[0][0]


def _clones_in(view: ServerView) -> str:
    kept = sorted({len(w.held_inodes & view.inodes) for w in view.workers})
    total = len(view.inodes)
    if kept == [total]:
        return f"every worker keeps every clone ({total}, nginx N1)"
    if kept == [1]:
        return "each worker keeps only its own clone"
    return f"workers keep {', '.join(map(str, kept))} of the {total} clones"
