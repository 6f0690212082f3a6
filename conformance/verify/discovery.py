"""Discovered profiles: what the specification leaves open, found by running the target.

:func:`discover` starts the real target three times, briefly, and runs the probes of
:mod:`~forkshare.conformance.verify.structure_probe` and :mod:`~forkshare.conformance.verify.probes`
on it (every wait bounded by a :class:`~forkshare.conformance.verify.probe_run.DiscoveryBudget`):

1. structure, defer-accept, respawn and reload, on one run;
2. parent death (the master is SIGKILLed), on a second (at least 4 workers);
3. a graceful stop with a request in hand and a stopped worker, on a third (at least 3 workers).

Measured on this 2-core machine: 2.5–3 s for the reference server, 2.5–7 s for the zoo's correct
servers, 4 s for nginx (its claimed orphans are watched for 2 s), 5 s for gunicorn (its idle
workers check their parent every 2 s). A server whose orphans outlive the cap adds the cap (10 s under
the default workers-exit claim, 2 s under orphans-serve), one that never respawns adds 6 s, one
that retires its old workers before forking adds 1 s. If every wait ran to its bound, discovery
would take about 45 s plus three starts; see
:class:`~forkshare.conformance.verify.probe_run.DiscoveryBudget` for each bound.

The result is a :class:`Discovery`: the sharing mode, whether the server is prefork at all, the
listener descriptors leaked outside its process tree, defer-accept, respawn and parent-death
latencies, the freedoms of DOMAIN §9 it takes, and the seconds each probe took.
:func:`apply` fills what a profile left ``auto``; :func:`contradictions` names each claim of a
profile that the server contradicts.

Discussion:
    *Discovery never legitimises a defect.* It fills only what the profile leaves open, and the
    parent-death policy is never open: it defaults to workers-exit, the property (P13). When a
    worker outlives the cap under that claim, :func:`apply` keeps the claim with a bound of 0 (so
    the verification run then shows orphans accepting and names ``orphans_exit_with_master``)
    and :func:`contradictions` says so in words. A measured latency becomes a bound with a
    margin (``max(2 s, 1.5 × measured)``): the latency of a polling worker varies with where in
    its period the master died, and a bound measured once and taken as is would flag the server
    on its next, slightly slower, run.

    *At once or lucky?* Workers that notice their master's death through a signal or a closing
    channel are gone within milliseconds; a polling worker (``getppid()`` every period) is gone
    within a period, at a phase of its own. One measurement below ``AT_ONCE`` (0.1 s) could be
    a poll that happened to come right after the death, and a bound of 0 then turns the next
    orphan's accept into a false alarm. The parent-death run therefore has four workers: all
    four polling at once by luck is (0.1 s / period) ** 4, 0.16 % for a 0.5 s period.

    *Three short runs, not one long one.* Killing the master and stopping gracefully both end a
    run; a fresh start for each keeps every probe independent of what the others did to the
    server (a respawned worker, a stopped one).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from forkshare.conformance.observe.sharing_mode import SharingMode
from forkshare.conformance.verify.probe_run import DiscoveryBudget, ProbeRun, settle
from forkshare.conformance.verify.probes import (
    AT_ONCE,
    DeferFinding,
    ParentDeathFinding,
    ReloadFinding,
    RespawnFinding,
    StopFinding,
    probe_defer,
    probe_graceful,
    probe_parent_death,
    probe_reload,
    probe_respawn,
)
from forkshare.conformance.verify.profile import AUTO, Profile
from forkshare.conformance.verify.structure_probe import ModeBasis, Structure, probe_structure
from forkshare.model.config import SHARED_MODES, Mode, ParentDeath

__all__ = ["Discovery", "DiscoveryBudget", "apply", "contradictions", "discover"]

BOUND_FLOOR = 2.0
BOUND_FACTOR = 1.5
STOP_WORKERS = 3
"""Workers of the graceful-stop run: one busy, one stopped, one idle whose exit shows that the
stop began."""
DEATH_WORKERS = 4
"""Workers of the parent-death run: each polling worker checks at its own phase, so all of them
gone within AT_ONCE by luck has a probability of (AT_ONCE / period) ** 4 (Discussion)."""

_NOT_PROBED = "not probed"


@dataclass(frozen=True, slots=True)
class Discovery:
    """Everything discovery found about a target (see the module docstring).

    Attributes:
        target: the profile's name.
        workers: the worker count asked for.
        workers_seen: workers the structure probe saw.
        mode: the sharing mode (``reuseport-private``: sockets bound by each worker after fork),
            None when not decided or not a prefork server.
        mode_reason: the evidence for ``mode``.
        mode_basis: how the mode was decided: ``observed`` (/proc shows it), ``shared socket``
            (one socket every worker holds, wake-ups not visible: ``poll``), ``guess`` (``poll``
            so that the verifier can run).
        not_prefork: "one process listens and accepts" for a single-process server, else None.
        leaked: one line per listener descriptor held by a process outside the server's tree.
        defer_accept: True when a silent client stays out of the accept queue (K19); None when
            not observed.
        respawn_latency: seconds until a SIGKILLed worker was replaced; None when not (within
            the budget, or not probed).
        reload_order: F4 in words, None when not observed.
        parent_death_latency: seconds until every worker was gone after the master's SIGKILL;
            None when one outlived ``parent_death_cap`` or when not probed.
        parent_death_probed: False when the parent-death probe could not run.
        orphans_served: when a worker outlived the cap, whether a client was then served.
        freedoms: (F-id, finding) for F1–F10, in order.
        evidence: (probe, what it showed) for every probe, in the order they ran.
        seconds: (probe, seconds it took) in the order they ran, then ``total``.
        notes: anything else worth a line.
    """

    target: str
    workers: int
    workers_seen: int
    mode: SharingMode | None
    mode_reason: str
    mode_basis: ModeBasis
    not_prefork: str | None
    leaked: tuple[str, ...]
    defer_accept: bool | None
    respawn_latency: float | None
    reload_order: str | None
    parent_death_latency: float | None
    parent_death_cap: float
    parent_death_probed: bool
    orphans_served: bool | None
    freedoms: tuple[tuple[str, str], ...]
    evidence: tuple[tuple[str, str], ...]
    seconds: tuple[tuple[str, float], ...]
    notes: tuple[str, ...] = ()

    @property
    def model_mode(self) -> Mode | None:
        """The model's mode for :attr:`mode` (private reuseport is :attr:`Mode.REUSEPORT`)."""
        if self.mode is SharingMode.REUSEPORT_PRIVATE:
            return Mode.REUSEPORT
        values = {m.value for m in Mode}
        return Mode(self.mode.value) if self.mode is not None and self.mode in values else None

    @property
    def mode_observed(self) -> bool:
        """True when /proc showed the mode (not decided from facts, not a guess)."""
        return self.mode_basis is ModeBasis.OBSERVED

    @property
    def private_reuseport(self) -> bool:
        """Each worker binds its own SO_REUSEPORT socket (the model's ``private_reuseport``)."""
        return self.mode is SharingMode.REUSEPORT_PRIVATE

    @property
    def orphans_outlived_cap(self) -> bool:
        """A worker was still alive ``parent_death_cap`` seconds after its master's death."""
        return self.parent_death_probed and self.parent_death_latency is None

    def freedom(self, fid: str) -> str:
        """The finding for freedom ``fid`` (``F1`` … ``F10``); ``not probed`` when no probe
        looked at it (a discovery built by hand, or a probe that was skipped)."""
        return dict(self.freedoms).get(fid, _NOT_PROBED)

    def evidence_of(self, probe: str) -> str:
        """What probe ``probe`` (``structure``, ``defer``, ``respawn``, …) showed."""
        return dict(self.evidence).get(probe, _NOT_PROBED)

    @property
    def total_seconds(self) -> float:
        """Wall time of the whole discovery."""
        return dict(self.seconds).get("total", 0.0)

    def describe(self) -> list[str]:
        """The findings as report lines, most important first."""
        timing = ", ".join(f"{name} {sec:.1f} s" for name, sec in self.seconds if name != "total")
        lines = [f"discovery of {self.target}: {self.total_seconds:.1f} s ({timing})"]
        if self.not_prefork:
            lines.append(f"not a prefork server: {self.not_prefork}")
        lines.append(f"sharing mode: {self._mode_text()}")
        lines.extend(f"leaked listener: {line}" for line in self.leaked)
        lines.append(f"defer-accept: {_on_off(self.defer_accept)} — {self.evidence_of('defer')}")
        lines.append(f"respawn: {_latency(self.respawn_latency)} — {self.evidence_of('respawn')}")
        lines.append(
            f"reload: {self.reload_order or 'not observed'} — {self.evidence_of('reload')}"
        )
        lines.append(
            f"parent death: {_latency(self.parent_death_latency)} — "
            f"{self.evidence_of('parent death')}"
        )
        lines.append(f"graceful stop: {self.evidence_of('graceful stop')}")
        lines.extend(f"  {fid}: {finding}" for fid, finding in self.freedoms)
        lines.extend(f"note: {note}" for note in self.notes)
        return lines

    def _mode_text(self) -> str:
        if self.mode is None:
            return f"not decided — {self.mode_reason}"
        how = "" if self.mode_observed else f" ({self.mode_basis})"
        return f"{self.mode.value}{how} — {self.mode_reason}"

    def to_json(self) -> dict[str, Any]:
        """The findings as a JSON-ready dict (for ``--json``)."""
        return {
            "target": self.target,
            "workers": self.workers,
            "workers_seen": self.workers_seen,
            "mode": self.mode.value if self.mode is not None else None,
            "mode_reason": self.mode_reason,
            "mode_basis": self.mode_basis.value,
            "private_reuseport": self.private_reuseport,
            "not_prefork": self.not_prefork,
            "leaked": list(self.leaked),
            "defer_accept": self.defer_accept,
            "respawn_latency": self.respawn_latency,
            "reload_order": self.reload_order,
            "parent_death_latency": self.parent_death_latency,
            "parent_death_cap": self.parent_death_cap,
            "parent_death_probed": self.parent_death_probed,
            "orphans_served": self.orphans_served,
            "freedoms": dict(self.freedoms),
            "evidence": dict(self.evidence),
            "seconds": dict(self.seconds),
            "notes": list(self.notes),
        }

    def comments(self) -> dict[str, str]:
        """What was measured, as one-line comments for
        :func:`~forkshare.conformance.verify.profile.to_toml`, keyed by profile key."""
        freedoms = ", ".join(f"{fid} {_gist(finding)}" for fid, finding in self.freedoms)
        notes = {
            "kind": f"discovered in {self.total_seconds:.1f} s: respawn "
            f"{_latency(self.respawn_latency)}; freedoms {freedoms}",
            "mode": f"discovered: {self._mode_text()}",
            "defer_accept": f"discovered: {self.evidence_of('defer')}",
            "parent_death_bound": f"discovered: {self.evidence_of('parent death')}"
            + _bound_rule(self.parent_death_latency),
            "respawn_bound": f"discovered: {self.evidence_of('respawn')}",
        }
        return {key: " ".join(text.split()) for key, text in notes.items()}


