"""Discovered profiles: what discovery finds on real servers (the reference server, gunicorn,
nginx, the zoo, a single-process server written here), and how its findings fill a profile or
contradict one (fast tests on hand-built findings)."""

from __future__ import annotations

import json
import os
import signal
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from forkshare.conformance.observe import procfs
from forkshare.conformance.observe.sharing_mode import SharingMode
from forkshare.conformance.verify.discovery import (
    Discovery,
    DiscoveryBudget,
    apply,
    contradictions,
    discover,
    parent_death_cap,
)
from forkshare.conformance.verify.probe_run import ProbeRun
from forkshare.conformance.verify.profile import (
    Profile,
    load_bundled,
    parse_profile,
    to_toml,
)
from forkshare.conformance.verify.structure_probe import NOT_PREFORK, ModeBasis, probe_structure
from forkshare.model.config import Mode, ParentDeath

ZOO = Path(__file__).resolve().parents[1] / "zoo"
MANIFEST = tomllib.loads((ZOO / "manifest.toml").read_text())
SHORT_CAP = DiscoveryBudget(parent_death=3.0)
"""For servers whose orphans outlive any cap: 3 s show it as well as 10 s."""


def zoo_profile(name: str, **changes: object) -> Profile:
    """The zoo server ``name`` as a command profile (signals from manifest.toml)."""
    entry = MANIFEST[name]
    profile = Profile(
        name=name,
        command=entry["command"].replace("{dir}", str(ZOO)),
        reload_signal=signal.Signals[f"SIG{entry['reload_signal']}"],
        graceful_signal=signal.Signals[f"SIG{entry['graceful_signal']}"],
        fast_signal=signal.Signals[f"SIG{entry['fast_signal']}"],
    )
    return replace(profile, **changes)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- hand-built

FOUND = Discovery(
    target="hand-built",
    workers=2,
    workers_seen=2,
    mode=SharingMode.POLL,
    mode_reason="2 workers share socket:[10]; idle ones sleep in select/poll (G1)",
    mode_basis=ModeBasis.OBSERVED,
    not_prefork=None,
    leaked=(),
    defer_accept=False,
    respawn_latency=0.01,
    reload_order="forks the new generation first, then retires the old",
    parent_death_latency=0.45,
    parent_death_cap=10.0,
    parent_death_probed=True,
    orphans_served=None,
    freedoms=(("F1", "late: …"), ("F10", "at once (0.01 s)")),
    evidence=(("defer", "a silent client's server-side row was ESTABLISHED at once"),),
    seconds=(("structure", 0.4), ("total", 3.0)),
)
AUTO_PROFILE = Profile(name="auto", command="srv --port {port}")


def test_apply_fills_the_mode_the_bound_and_defer_accept_a_profile_left_auto() -> None:
    filled = apply(AUTO_PROFILE, FOUND)
    assert filled.mode == "poll"
    assert filled.parent_death_bound == 2.0  # max(2 s, 1.5 × 0.45 s)
    assert filled.defer_accept == "off"
    assert filled.parent_death is ParentDeath.WORKERS_EXIT


def test_workers_gone_at_once_get_a_bound_of_zero() -> None:
    filled = apply(AUTO_PROFILE, replace(FOUND, parent_death_latency=0.01))
    assert filled.parent_death_bound == 0.0


def test_a_slow_parent_check_gets_its_latency_with_a_margin() -> None:
    filled = apply(AUTO_PROFILE, replace(FOUND, parent_death_latency=1.81))
    assert filled.parent_death_bound == 2.8  # 1.5 × 1.81, rounded up to a tenth


def test_orphans_outliving_the_cap_keep_the_workers_exit_claim_and_are_a_contradiction() -> None:
    outlived = replace(FOUND, parent_death_latency=None, orphans_served=True)
    filled = apply(AUTO_PROFILE, outlived)
    assert filled.parent_death is ParentDeath.WORKERS_EXIT
    assert filled.parent_death_bound == 0.0  # the run then shows the orphans accepting
    assert contradictions(AUTO_PROFILE, outlived) == [
        "claims workers-exit; its workers kept serving 10 s after the master died"
    ]


def test_an_orphans_serve_claim_keeps_its_bound_and_is_contradicted_by_exiting_workers() -> None:
    nginx_like = replace(AUTO_PROFILE, parent_death=ParentDeath.ORPHANS_SERVE)
    assert apply(nginx_like, FOUND).parent_death_bound is None
    assert contradictions(nginx_like, FOUND) == [
        "claims orphans-serve; its workers were gone 0.45 s after the master died"
    ]


