"""The verifier against real servers: the reference server in every mode, nginx in its three
configurations, gunicorn in both, with the known facts of the issue (item 6) as assertions.
Runs are short (2 examples of 6 steps); every backend kills its process group in teardown."""

from __future__ import annotations

import pytest

from forkshare.conformance.verify.profile import load_bundled
from forkshare.conformance.verify.scenarios import lose_queued, mutex_stall, orphans_serve
from forkshare.conformance.verify.verify import Result, verify
from forkshare.model.config import Mode, ParentDeath

pytestmark = [pytest.mark.process, pytest.mark.timeout(240)]


def _conforms(result: Result) -> None:
    assert result.violation is None, (
        f"{result.violation.prop}: {result.violation.message}\n"
        f"steps {result.violation.steps}\nobserved {result.violation.observed}\n"
        f"allowed {result.violation.allowed}"
    )
    assert result.steps > 0


@pytest.mark.parametrize("mode", [m.value for m in Mode])
def test_the_reference_server_conforms_in_every_mode(mode: str) -> None:
    result = verify(
        load_bundled(f"forkshare-{mode}"), examples=2, steps=6, shrink=False, derandomize=True
    )
    _conforms(result)
    assert all(report.ok for report in result.traces), [r.problems for r in result.traces]


def test_the_reference_servers_trace_passes_validation_in_mutex_mode() -> None:
    result = mutex_stall(load_bundled("forkshare-mutex"))
    assert result.traces
    assert all(report.ok for report in result.traces)
    assert result.traces[0].events > 0


@pytest.mark.nginx
@pytest.mark.parametrize("target", ["nginx", "nginx-mutex", "nginx-reuseport"])
def test_nginx_conforms_in_each_configuration(target: str) -> None:
    _conforms(verify(load_bundled(target), examples=2, steps=6, shrink=False, derandomize=True))


@pytest.mark.nginx
def test_nginx_orphans_serve_after_the_master_dies_so_workers_exit_is_violated() -> None:
    result = orphans_serve(load_bundled("nginx"), ParentDeath.WORKERS_EXIT)
    assert result.violation is not None
    assert result.violation.prop == "orphans_exit_with_master"
    assert "orphan" in result.violation.observed


@pytest.mark.nginx
def test_nginx_conforms_to_orphans_keep_serving() -> None:
    _conforms(orphans_serve(load_bundled("nginx"), ParentDeath.ORPHANS_SERVE))


@pytest.mark.nginx
def test_nginx_with_accept_mutex_lets_a_stopped_holder_stall_every_accept() -> None:
    result = mutex_stall(load_bundled("nginx-mutex"))
    _conforms(result)
    assert any("stopped mutex holder stalls every accept" in f for f in result.findings)


@pytest.mark.gunicorn
def test_gunicorn_sync_conforms() -> None:
    _conforms(verify(load_bundled("gunicorn"), examples=2, steps=6, shrink=False, derandomize=True))


@pytest.mark.gunicorn
def test_gunicorn_loses_nothing_queued_on_a_killed_worker_with_a_shared_socket() -> None:
    _conforms(lose_queued(load_bundled("gunicorn")))


@pytest.mark.gunicorn
def test_gunicorn_reuse_port_loses_connections_queued_on_a_killed_worker() -> None:
    for _ in range(3):  # the reuseport hash may send every client to the live worker (1 in 8)
        result = lose_queued(load_bundled("gunicorn-reuseport"))
        if result.violation is not None:
            break
    assert result.config.private_reuseport
    assert result.violation is not None
    assert result.violation.prop == "no_queued_connection_lost"
    assert "reset" in result.violation.observed
