"""The breadth-first search of :mod:`forkshare.model.compact_search`, split over several processes.

Each process owns the states whose hash falls in its share (``hash(state) % processes``; the hash
of a tuple of ints is the same in every process). Level by level, each expands the states it
owns, keeps the successors it owns, and sends the others to their owners, once each (remembering
how it reached them: an owner records only who sent a state, and a counterexample's path is
asked of the sender when it is needed); then the processes trade what they sent and agree
whether another level is needed. The level-by-level
order keeps every first path a shortest one, so the counterexamples are as short as on one core
(they may differ in the choice among equally short ones). The processes are forked, so they
start with the model already imported; they talk over pipes.

Discussion:
    *The model stays free of I/O, except here.* ``forkshare.model`` promises pure functions; this
    module forks and talks over pipes. It lives in the model because the search is the model's
    (the same :class:`~forkshare.model.compact_search.Level` runs in every process), and it is
    used only when asked (``explore(config, processes=2)``). The counts it reports are exactly
    those of the one-core search; a test checks it.

    *Hash partitioning, not a shared queue.* A shared visited set would need a lock or a server
    process for every lookup; partitioning by hash lets each process look up its own states
    without talking to anyone, and the only traffic is each state crossing once to its owner.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from multiprocessing.connection import Connection
from typing import Any

from forkshare.model.compact_search import (
    AUDIT_EVERY,
    Expander,
    Level,
    Link,
    Progress,
    Search,
    collector_paused,
    initial_compact,
    path_to,
)
from forkshare.model.compact_state import Compact
from forkshare.model.config import Config

POLL_SECONDS = 1.0
"""How often a process waiting for a peer checks that the peer is still alive."""


class PeerLostError(RuntimeError):
    """A search process died or failed; the message says which and why."""


class _Peers:
    """This process's pipes to every other search process, and how to trade one message with all."""

    def __init__(self, me: int, pipes: dict[int, Connection], alive: Callable[[int], bool]) -> None:
        self.me = me
        self.pipes = pipes
        self.alive = alive

    def trade(self, messages: dict[int, Any]) -> dict[int, Any]:
        """Send ``messages[j]`` to each peer ``j`` and return what each peer sent (sending runs in a
        thread, so two processes sending large batches to each other cannot block each other)."""
        senders = [
            threading.Thread(target=self.pipes[j].send, args=(("ok", messages[j]),))
            for j in self.pipes
        ]
        for sender in senders:
            sender.start()
        received = {j: self.receive(j) for j in self.pipes}
        for sender in senders:
            sender.join()
        return received

    def receive(self, peer: int) -> Any:
        """The next message from ``peer``; raises :class:`PeerLostError` if it failed or died."""
        pipe = self.pipes[peer]
        while not pipe.poll(POLL_SECONDS):
            if not self.alive(peer):
                raise PeerLostError(f"search process {peer} died")
        kind, payload = pipe.recv()
        if kind == "error":
            raise PeerLostError(f"search process {peer} failed: {payload}")
        return payload

    def fail(self, error: BaseException) -> None:
        """Tell every peer that this process failed."""
        for pipe in self.pipes.values():
            with suppress(OSError):
                pipe.send(("error", f"{type(error).__name__}: {error}"))


def parallel_search(
    config: Config,
    *,
    processes: int = 2,
    max_states: int | None = None,
    progress: Progress | None = None,
    audit_every: int = AUDIT_EVERY,
    keep_states: bool = False,
) -> Search:
    """The same search as :func:`~forkshare.model.compact_search.search`, over ``processes``
    processes (this one and ``processes - 1`` forked ones)."""
    if processes < 2:
        raise ValueError(f"a parallel search needs at least 2 processes, not {processes}")
    start = time.perf_counter()
    context = multiprocessing.get_context("fork")
    ends: dict[tuple[int, int], Connection] = {}
    for i in range(processes):
        for j in range(i + 1, processes):
            ends[i, j], ends[j, i] = context.Pipe()
    children = {
        k: context.Process(
            target=_serve,
            args=(config, k, processes, ends, max_states, audit_every),
            daemon=True,
        )
        for k in range(1, processes)
    }
    for child in children.values():
        child.start()
    own = {j: ends[0, j] for j in range(1, processes)}
    peers = _Peers(0, own, lambda k: children[k].is_alive())
    try:
        found = _coordinate(
            config, peers, processes, max_states, progress, audit_every, keep_states
        )
    finally:
        for pipe in own.values():
            pipe.close()
        for child in children.values():
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
    found.seconds = time.perf_counter() - start
    return found


