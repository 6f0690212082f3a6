"""Exhaustive exploration: every safe mode keeps every invariant; every unsafe variant breaks its own."""

from __future__ import annotations

import pytest

from forkshare.cli import main as forkshare
from forkshare.model.config import Bounds, Config, Mode
from forkshare.model.explorer import explore
from forkshare.model.variants import VARIANTS

SMALL = Bounds(connections=2, kills=1, stops=0, reloads=0, shutdowns=0)
RELOAD = Bounds(connections=1, kills=0, stops=0, reloads=1, shutdowns=1)
UPGRADE = Bounds(connections=1, kills=0, stops=0, reloads=0, shutdowns=1, upgrades=1)


@pytest.mark.parametrize("mode", list(Mode))
def test_every_safe_mode_keeps_every_invariant(mode: Mode) -> None:
    result = explore(Config(mode=mode, workers=2, bounds=SMALL))
    assert result.complete
    assert result.violations == {}
    assert result.states > 100


@pytest.mark.parametrize("mode", list(Mode))
def test_reload_and_shutdown_keep_every_invariant(mode: Mode) -> None:
    result = explore(Config(mode=mode, workers=2, bounds=RELOAD))
    assert result.complete
    assert result.violations == {}
    fired = set(result.actions_fired)
    assert {"reload", "retire_generation", "graceful_shutdown", "fast_shutdown"} <= fired


@pytest.mark.parametrize("mode", list(Mode))
def test_upgrade_and_shutdown_keep_every_invariant(mode: Mode) -> None:
    result = explore(Config(mode=mode, workers=2, bounds=UPGRADE))
    assert result.complete
    assert result.violations == {}
    assert {"upgrade", "exit_master", "graceful_shutdown"} <= set(result.actions_fired)


@pytest.mark.parametrize("mode", list(Mode))
def test_master_death_and_restart_keep_every_invariant(mode: Mode) -> None:
    bounds = Bounds(connections=1, kills=1, master_kills=1, starts=2, upgrades=1, reloads=0)
    result = explore(Config(mode=mode, workers=2, bounds=bounds))
    assert result.complete
    assert result.violations == {}
    assert {"kill_master", "start_master", "exit_worker"} <= set(result.actions_fired)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_unsafe_variant_violates_its_expected_invariant(name: str) -> None:
    variant = VARIANTS[name]
    config = variant.apply(Config(workers=2, bounds=variant.bounds))
    result = explore(config)
    assert variant.expected in result.violations
    trace = result.violations[variant.expected].trace
    assert trace[0].action == "start_master"
    assert not _holds(variant.expected, config, trace[-1].state)
    assert all(_holds(variant.expected, config, step.state) for step in trace[:-1])


def _holds(name: str, config: Config, state: object) -> bool:
    from forkshare.model.invariants import INVARIANTS

    return INVARIANTS[name].holds(config, state)  # type: ignore[arg-type]


def test_only_the_poll_mode_wakes_more_than_one_worker() -> None:
    herd = explore(Config(mode=Mode.POLL, workers=2, bounds=Bounds(connections=1, reloads=0)))
    one = explore(Config(mode=Mode.EXCLUSIVE, workers=2, bounds=Bounds(connections=1, reloads=0)))
    assert herd.max_wakeups == 2
    assert one.max_wakeups == 1


def test_stopping_the_mutex_holder_stalls_every_accept() -> None:
    """nginx accept_mutex on: a SIGSTOPped holder keeps the mutex; no other worker can accept."""
    from forkshare.model.actions import ACTIONS
    from tests.model.test_kernel import run

    config = Config(mode=Mode.MUTEX, workers=2, bounds=Bounds(connections=1, stops=1))
    state = run(
        config,
        ("start_master", ()),
        ("spawn_worker", (1, 0)),
        ("spawn_worker", (1, 1)),
        ("acquire_mutex", (2,)),
        ("stop_worker", (2,)),
        ("connect", ()),
    )
    assert not any(ACTIONS["accept"].arguments(config, state))
    assert not any(ACTIONS["acquire_mutex"].arguments(config, state))


def test_the_cli_shows_a_worker_death_resetting_a_private_reuseport_queue(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = forkshare(
        [
            "explore",
            "--mode",
            "reuseport",
            "--variant",
            "private-reuseport",
            "--workers",
            "2",
            "--connections",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert status == 1
    assert "no_queued_connection_lost" in out
    assert "kill_worker(worker" in out
    assert "aborted" in out


def test_the_cli_finds_nothing_without_the_variant(capsys: pytest.CaptureFixture[str]) -> None:
    status = forkshare(["explore", "--mode", "reuseport", "--workers", "2", "--connections", "2"])
    assert status == 0
    assert "all invariants hold" in capsys.readouterr().out


def test_the_cli_rejects_bad_numbers_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        forkshare(["explore", "--workers", "0"])
    assert exit_info.value.code == 2
    assert "below 1" in capsys.readouterr().err


def test_the_cli_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    status = forkshare(["explore", "--variant", "no-force-unlock", "--connections", "1", "--json"])
    record = json.loads(capsys.readouterr().out)
    assert status == 1
    assert record["expected_violation"] == "mutex_holder_is_alive"
    assert record["passes"] is True
    assert "mutex_holder_is_alive" in record["violations"]
