"""The bundled Apache prefork and Node cluster targets: started from their profiles, observed
through /proc, their sharing mode inferred, and the verifier's verdicts on them.

What /proc must show (targets/MEASURED.md, DOMAIN §3, §4, J1): Apache's parent and both children
hold the one listening socket, and the children sleep in accept(); Node SCHED_RR's primary alone
holds it; SCHED_NONE's primary and both workers hold the same inode.

The verdicts are in one table, :data:`VERDICTS`: for each (target, scenario) the verdict the
verifier gives today and the verdict a correct verifier would give, with the reason. Rows where
the two differ are verifier or model gaps found with the real servers (see MEASURED.md "Under the
verifier"); the tests assert today's verdict, so that a change in the verifier shows up here and
the row is updated on purpose.

apache2 and node are installed in CI (``.ci/system-packages.toml``); on a machine without them
these tests are skipped with the package to install, never in CI.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from forkshare.conformance.observe.launch import RunningTarget, free_port, launch
from forkshare.conformance.observe.role import Role
from forkshare.conformance.observe.sharing_mode import SharingMode, infer_mode
from forkshare.conformance.verify.machine import SETTLE, Step
from forkshare.conformance.verify.profile import Profile, load_bundled
from forkshare.conformance.verify.scenarios import lose_queued, orphans_serve
from forkshare.conformance.verify.target import APACHE, NODE, command_line
from forkshare.conformance.verify.verify import Result, verify
from forkshare.model.config import Bounds, ParentDeath
from tests.conformance.conftest import require_package

pytestmark = [pytest.mark.process, pytest.mark.timeout(240)]

APACHE_TARGETS = ("apache-prefork",)
NODE_TARGETS = ("node-cluster-rr", "node-cluster-none")
MARKS = {"apache-prefork": pytest.mark.apache} | dict.fromkeys(NODE_TARGETS, pytest.mark.node)


def _require(target: str) -> None:
    """Skip (fail in CI) when the target's program is missing on this machine."""
    if target in APACHE_TARGETS:
        require_package(Path(APACHE).exists(), "apache2", target)
    else:
        require_package(shutil.which(NODE) is not None, "nodejs", target)


def _each(targets: tuple[str, ...]) -> list[object]:
    return [pytest.param(name, marks=MARKS[name]) for name in targets]


@pytest.fixture
def start_bundled() -> Iterator[Callable[[str], RunningTarget]]:
    """Start a bundled target (2 workers, a free port) with its workers idle.

    The scratch directory is made by ``mkdtemp`` under the system's temporary directory, not
    pytest's ``tmp_path``: as root, Apache's children run as www-data and must reach it, and
    pytest's base directory is 0700.
    """
    started: list[tuple[RunningTarget, Path]] = []

    def start(name: str) -> RunningTarget:
        _require(name)
        directory = Path(tempfile.mkdtemp(prefix="forkshare-test-"))
        port = free_port()
        argv = command_line(load_bundled(name), port, 2, directory)
        target = launch(argv, port, output_dir=directory)
        started.append((target, directory))
        target.wait_for_workers(2)
        return target

    yield start
    for target, directory in started:
        target.group.stop(grace=2.0)
        shutil.rmtree(directory, ignore_errors=True)


# --------------------------------------------------------------------------- observation


@pytest.mark.apache
def test_apache_parent_and_both_children_hold_the_one_listener_and_children_block_in_accept(
    start_bundled: Callable[[str], RunningTarget],
) -> None:
    snap = start_bundled("apache-prefork").snapshot()
    [listener] = snap.listeners
    [parent] = snap.with_role(Role.MASTER)
    children = snap.with_role(Role.WORKER)
    assert len(children) == 2
    assert sorted(snap.holders(listener.inode)) == sorted([parent.pid, *(c.pid for c in children)])
    assert all(child.wchan.startswith("inet_csk_accept") for child in children)


@pytest.mark.node
def test_node_round_robin_primary_alone_holds_the_listener(
    start_bundled: Callable[[str], RunningTarget],
) -> None:
    snap = start_bundled("node-cluster-rr").snapshot()
    [listener] = snap.listeners
    [master] = snap.with_role(Role.MASTER)
    assert snap.holders(listener.inode) == (master.pid,)
    assert len(snap.with_role(Role.WORKER)) == 2