def _gist(finding: str) -> str:
    """A freedom's finding without its evidence: "early", "at once", "not probed"."""
    return finding.split(":")[0].split(" (")[0]


def _on_off(value: bool | None) -> str:
    return "not observed" if value is None else ("on" if value else "off")


def _latency(value: float | None) -> str:
    return "none" if value is None else f"{value:.2f} s"


def _bound_rule(latency: float | None) -> str:
    if latency is None:
        return ""
    if latency <= AT_ONCE:
        return f" (within {AT_ONCE:g} s: bound 0, an orphan accepts nothing)"
    return f"; bound = max({BOUND_FLOOR:g} s, {BOUND_FACTOR:g} × measured)"


# ------------------------------------------------------------------------------- discover


DEFAULT_BUDGET = DiscoveryBudget()


def discover(
    profile: Profile, workers: int, *, budget: DiscoveryBudget = DEFAULT_BUDGET
) -> Discovery:
    """Run the probes on ``profile``'s target (see the module docstring for the runs and the
    time they take).

    Raises:
        TargetFailedToStartError: a run of the target did not start (exit 3).
        ProfileError: the profile's command cannot be built (exit 2).
    """
    seconds: dict[str, float] = {}
    started = time.monotonic()
    with ProbeRun(profile, workers, budget.start) as run:
        with _timed(seconds, "structure"):
            structure = probe_structure(run, budget)
        if structure.not_prefork or structure.view is None or not structure.view.workers:
            seconds["total"] = time.monotonic() - started
            return _single(profile, workers, structure, seconds)
        with _timed(seconds, "defer"):
            defer = probe_defer(run, budget)
        with _timed(seconds, "respawn"):
            respawn = probe_respawn(run, structure.view, budget)
        with _timed(seconds, "reload"):
            view = settle(run, budget.settle)
            reload = probe_reload(run, profile, view.master if view else None, budget)
    with _timed(seconds, "parent death"):
        death = _parent_death_run(profile, max(workers, DEATH_WORKERS), budget)
    with _timed(seconds, "graceful stop"):
        stop = _graceful_run(profile, max(workers, STOP_WORKERS), budget)
    seconds["total"] = time.monotonic() - started
    return _discovery(profile, workers, structure, defer, respawn, reload, death, stop, seconds)