def test_an_explicit_bound_the_workers_exceed_is_a_contradiction() -> None:
    claimed = replace(AUTO_PROFILE, parent_death_bound=0.2)
    assert apply(claimed, FOUND).parent_death_bound == 0.2
    assert contradictions(claimed, FOUND) == [
        "claims its workers exit within 0.2 s of the master's death; they took 0.45 s"
    ]


def test_a_claimed_mode_is_kept_and_a_different_observed_one_contradicts_it() -> None:
    claimed = replace(AUTO_PROFILE, mode="exclusive")
    assert apply(claimed, FOUND).mode == "exclusive"
    [found] = contradictions(claimed, FOUND)
    assert found.startswith("claims mode exclusive; /proc shows poll: 2 workers share")


def test_private_reuseport_sockets_contradict_a_shared_claim() -> None:
    private = replace(FOUND, mode=SharingMode.REUSEPORT_PRIVATE)
    assert private.private_reuseport
    assert apply(AUTO_PROFILE, private).mode == "reuseport"
    assert contradictions(replace(AUTO_PROFILE, mode="exclusive"), private) == [
        "claims mode exclusive; /proc shows reuseport sockets private to each worker"
    ]


def test_a_shared_socket_whose_wake_ups_are_unseen_contradicts_no_shared_claim() -> None:
    shared = replace(FOUND, mode_basis=ModeBasis.SHARED_SOCKET)
    assert contradictions(replace(AUTO_PROFILE, mode="blocking"), shared) == []
    [found] = contradictions(replace(AUTO_PROFILE, mode="passfd"), shared)
    assert found.startswith("claims mode passfd")


def test_a_guessed_mode_contradicts_no_claim() -> None:
    guessed = replace(FOUND, mode_basis=ModeBasis.GUESS)
    assert contradictions(replace(AUTO_PROFILE, mode="passfd"), guessed) == []
    assert apply(AUTO_PROFILE, guessed).mode == "poll"  # the verifier needs a mode to run


def test_defer_accept_claims_are_checked_both_ways() -> None:
    assert contradictions(replace(AUTO_PROFILE, defer_accept="on"), FOUND) == [
        "claims defer_accept on; a silent client was queued at once"
    ]
    deferred = replace(FOUND, defer_accept=True)
    assert contradictions(replace(AUTO_PROFILE, defer_accept="off"), deferred) == [
        "claims defer_accept off; a silent client stayed out of the accept queue"
    ]


def test_the_parent_death_cap_follows_the_claim() -> None:
    budget = DiscoveryBudget()
    assert parent_death_cap(AUTO_PROFILE, budget) == 10.0
    orphans = replace(AUTO_PROFILE, parent_death=ParentDeath.ORPHANS_SERVE)
    assert parent_death_cap(orphans, budget) == 2.0
    assert parent_death_cap(replace(AUTO_PROFILE, parent_death_bound=16.0), budget) == 17.0


def test_the_written_profile_loads_back_with_the_measurements_as_comments() -> None:
    filled = apply(AUTO_PROFILE, FOUND)
    text = to_toml(filled, FOUND.comments())
    assert parse_profile("auto", text) == filled
    assert "# discovered: poll — 2 workers share socket:[10]" in text
    assert "# discovered in 3.0 s: respawn 0.01 s; freedoms F1 late, F10 at once\n" in text
    assert "# discovered: every worker (2)" not in text  # no probe evidence was invented


def test_the_findings_are_one_json_document() -> None:
    document = json.loads(json.dumps(FOUND.to_json()))
    assert document["mode"] == "poll"
    assert document["parent_death_latency"] == 0.45
    assert document["freedoms"]["F10"] == "at once (0.01 s)"


# ------------------------------------------------------------------------------- real servers


def _processes_running(script: str, since_ticks: int) -> list[int]:
    """Pids of live processes running ``script`` that started after ``since_ticks``."""
    left = []
    for pid in procfs.list_pids():
        stat, argv = procfs.read_stat(pid), procfs.read_cmdline(pid)
        if stat is None or argv is None or stat.state in ("Z", "X"):
            continue
        if stat.starttime >= since_ticks and any(arg.endswith(script) for arg in argv):
            left.append(pid)
    return left


def _boot_ticks() -> int:
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