@pytest.mark.node
def test_node_sched_none_primary_and_both_workers_hold_the_same_listener(
    start_bundled: Callable[[str], RunningTarget],
) -> None:
    snap = start_bundled("node-cluster-none").snapshot()
    [listener] = snap.listeners
    [master] = snap.with_role(Role.MASTER)
    workers = snap.with_role(Role.WORKER)
    assert sorted(snap.holders(listener.inode)) == sorted([master.pid, *(w.pid for w in workers)])
    assert len(workers) == 2


@pytest.mark.parametrize("target", _each(APACHE_TARGETS + NODE_TARGETS))
def test_the_sharing_mode_inferred_from_proc_is_the_one_the_profile_claims(
    start_bundled: Callable[[str], RunningTarget], target: str
) -> None:
    inference = infer_mode(start_bundled(target).snapshot())
    assert inference.mode == SharingMode(load_bundled(target).mode), inference.reason


# --------------------------------------------------------------------------- verdicts

MASTER_DIES: tuple[Step, ...] = (
    ("start_master", ()),
    ("kill_master", (1,)),
    SETTLE,
    ("connect", ()),
    SETTLE,
)
"""SIGKILL the master, let the workers notice, then a client: refused once nobody is left."""

DEFERRED_THEN_STOP: tuple[Step, ...] = (
    ("start_master", ()),
    ("connect", ()),
    ("connect", ()),
    ("fast_shutdown", (1,)),
)
"""Two clients that send nothing (held back by TCP_DEFER_ACCEPT, K19), then a fast stop."""


STOPPED_CHILD_THEN_GRACEFUL_STOP: tuple[Step, ...] = (
    ("start_master", ()),
    ("stop_worker", (2,)),
    ("graceful_shutdown", (1,)),
    SETTLE,
    ("connect", ()),
    ("send_request", (0,)),
    SETTLE,
    ("continue_worker", (2,)),
    SETTLE,
)
"""A graceful stop right after a worker's SIGSTOP, then a client with its request, then SIGCONT."""


def _random(profile: Profile) -> Result:
    """A short derandomized run: the same 30–45 steps every time (about 10–20 s per target)."""
    return verify(profile, examples=4, steps=10, shrink=False, derandomize=True)


def _master_dies(profile: Profile, claim: ParentDeath) -> Result:
    claimed = replace(profile, parent_death=claim)
    return verify(claimed, scenario=MASTER_DIES, bounds=Bounds(connections=1, master_kills=1))


def _deferred_then_stop(profile: Profile) -> Result:
    return verify(profile, scenario=DEFERRED_THEN_STOP, bounds=Bounds(connections=2, shutdowns=1))


def _stopped_child_then_graceful_stop(profile: Profile) -> Result:
    bounds = Bounds(connections=1, stops=1, shutdowns=1)
    return verify(profile, scenario=STOPPED_CHILD_THEN_GRACEFUL_STOP, bounds=bounds)


SCENARIOS: dict[str, Callable[[Profile], Result]] = {
    "random": _random,
    "orphans-claimed-serve": lambda p: orphans_serve(p, ParentDeath.ORPHANS_SERVE),
    "orphans-claimed-exit": lambda p: orphans_serve(p, ParentDeath.WORKERS_EXIT),
    "master-dies-claimed-exit": lambda p: _master_dies(p, ParentDeath.WORKERS_EXIT),
    "master-dies-claimed-serve": lambda p: _master_dies(p, ParentDeath.ORPHANS_SERVE),
    "kill-stopped-worker-with-clients": lose_queued,
    "deferred-clients-then-fast-stop": _deferred_then_stop,
    "stopped-child-then-graceful-stop": _stopped_child_then_graceful_stop,
}
"""Each scenario: profile → the verifier's result (a short random run, or fixed steps)."""


@dataclass(frozen=True, slots=True)
class Expected:
    """One row of the verdict table: what the verifier says today, what it should say, why."""

    today: str
    correct: str
    why: str