@contextmanager
def _timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        seconds[name] = time.monotonic() - started


def parent_death_cap(profile: Profile, budget: DiscoveryBudget) -> float:
    """How long the parent-death probe waits: the budget's cap for the claim, stretched to a
    second beyond an explicit bound the profile claims (so that the claim can be checked)."""
    if profile.parent_death is ParentDeath.ORPHANS_SERVE:
        return budget.orphans_claimed
    claimed = profile.parent_death_bound
    return budget.parent_death if claimed is None else max(budget.parent_death, claimed + 1.0)


def _parent_death_run(
    profile: Profile, workers: int, budget: DiscoveryBudget
) -> ParentDeathFinding:
    cap = parent_death_cap(profile, budget)
    with ProbeRun(profile, workers, budget.start) as run:
        view = settle(run, budget.workers)
        if view is None:
            return ParentDeathFinding(None, cap, False, None, "not probed: nothing listened")
        return probe_parent_death(run, view, cap)


def _graceful_run(profile: Profile, workers: int, budget: DiscoveryBudget) -> StopFinding:
    with ProbeRun(profile, workers, budget.start) as run:
        view = settle(run, budget.workers)
        if view is None:
            why = "not observed: nothing listened"
            return StopFinding(why, why, why, why)
        return probe_graceful(run, profile, view, budget)