@pytest.mark.process
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("name", "mode", "clones"),
    [
        ("forkshare-exclusive", SharingMode.EXCLUSIVE, None),
        ("forkshare-reuseport", SharingMode.REUSEPORT, "each worker keeps only its own clone"),
        ("forkshare-passfd", SharingMode.PASSFD, None),
    ],
)
def test_the_reference_server_is_discovered_as_it_is_built(
    name: str, mode: SharingMode, clones: str | None
) -> None:
    profile = replace(load_bundled(name), mode="auto", trace="")
    found = discover(profile, 2)
    assert (found.mode, found.mode_observed, found.not_prefork, found.leaked) == (
        mode,
        True,
        None,
        (),
    )
    assert found.defer_accept is False
    assert found.respawn_latency is not None
    assert found.freedom("F4").startswith("forks the new generation first")
    assert found.freedom("F7").startswith("at once")  # PR_SET_PDEATHSIG
    assert found.freedom("F1").startswith("early")  # nginx's QUIT: the master closes at once
    assert found.freedom("F8").startswith("waits for its workers")
    if clones is not None:
        assert found.freedom("F9") == clones
    if mode is SharingMode.PASSFD:
        assert found.freedom("F2").startswith("does not apply")
    filled = apply(profile, found)
    assert (filled.mode, filled.parent_death_bound, filled.defer_accept) == (mode.value, 0.0, "off")
    assert contradictions(load_bundled(name), found) == []


@pytest.mark.process
@pytest.mark.gunicorn
@pytest.mark.timeout(120)
def test_gunicorns_polling_workers_get_a_parent_death_bound_with_a_margin() -> None:
    # The verifier runs gunicorn with --timeout 4: an idle sync worker checks its parent every
    # timeout/2 = 2 s (DOMAIN §2.4).
    profile = replace(load_bundled("gunicorn"), mode="auto", parent_death_bound=None)
    found = discover(profile, 2)
    assert found.mode is SharingMode.POLL  # select() on the shared socket (G1)
    assert found.parent_death_latency is not None
    filled = apply(profile, found)
    assert filled.parent_death_bound is not None
    assert filled.parent_death_bound >= 2.0
    assert found.freedom("F4").startswith("forks the new generation first")
    assert contradictions(profile, found) == []


@pytest.mark.process
@pytest.mark.gunicorn
@pytest.mark.timeout(120)
def test_gunicorn_reuse_port_shows_private_sockets_and_keeps_its_claimed_bound() -> None:
    profile = load_bundled("gunicorn-reuseport")
    found = discover(profile, 2)
    assert found.mode is SharingMode.REUSEPORT_PRIVATE
    assert found.private_reuseport
    assert found.model_mode is Mode.REUSEPORT
    assert found.freedom("F1") == "does not apply: the master holds no listener"
    assert found.parent_death_latency is not None
    assert apply(profile, found).parent_death_bound == profile.parent_death_bound == 3.0
    assert contradictions(profile, found) == []


@pytest.mark.process
@pytest.mark.nginx
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("name", "mode", "clones"),
    [
        ("nginx", SharingMode.EXCLUSIVE, None),
        ("nginx-reuseport", SharingMode.REUSEPORT, "every worker keeps every clone (2, nginx N1)"),
    ],
)
def test_nginx_is_discovered_with_its_orphans_serving(
    name: str, mode: SharingMode, clones: str | None
) -> None:
    profile = replace(load_bundled(name), mode="auto")
    found = discover(profile, 2)
    assert (found.mode, found.mode_observed) == (mode, True)
    assert found.orphans_outlived_cap
    assert found.orphans_served is True
    assert found.parent_death_cap == 2.0  # orphans-serve is claimed: a short look suffices
    assert found.freedom("F1").startswith("early")  # QUIT: ngx_close_listening_sockets
    assert found.freedom("F2").startswith("early")
    if clones is not None:
        assert found.freedom("F9") == clones
    assert apply(profile, found).parent_death_bound is None
    assert contradictions(load_bundled(name), found) == []
    claims_exit = replace(profile, parent_death=ParentDeath.WORKERS_EXIT)
    assert contradictions(claims_exit, found) == [
        "claims workers-exit; its workers kept serving 2 s after the master died"
    ]


@pytest.mark.process
@pytest.mark.timeout(120)
def test_an_flock_accept_mutex_with_defer_accept_and_a_maintenance_pass() -> None:
    found = discover(zoo_profile("flock_mutex"), 2)
    assert found.mode is SharingMode.MUTEX
    assert "FLOCK lock" in found.mode_reason  # /proc/locks, not a guess
    assert found.defer_accept is True
    assert found.respawn_latency is not None
    assert found.respawn_latency > 0.5  # a once-a-second pass, not SIGCHLD (F10)
    assert found.freedom("F10").startswith("by a periodic pass")
    assert found.freedom("F4").startswith("retires the old generation first")
    assert found.freedom("F6").startswith("deferred")
    # The master closes its listener just before it exits: one /proc sample may see both.
    assert found.freedom("F1").startswith(("early", "with its exit"))
    assert found.freedom("F2").startswith("early")
    assert apply(zoo_profile("flock_mutex"), found).defer_accept == "on"


