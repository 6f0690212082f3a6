"""The structure probe: who the server's processes are, how they share the listener, what leaks.

:func:`probe_structure` waits (bounded by ``DiscoveryBudget.workers``) for the workers to exist
and sleep. A process that listens alone for ``first_client`` seconds gets a client; if it accepts
it and still has no worker ``accept_grace`` seconds later, the server is not a prefork server
(:data:`NOT_PREFORK`): a master whose workers are slow to start does not accept meanwhile, so
waiting longer tells the two apart. Then ``looks`` snapshots give the sharing mode
(:func:`~forkshare.conformance.observe.sharing_mode.infer_mode`, the majority of the looks), the
listener descriptors held outside the server's tree (leaks) and F9 (which reuseport clones each
worker keeps).

Discussion:
    *Deciding the mode from facts.* ``infer_mode`` prefers ``unknown`` to a guess. Discovery must
    hand the verifier a mode, so when every worker shares the one listening socket but /proc
    does not show how idle workers wait (busy, or a wait channel it does not know), the socket
    is taken as shared in ``poll`` mode: the model's poll mode lets any idle worker take a
    connection and claims nothing about how many wake up, so it is the weakest claim
    consistent with the facts. The finding says it was decided so (``observed`` is False), and
    a claimed shared mode is then never called contradicted.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from forkshare.conformance.observe.client import Client
from forkshare.conformance.observe.observer import connection_holders
from forkshare.conformance.observe.sharing_mode import ModeInference, SharingMode, infer_mode
from forkshare.conformance.verify.probe_run import (
    LOOK,
    DiscoveryBudget,
    ProbeRun,
    ServerView,
    seconds_since,
)
from forkshare.model.observation import Outcome

NOT_PREFORK = "one process listens and accepts"


@dataclass(frozen=True, slots=True)
class Structure:
    """Who the server's processes are and how they share the listener.

    Attributes:
        view: the last look at the server (None when nothing listened).
        mode: the sharing mode, None when not decided (or not a prefork server).
        mode_reason: the evidence for ``mode``, one sentence.
        observed: True when /proc showed the mode; False when it was decided from facts
            (module Discussion).
        not_prefork: :data:`NOT_PREFORK` for a server with one process, else None.
        leaked: one line per listener descriptor held outside the server's tree.
        clones: F9 in words (reuseport with the master's clones only), else None.
        notes: anything else worth a line (workers that did not settle, a daemonising server).
    """

    view: ServerView | None
    mode: SharingMode | None
    mode_reason: str
    observed: bool
    not_prefork: str | None
    leaked: tuple[str, ...]
    clones: str | None
    notes: tuple[str, ...]


def probe_structure(run: ProbeRun, budget: DiscoveryBudget) -> Structure:
    """Wait for the server to settle, then read its structure and sharing mode (module docstring)."""
    view, not_prefork = _settle_or_judge_single(run, budget)
    if view is None:
        return Structure(None, None, "nothing listened", False, None, (), None, ())
    looks = [view, *_more_looks(run, budget.looks - 1)]
    notes = list(run.notes)
    if not not_prefork and len(view.workers) < run.workers:
        notes.append(
            f"{len(view.workers)} of {run.workers} workers existed and slept after "
            f"{budget.workers:g} s"
        )
    mode, reason, observed = (None, NOT_PREFORK, True) if not_prefork else _decide_mode(looks)
    return Structure(
        view=view,
        mode=mode,
        mode_reason=reason,
        observed=observed,
        not_prefork=not_prefork,
        leaked=_leak_lines(looks),
        clones=_clones(view) if mode is SharingMode.REUSEPORT else None,
        notes=tuple(notes),
    )


def _settle_or_judge_single(
    run: ProbeRun, budget: DiscoveryBudget
) -> tuple[ServerView | None, str | None]:
    """Wait (bounded by ``budget.workers``) until the workers exist and sleep; a process that
    listens alone gets a client and, accepting it with no worker in sight, is judged
    :data:`NOT_PREFORK` (module docstring).

    Returns:
        The last look (None if nothing ever listened) and :data:`NOT_PREFORK` or None.
    """
    started = time.monotonic()
    client: Client | None = None
    accepted_at: float | None = None
    last: ServerView | None = None
    try:
        while True:
            view = run.look()
            last = view or last
            if view is not None and view.is_settled(run.workers):
                return view, None
            if view is not None and view.workers:
                accepted_at = None  # a worker appeared: the client proves nothing any more
            elif view is not None:
                if client is None and seconds_since(started) >= budget.first_client:
                    client = Client(run.port)
                    client.send_request()
                if client is not None and accepted_at is None and _was_accepted(client, run.port):
                    accepted_at = time.monotonic()
                if accepted_at is not None and seconds_since(accepted_at) >= budget.accept_grace:
                    return view, NOT_PREFORK
            if seconds_since(started) >= budget.workers:
                return last, None
            time.sleep(LOOK)
    finally:
        if client is not None:
            client.close()


def _was_accepted(client: Client, port: int) -> bool:
    """The client's connection left the accept queue: answered, closed, or held by someone."""
    if client.outcome() in (Outcome.SERVED, Outcome.CLOSED):
        return True
    return client.local is not None and bool(connection_holders(client.local, port))


def _more_looks(run: ProbeRun, count: int) -> list[ServerView]:
    looks: list[ServerView] = []
    for _ in range(count):
        time.sleep(LOOK)
        view = run.look()
        if view is not None:
            looks.append(view)
    return looks


def _decide_mode(looks: list[ServerView]) -> tuple[SharingMode | None, str, bool]:
    inference = _majority([infer_mode(view.server) for view in looks])
    if inference.mode is not SharingMode.UNKNOWN:
        return inference.mode, inference.reason, True
    view = looks[-1]
    holding = [w for w in view.workers if view.inodes and w.held_inodes == view.inodes]
    if len(view.inodes) == 1 and view.workers and len(holding) == len(view.workers):
        [inode] = view.inodes
        return (
            SharingMode.POLL,
            f"{len(holding)} workers share socket:[{inode}], but /proc does not show how they "
            f"wait ({inference.reason}): taken as poll, which claims nothing about wake-ups",
            False,
        )
    return None, inference.reason, False


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


def _clones(view: ServerView) -> str:
    """F9: how many of the master's reuseport clones each worker keeps."""
    kept = sorted({len(w.held_inodes & view.inodes) for w in view.workers})
    total = len(view.inodes)
    if kept == [total]:
        return f"every worker keeps every clone ({total}, nginx N1)"
    if kept == [1]:
        return "each worker keeps only its own clone"
    return f"workers keep {', '.join(map(str, kept))} of the {total} clones"