def _coordinate(
    config: Config,
    peers: _Peers,
    processes: int,
    max_states: int | None,
    progress: Progress | None,
    audit_every: int,
    keep_states: bool,
) -> Search:
    with collector_paused():
        level = Level(Expander(config), audit_every)
        complete, sent = _run(level, peers, processes, max_states, progress)
        found = Search(complete=complete)
        level.report(found)
        reports = peers.trade(dict.fromkeys(peers.pipes, ("report", None)))
        for report in reports.values():
            _merge(found, report)
        firsts = dict(level.first_violations)
        for report in reports.values():
            for name, (depth, state) in report["first_violations"].items():
                if name not in firsts or depth < firsts[name][0]:
                    firsts[name] = (depth, state)

        def ask(peer: int, question: str, state: Compact) -> Any:
            return peers.trade(_only(peers, peer, (question, state), ("idle", None)))[peer]

        def link_of(state: Compact) -> Link:
            owner = hash(state) % processes
            link = level.parents[state] if owner == 0 else ask(owner, "link", state)
            if not isinstance(link, int):
                return link
            sender: Link = sent[state] if link == 0 else ask(link, "sent", state)
            return sender

        found.paths = {name: path_to(state, link_of) for name, (_, state) in firsts.items()}
        if keep_states:
            found.reachable = list(level.parents)
            for states in peers.trade(dict.fromkeys(peers.pipes, ("states", None))).values():
                found.reachable.extend(states)
        peers.trade(dict.fromkeys(peers.pipes, ("stop", None)))
    return found


def _only(peers: _Peers, peer: int, message: object, others: object) -> dict[int, object]:
    return {j: message if j == peer else others for j in peers.pipes}


def _merge(found: Search, report: dict[str, Any]) -> None:
    found.states += report["states"]
    found.transitions += report["transitions"]
    for name, count in report["fired"].items():
        found.fired[name] = found.fired.get(name, 0) + count
    found.max_wakeups = max(found.max_wakeups, report["max_wakeups"])


def _serve(
    config: Config,
    me: int,
    processes: int,
    ends: dict[tuple[int, int], Connection],
    max_states: int | None,
    audit_every: int,
) -> None:
    """A forked search process: search its share, then answer the first process's questions."""
    parent = os.getppid()
    own = {j: ends[me, j] for j in range(processes) if j != me}
    peers = _Peers(me, own, lambda k: os.getppid() == parent)
    try:
        with collector_paused():
            level = Level(Expander(config), audit_every)
            _, sent = _run(level, peers, processes, max_states, None)
            while _answer(level, sent, peers):
                pass
    except PeerLostError:
        pass
    except BaseException as error:
        peers.fail(error)
        raise
    finally:
        os._exit(0)  # a forked child never returns into its parent's code


def _answer(level: Level, sent: dict[Compact, Link], peers: _Peers) -> bool:
    """Answer one request of the first process; False once told to stop."""
    kind, payload = peers.receive(0)
    if kind == "report":
        reply: object = {
            "states": len(level.parents),
            "transitions": level.transitions,
            "fired": level.fired,
            "max_wakeups": level.max_wakeups,
            "first_violations": level.first_violations,
        }
    elif kind == "link":
        reply = level.parents[payload]
    elif kind == "sent":
        reply = sent[payload]
    elif kind == "states":
        reply = list(level.parents)
    else:
        reply = None
    peers.pipes[0].send(("ok", reply))
    return bool(kind != "stop")


def _run(
    level: Level,
    peers: _Peers,
    processes: int,
    max_states: int | None,
    progress: Progress | None,
) -> tuple[bool, dict[Compact, Link]]:
    """Search this process's share, level by level, in step with the peers. Returns False when
    ``max_states`` cut the search short, and the links of the states sent to other owners."""
    me = peers.me
    root = initial_compact()
    if hash(root) % processes == me:
        level.add(root, None)
    sent: dict[Compact, Link] = {}
    outboxes: dict[int, list[Compact]] = {j: [] for j in peers.pipes}
    parents = level.parents
    while True:
        frontier = level.take_frontier()
        for outbox in outboxes.values():
            outbox.clear()
        for state in frontier:
            for name, args, succ in level.successors(state):
                owner = hash(succ) % processes
                if owner == me:
                    if succ not in parents:
                        level.add(succ, (state, (name, args)))
                elif succ not in sent:
                    sent[succ] = (state, (name, args))
                    outboxes[owner].append(succ)
        for sender, batch in peers.trade(outboxes).items():
            for state in batch:
                level.add(state, sender)
        counts = peers.trade({j: (len(level.frontier), len(level.parents)) for j in peers.pipes})
        waiting = len(level.frontier) + sum(f for f, _ in counts.values())
        states = len(level.parents) + sum(n for _, n in counts.values())
        if progress is not None:
            progress(states, waiting)
        if not waiting:
            return True, sent
        if max_states is not None and states >= max_states:
            return False, sent