def _single(
    profile: Profile, workers: int, structure: Structure, seconds: dict[str, float]
) -> Discovery:
    """The discovery of a target without workers: only the structure was probed."""
    why = f"{_NOT_PROBED}: {structure.not_prefork or 'no worker was seen'}"
    return Discovery(
        target=profile.name,
        workers=workers,
        workers_seen=0,
        mode=structure.mode,
        mode_reason=structure.mode_reason,
        mode_basis=structure.basis,
        not_prefork=structure.not_prefork,
        leaked=structure.leaked,
        defer_accept=None,
        respawn_latency=None,
        reload_order=None,
        parent_death_latency=None,
        parent_death_cap=0.0,
        parent_death_probed=False,
        orphans_served=None,
        freedoms=tuple((f"F{n}", why) for n in range(1, 11)),
        evidence=(("structure", structure.mode_reason),),
        seconds=tuple(seconds.items()),
        notes=structure.notes,
    )


def _discovery(
    profile: Profile,
    workers: int,
    structure: Structure,
    defer: DeferFinding,
    respawn: RespawnFinding,
    reload: ReloadFinding,
    death: ParentDeathFinding,
    stop: StopFinding,
    seconds: dict[str, float],
) -> Discovery:
    view = structure.view
    return Discovery(
        target=profile.name,
        workers=workers,
        workers_seen=len(view.workers) if view is not None else 0,
        mode=structure.mode,
        mode_reason=structure.mode_reason,
        mode_basis=structure.basis,
        not_prefork=structure.not_prefork,
        leaked=structure.leaked,
        defer_accept=defer.deferred,
        respawn_latency=respawn.latency,
        reload_order=reload.order,
        parent_death_latency=death.latency,
        parent_death_cap=death.cap,
        parent_death_probed=death.probed,
        orphans_served=death.served_after_cap,
        freedoms=_freedoms(profile, structure, defer, respawn, reload, death, stop),
        evidence=(
            ("structure", structure.mode_reason),
            ("defer", defer.evidence),
            ("respawn", respawn.evidence),
            ("reload", reload.evidence),
            ("parent death", death.evidence),
            ("graceful stop", stop.evidence),
        ),
        seconds=tuple(seconds.items()),
        notes=structure.notes,
    )


