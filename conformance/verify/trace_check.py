"""Trace validation: a ``forkshare serve --trace`` file checked against the model's rules.

/proc cannot see the accept mutex's lock word or the order of accepts; a target that writes the
event trace of :mod:`forkshare.impl.trace` (JSON lines ``{"ts", "pid", "event", ...}``) shows them.
Each check is keyed by the model invariant it stands for:

=============================  =====================================================================
``master_never_accepts``       ``accept`` only by workers (only by masters in passfd mode)
``accepted_at_most_once``      no client (peer) is returned by two ``accept`` events
``at_most_one_mutex_holder``   ``mutex_acquire`` only while nobody holds the mutex
``mutex_holder_is_alive``      a reaped holder's mutex is force-unlocked before anyone else acquires
``listeners_keep_identity``    every ``accept`` is on an inode from a ``listen``/``inherit`` event,
                               and no ``listen`` follows the first ``fork`` (sockets are made once)
=============================  =====================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forkshare.conformance.observe.role import Role
from forkshare.model.config import Mode

CHECKS = (
    "master_never_accepts",
    "accepted_at_most_once",
    "at_most_one_mutex_holder",
    "mutex_holder_is_alive",
    "listeners_keep_identity",
)


@dataclass(slots=True)
class TraceReport:
    """Problems found per check (an empty list: the check passed)."""

    path: Path
    events: int = 0
    problems: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in CHECKS})

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return not any(self.problems.values())


def check_trace(path: Path, mode: Mode) -> TraceReport:
    """Check the trace in ``path`` (a target in ``mode``) against every rule in :data:`CHECKS`."""
    report = TraceReport(path)
    events = _events(path, report)
    report.events = len(events)
    _Checker(report, mode).run(events)
    return report


def _events(path: Path, report: TraceReport) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            # A process killed mid-write leaves at most a torn last line; not a model property.
            continue
        if isinstance(event, dict) and "event" in event and "pid" in event:
            event["line"] = number
            events.append(event)
    return events


class _Checker:
    def __init__(self, report: TraceReport, mode: Mode) -> None:
        self.report = report
        self.mode = mode
        self.masters: set[int] = set()
        self.workers: set[int] = set()
        self.inodes: set[int] = set()
        self.forked = False
        self.peers: dict[str, int] = {}
        self.holder = 0
        self.dead_holder = 0

    def run(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            handler = getattr(self, f"on_{event['event']}", None)
            if handler is not None:
                handler(event)

    def problem(self, check: str, event: dict[str, Any], text: str) -> None:
        self.report.problems[check].append(f"line {event['line']}: pid {event['pid']} {text}")

    def on_listen(self, event: dict[str, Any]) -> None:
        self.masters.add(event["pid"])
        if self.forked and event["pid"] in self.masters and event["inode"] not in self.inodes:
            self.problem(
                "listeners_keep_identity", event, "opened a new listening socket after forking"
            )
        self.inodes.add(event["inode"])

    def on_inherit(self, event: dict[str, Any]) -> None:
        self.masters.add(event["pid"])
        self.inodes.add(event["inode"])

    def on_exec(self, event: dict[str, Any]) -> None:
        self.masters.add(event["pid"])

    def on_fork(self, event: dict[str, Any]) -> None:
        self.forked = True
        (self.workers if event.get("role") == Role.WORKER else self.masters).add(event["child"])

    def on_accept(self, event: dict[str, Any]) -> None:
        by_master = event["pid"] in self.masters
        if by_master != (self.mode is Mode.PASSFD):
            self.problem(
                "master_never_accepts",
                event,
                f"accepted but is a {Role.MASTER if by_master else Role.WORKER}",
            )
        if self.inodes and event["inode"] not in self.inodes:
            self.problem(
                "listeners_keep_identity", event, f"accepted on unknown socket {event['inode']}"
            )
        peer = str(event.get("peer"))
        if peer in self.peers:
            self.problem(
                "accepted_at_most_once",
                event,
                f"accepted {peer} again (first by {self.peers[peer]})",
            )
        self.peers[peer] = event["pid"]

    def on_mutex_acquire(self, event: dict[str, Any]) -> None:
        if self.dead_holder:
            self.problem(
                "mutex_holder_is_alive",
                event,
                f"acquired while dead {self.dead_holder} still held it",
            )
        elif self.holder:
            self.problem("at_most_one_mutex_holder", event, f"acquired while {self.holder} held it")
        self.holder, self.dead_holder = event["pid"], 0

    def on_mutex_release(self, event: dict[str, Any]) -> None:
        if self.holder == event["pid"]:
            self.holder = 0

    def on_mutex_force_unlock(self, event: dict[str, Any]) -> None:
        if event.get("holder") in (self.holder, self.dead_holder):
            self.holder = self.dead_holder = 0

    def on_reap(self, event: dict[str, Any]) -> None:
        if event.get("child") == self.holder and self.holder:
            self.dead_holder, self.holder = self.holder, 0