MISMATCH = "violates observation_matches_model"
ORPHANS = "violates orphans_exit_with_master"

VERDICTS: dict[tuple[str, str], Expected] = {
    ("apache-prefork", "random"): Expected(
        "conforms", "conforms", "a correct server (a short derandomized run)"
    ),
    ("apache-prefork", "orphans-claimed-serve"): Expected(
        "conforms", "conforms", "children keep serving after the parent's SIGKILL: its design"
    ),
    ("apache-prefork", "orphans-claimed-exit"): Expected(
        ORPHANS, ORPHANS, "the same orphans contradict a workers-exit claim"
    ),
    ("apache-prefork", "kill-stopped-worker-with-clients"): Expected(
        "conforms", "conforms", "the parent and the other child keep the queue (shared socket)"
    ),
    ("apache-prefork", "deferred-clients-then-fast-stop"): Expected(
        MISMATCH,
        "conforms",
        "model gap: a held-back (TCP_DEFER_ACCEPT) connection whose listener closes is freed "
        "without a RST, so its client sees nothing (pending) until it sends; the model resets it",
    ),
    ("apache-prefork", "stopped-child-then-graceful-stop"): Expected(
        "conforms",
        "conforms",
        "the parent exits after 1 s and abandons the stopped child, which keeps the listener "
        "and serves the client after SIGCONT (APR reports the stop as an exit: MEASURED.md); "
        "the model lets a master exit before its told workers (F8)",
    ),
    ("node-cluster-rr", "random"): Expected(
        "conforms", "conforms", "a correct server (a short derandomized run)"
    ),
    ("node-cluster-rr", "master-dies-claimed-exit"): Expected(
        "conforms", "conforms", "workers exit 0.02 s after the primary (IPC disconnect, F7)"
    ),
    ("node-cluster-rr", "master-dies-claimed-serve"): Expected(
        ORPHANS, ORPHANS, "no orphan is left to serve: an orphans-serve claim is contradicted"
    ),
    ("node-cluster-rr", "kill-stopped-worker-with-clients"): Expected(
        MISMATCH,
        "a liveness violation (no property names it yet)",
        "model gap, then a Node defect: the primary hands a connection to the stopped worker and "
        "keeps its copy until the ack while it hands later ones to the running worker (the model "
        "holds one undelivered connection and never hands to a stopped worker); once that worker "
        "is killed, the connection stays in the primary for ever, neither re-offered nor reset",
    ),
    ("node-cluster-none", "random"): Expected(
        "conforms", "conforms", "a correct server (a short derandomized run)"
    ),
    ("node-cluster-none", "master-dies-claimed-exit"): Expected(
        "conforms", "conforms", "workers exit 0.00–0.02 s after the primary (IPC disconnect, F7)"
    ),
    ("node-cluster-none", "master-dies-claimed-serve"): Expected(
        ORPHANS, ORPHANS, "no orphan is left to serve: an orphans-serve claim is contradicted"
    ),
    ("node-cluster-none", "kill-stopped-worker-with-clients"): Expected(
        "conforms", "conforms", "the primary and the running worker keep the queue: 3/3 served"
    ),
}
"""(target, scenario) → the verdicts; see the module docstring."""


def _explained(result: Result, expected: Expected) -> str:
    violation = result.violation
    evidence = (
        f"\n{violation.message}\nsteps {violation.steps}\nobserved {violation.observed}\n"
        f"allowed {violation.allowed}"
        if violation is not None
        else ""
    )
    return f"expected {expected.today} ({expected.why}), got {result.verdict}{evidence}"


@pytest.mark.parametrize(
    ("target", "scenario"),
    [pytest.param(t, s, marks=MARKS[t], id=f"{t}-{s}") for t, s in VERDICTS],
)
def test_the_verifiers_verdict_on_each_bundled_target_is_the_known_one(
    target: str, scenario: str
) -> None:
    _require(target)
    expected = VERDICTS[(target, scenario)]
    result = SCENARIOS[scenario](load_bundled(target))
    assert result.verdict == expected.today, _explained(result, expected)
    assert result.steps > 0