def _freedoms(
    profile: Profile,
    structure: Structure,
    defer: DeferFinding,
    respawn: RespawnFinding,
    reload: ReloadFinding,
    death: ParentDeathFinding,
    stop: StopFinding,
) -> tuple[tuple[str, str], ...]:
    return (
        ("F1", stop.f1),
        ("F2", stop.f2),
        ("F3", "not probed: a worker told to quit with a silent client in hand is the run's"),
        ("F4", reload.order or f"not observed: {reload.evidence}"),
        ("F5", "not discoverable: an inherited descriptor and a received one look alike"),
        ("F6", _defer_freedom(defer)),
        ("F7", _parent_death_freedom(death)),
        ("F8", stop.f8),
        ("F9", structure.clones or "does not apply: no reuseport clones kept by the master"),
        ("F10", _respawn_freedom(respawn, profile.respawn_bound)),
    )


def _defer_freedom(defer: DeferFinding) -> str:
    if defer.deferred is None:
        return "not observed"
    return "deferred until data (TCP_DEFER_ACCEPT, K19)" if defer.deferred else "queued at once"


def _parent_death_freedom(death: ParentDeathFinding) -> str:
    if not death.probed:
        return _NOT_PROBED
    if death.latency is None:
        serve = " and serve" if death.served_after_cap else ""
        return f"orphans outlive their master ({death.cap:g} s){serve}"
    if death.latency <= AT_ONCE:
        return f"at once ({death.latency:.2f} s: a parent-death signal or a channel closing)"
    return f"within {death.latency:.2f} s (a periodic check)"


def _respawn_freedom(respawn: RespawnFinding, bound: float) -> str:
    latency = respawn.latency
    if latency is None and respawn.evidence.startswith(_NOT_PROBED):
        return respawn.evidence
    if latency is None:
        return f"not replaced: {respawn.evidence}"
    if latency <= 0.5:
        return f"at once ({latency:.2f} s)"
    if latency <= bound:
        return f"by a periodic pass ({latency:.2f} s, within the {bound:g} s bound)"
    return f"slowly ({latency:.2f} s, beyond the {bound:g} s bound)"


# ------------------------------------------------------------------------------- apply


def apply(profile: Profile, discovery: Discovery) -> Profile:
    """``profile`` with what it left ``auto`` filled from ``discovery``: the mode, the
    parent-death bound, defer-accept and which reuseport clones workers keep (F9). A claim
    the profile makes is never changed (see :func:`contradictions`), and a defect never
    becomes a claim (module Discussion).

    Whether reuseport sockets are private has no profile key yet: read
    :attr:`Discovery.private_reuseport`.
    """
    changes: dict[str, Any] = {}
    if profile.mode == AUTO and discovery.model_mode is not None:
        changes["mode"] = discovery.model_mode.value
    bound = discovered_bound(profile, discovery)
    if profile.parent_death_bound is None and bound is not None:
        changes["parent_death_bound"] = bound
    if profile.defer_accept == AUTO and discovery.defer_accept is not None:
        changes["defer_accept"] = "on" if discovery.defer_accept else "off"
    clones = _clones_kept(discovery.freedom("F9"))
    if profile.reuseport_clones == AUTO and clones is not None:
        changes["reuseport_clones"] = clones
    return replace(profile, **changes)