@pytest.mark.process
@pytest.mark.timeout(120)
def test_a_master_that_exits_before_its_workers_and_sends_the_listener() -> None:
    found = discover(zoo_profile("scm_rights"), 2)
    assert found.mode is SharingMode.POLL  # plain epoll sets (J1)
    assert found.freedom("F8").startswith("exits before a stopped worker")
    # The master closes its listener just before it exits: one /proc sample may see both.
    assert found.freedom("F1").startswith(("early", "with its exit"))
    assert found.freedom("F7").startswith("at once")  # the channel reads EOF
    assert apply(zoo_profile("scm_rights"), found).parent_death_bound == 0.0


@pytest.mark.process
@pytest.mark.timeout(120)
def test_a_master_that_re_executes_itself_on_reload() -> None:
    found = discover(zoo_profile("reexec_master"), 2)
    assert found.mode is SharingMode.BLOCKING
    assert found.freedom("F4").startswith("re-executes the master (K20)")


@pytest.mark.process
@pytest.mark.timeout(120)
def test_orphans_under_the_default_claim_are_a_contradiction_never_a_claim() -> None:
    profile = zoo_profile("orphan_workers")
    found = discover(profile, 2, budget=SHORT_CAP)
    assert found.orphans_outlived_cap
    assert found.orphans_served is True
    filled = apply(profile, found)
    assert filled.parent_death is ParentDeath.WORKERS_EXIT
    assert filled.parent_death_bound == 0.0
    assert contradictions(profile, found) == [
        "claims workers-exit; its workers kept serving 3 s after the master died"
    ]


@pytest.mark.process
@pytest.mark.timeout(120)
def test_a_helper_holding_the_listener_is_a_finding_and_is_killed_afterwards() -> None:
    since = _boot_ticks()
    found = discover(zoo_profile("leaky_helper"), 2)
    [leak] = found.leaked
    assert "outside the server's process tree (parent " in leak
    assert "leaky_helper.py" in leak
    assert found.mode is SharingMode.POLL  # the helper does not count as a worker
    assert found.respawn_latency is not None  # discovery went on after the finding
    assert _processes_running("leaky_helper.py", since) == []


@pytest.mark.process
@pytest.mark.timeout(120)
def test_private_reuseport_sockets_contradict_a_claimed_shared_mode() -> None:
    found = discover(zoo_profile("private_reuseport"), 2)
    assert found.mode is SharingMode.REUSEPORT_PRIVATE
    claims_exclusive = zoo_profile("private_reuseport", mode="exclusive")
    assert contradictions(claims_exclusive, found) == [
        "claims mode exclusive; /proc shows reuseport sockets private to each worker"
    ]


SINGLE_PROCESS = """
import os, socket, sys, time
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen(16)
if len(sys.argv) > 2 and os.fork() == 0:  # a log helper: no listener, no connection
    sock.close()
    time.sleep(60)
    os._exit(0)
while True:
    conn, _ = sock.accept()
    with conn:
        conn.settimeout(2.0)
        head = b""
        try:
            while b"\\r\\n\\r\\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
            conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n")
        except OSError:
            pass
"""

SLOW_START = """
import ctypes, os, signal, socket, sys, time
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen(16)
time.sleep(1.5)  # loading the application: nobody accepts yet

def spawn():
    pid = os.fork()
    if pid == 0:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        while True:
            conn, _ = sock.accept()
            conn.close()
    return pid

for _ in range(int(sys.argv[2])):
    spawn()
while True:
    os.wait()
    spawn()
"""


@pytest.mark.process
@pytest.mark.timeout(60)
@pytest.mark.parametrize("helper", ["", " helper"], ids=["alone", "with-a-log-helper"])
def test_a_single_process_server_is_judged_not_prefork(tmp_path: Path, helper: str) -> None:
    script = tmp_path / "single.py"
    script.write_text(SINGLE_PROCESS)
    found = discover(Profile(name="single", command=f"{{python}} {script} {{port}}{helper}"), 2)
    assert found.not_prefork == NOT_PREFORK == "one process listens and accepts"
    assert (found.mode, found.parent_death_probed) == (None, False)
    assert found.total_seconds < DiscoveryBudget().workers  # judged, not given up on
    assert f"not a prefork server: {NOT_PREFORK}" in found.describe()
    assert apply(Profile(name="single", command="x"), found).mode == "auto"


@pytest.mark.process
@pytest.mark.timeout(60)
def test_a_master_whose_workers_start_late_is_still_a_prefork_server(tmp_path: Path) -> None:
    script = tmp_path / "slow_start.py"
    script.write_text(SLOW_START)
    profile = Profile(name="slow", command=f"{{python}} {script} {{port}} {{workers}}")
    with ProbeRun(profile, 2, start_timeout=10.0) as run:
        structure = probe_structure(run, DiscoveryBudget())
    assert structure.not_prefork is None
    assert structure.view is not None
    assert len(structure.view.workers) == 2
    assert structure.mode is SharingMode.BLOCKING
