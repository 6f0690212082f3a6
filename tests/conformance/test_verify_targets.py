"""The verifier against the reference server in every mode, nginx in its three configurations and
gunicorn in both, with the known facts (DOMAIN N1–N3, G1–G3) as assertions. Each run plays the
scenarios and a short walk, with discovery off (the bundled profiles claim everything); every
backend kills its process group in teardown.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from forkshare.conformance.verify import machine
from forkshare.conformance.verify.profile import Profile, load_bundled
from forkshare.conformance.verify.scenarios import SCENARIO_BOUNDS, SCENARIOS
from forkshare.conformance.verify.verify import Plan, Result, config_for, settle_claim, verify
from forkshare.model.config import Mode, ParentDeath

pytestmark = [pytest.mark.process, pytest.mark.timeout(300)]

SHORT = Plan(examples=1, steps=6, discover=False, shrink=False, derandomize=True)


def _explained(result: Result) -> str:
    violation = result.violation
    if violation is None:
        return result.verdict
    return (
        f"{result.verdict} ({violation.found_by}): {violation.message}\n"
        f"steps {violation.steps}\nobserved {violation.observed}\nallowed {violation.allowed}"
    )


def _scenario(profile: Profile, name: str) -> Result:
    [steps] = [s.steps for s in SCENARIOS if s.name == name]
    claim = settle_claim(profile, 2, discover=False)
    config = config_for(claim.profile, 2, SCENARIO_BOUNDS, claim.mode, claim.private_reuseport)
    return verify(claim.profile, Plan(discover=False), replay=steps, config=config)


@pytest.mark.parametrize("mode", [m.value for m in Mode])
def test_the_reference_server_conforms_in_every_mode(mode: str) -> None:
    result = verify(load_bundled(f"forkshare-{mode}"), SHORT)
    assert result.verdict == "conforms", _explained(result)
    assert result.scenarios, "no scenario was played"
    assert all(report.ok for report in result.traces), [r.problems for r in result.traces]


@pytest.mark.nginx
@pytest.mark.parametrize("target", ["nginx", "nginx-mutex", "nginx-reuseport"])
def test_nginx_conforms_in_each_configuration(target: str) -> None:
    result = verify(load_bundled(target), SHORT)
    assert result.verdict == "conforms", _explained(result)


@pytest.mark.nginx
def test_nginx_orphans_accept_after_the_master_dies_so_a_workers_exit_claim_is_violated() -> None:
    claimed = replace(load_bundled("nginx"), parent_death=ParentDeath.WORKERS_EXIT)
    result = _scenario(claimed, "SIGKILL the master, then a client")
    assert result.violation is not None
    assert result.violation.prop == "orphans_exit_with_master", _explained(result)
    assert "accepted conn0 after its master" in result.violation.message


@pytest.mark.nginx
def test_nginx_with_accept_mutex_lets_a_stopped_holder_stall_every_accept() -> None:
    profile = load_bundled("nginx-mutex")
    result = _scenario(profile, "a client while the first worker is stopped")
    other = _scenario(profile, "a client while the second worker is stopped")
    assert result.verdict == other.verdict == "conforms", _explained(result) + _explained(other)


@pytest.mark.gunicorn
def test_gunicorn_sync_conforms() -> None:
    result = verify(load_bundled("gunicorn"), SHORT)
    assert result.verdict == "conforms", _explained(result)


@pytest.mark.gunicorn
def test_gunicorn_reuse_port_loses_connections_queued_on_a_killed_worker() -> None:
    profile = load_bundled("gunicorn-reuseport")
    for _ in range(4):  # the reuseport hash may send every client to the live worker
        result = _scenario(profile, "SIGKILL a worker with connections queued behind it")
        if result.violation is not None:
            break
    assert result.violation is not None, "no client was hashed to the killed worker in 4 runs"
    assert result.violation.prop == "no_queued_connection_lost", _explained(result)
    assert "reset when listener" in result.violation.message


def test_a_walk_the_model_cannot_follow_is_cut_short_and_noted_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With a closure cap of 2 states, the first step that leaves more model states open ends
    # the walk: the run still ends in a verdict and says how many walks were cut short.
    monkeypatch.setattr(machine, "MAX_CLOSURE", 2)
    plan = Plan(examples=2, steps=6, scenarios=False, discover=False, derandomize=True)
    result = verify(load_bundled("forkshare-exclusive"), plan)
    assert result.verdict == "conforms", _explained(result)
    assert result.coverage.cut_short
    assert "more than 2 states" in result.coverage.cut_short[0]
    assert "random walks cut short" in result.coverage.describe()