def _clones_kept(finding: str) -> str | None:
    """``all`` or ``own`` from discovery's F9 finding, None when it does not say."""
    if finding.startswith("every worker keeps every clone"):
        return "all"
    if finding.startswith("each worker keeps only its own clone"):
        return "own"
    return None


def discovered_bound(profile: Profile, discovery: Discovery) -> float | None:
    """The parent-death bound discovery would fill in, or None (orphans-serve, not probed)."""
    if profile.parent_death is ParentDeath.ORPHANS_SERVE or not discovery.parent_death_probed:
        return None
    latency = discovery.parent_death_latency
    if latency is None or latency <= AT_ONCE:
        return 0.0  # outlived the cap: keep the claim, the run shows the orphans (Discussion)
    return math.ceil(max(BOUND_FLOOR, BOUND_FACTOR * latency) * 10) / 10


# ------------------------------------------------------------------------------- contradictions


def contradictions(profile: Profile, discovery: Discovery) -> list[str]:
    """Each claim of ``profile`` that the server contradicts, in words
    ("claims workers-exit; its workers kept serving 10 s after the master died")."""
    found = [*_parent_death_contradictions(profile, discovery)]
    mode = _mode_contradiction(profile, discovery)
    if mode:
        found.append(mode)
    if profile.defer_accept == "off" and discovery.defer_accept is True:
        found.append("claims defer_accept off; a silent client stayed out of the accept queue")
    if profile.defer_accept == "on" and discovery.defer_accept is False:
        found.append("claims defer_accept on; a silent client was queued at once")
    return found


def _parent_death_contradictions(profile: Profile, discovery: Discovery) -> list[str]:
    latency, cap = discovery.parent_death_latency, discovery.parent_death_cap
    if not discovery.parent_death_probed:
        return []
    if profile.parent_death is ParentDeath.ORPHANS_SERVE:
        if latency is None:
            return []
        return [
            f"claims orphans-serve; its workers were gone {latency:.2f} s after the master died"
        ]
    if latency is None:
        what = "kept serving" if discovery.orphans_served else "were still alive"
        return [f"claims workers-exit; its workers {what} {cap:g} s after the master died"]
    claimed = profile.parent_death_bound
    if claimed is not None and latency > claimed and not (claimed == 0 and latency <= AT_ONCE):
        return [
            f"claims its workers exit within {claimed:g} s of the master's death; "
            f"they took {latency:.2f} s"
        ]
    return []


def _mode_contradiction(profile: Profile, discovery: Discovery) -> str | None:
    found = discovery.model_mode
    if profile.mode == AUTO or found is None:
        return None
    claimed = Mode(profile.mode)
    claimed_private = (
        claimed is Mode.REUSEPORT and profile.kind == "gunicorn" and profile.reuse_port
    )
    if discovery.mode_basis is ModeBasis.GUESS:
        return None  # nothing decided the mode: it contradicts nothing
    if discovery.mode_basis is ModeBasis.SHARED_SOCKET and claimed in SHARED_MODES:
        return None  # the shared socket's wake-ups could not be told: any shared claim stands
    if discovery.private_reuseport and not claimed_private:
        return f"claims mode {claimed}; /proc shows reuseport sockets private to each worker"
    if claimed_private and found is Mode.REUSEPORT and not discovery.private_reuseport:
        return f"claims private reuseport sockets; /proc shows {discovery.mode_reason}"
    if claimed is not found:
        return f"claims mode {claimed}; /proc shows {found}: {discovery.mode_reason}"
    return None
