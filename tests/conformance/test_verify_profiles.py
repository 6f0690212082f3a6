"""Profiles, the abstract record and trace validation: fast, no process started (except the exit-3
test, which starts a command that exits at once)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import tempfile
from pathlib import Path

import pytest

from forkshare.conformance.verify import target
from forkshare.conformance.verify.abstraction import of_state
from forkshare.conformance.verify.command import main
from forkshare.conformance.verify.errors import ProfileError
from forkshare.conformance.verify.profile import (
    bundled_names,
    load_bundled,
    parse_profile,
)
from forkshare.conformance.verify.target import command_line
from forkshare.conformance.verify.trace_check import check_trace
from forkshare.model.actions import ACTIONS
from forkshare.model.config import Config, Mode, ParentDeath
from forkshare.model.explorer import initial_state
from tests.conformance.conftest import require_package


def test_every_mode_of_the_reference_server_nginx_and_gunicorn_are_bundled() -> None:
    names = set(bundled_names())
    assert {f"forkshare-{mode.value}" for mode in Mode} <= names
    assert {"nginx", "nginx-mutex", "nginx-reuseport", "gunicorn", "gunicorn-reuseport"} <= names
    assert {"apache-prefork", "node-cluster-rr", "node-cluster-none"} <= names


def test_bundled_profiles_state_their_signals_and_parent_death_policy() -> None:
    nginx, gunicorn = load_bundled("nginx"), load_bundled("gunicorn")
    assert (nginx.graceful_signal, nginx.fast_signal) == (signal.SIGQUIT, signal.SIGTERM)
    assert (gunicorn.graceful_signal, gunicorn.fast_signal) == (signal.SIGTERM, signal.SIGQUIT)
    assert nginx.parent_death is ParentDeath.ORPHANS_SERVE
    assert gunicorn.parent_death is ParentDeath.WORKERS_EXIT


def test_nginx_config_is_written_with_the_profiles_accept_mutex_and_reuseport(
    tmp_path: Path,
) -> None:
    argv = command_line(load_bundled("nginx-reuseport"), 8999, 3, tmp_path)
    conf = (tmp_path / "nginx.conf").read_text()
    assert "listen 127.0.0.1:8999 reuseport;" in conf
    assert "worker_processes 3;" in conf
    assert "accept_mutex off;" in conf
    assert argv[0] == "/usr/sbin/nginx"


def test_apache_config_is_written_from_the_bundled_template_with_port_dir_and_workers() -> None:
    require_package(Path(target.APACHE).exists(), "apache2", "the Apache target")
    directory = Path(tempfile.mkdtemp(prefix="forkshare-test-"))  # root's Apache needs o+x
    try:
        argv = command_line(load_bundled("apache-prefork"), 8999, 3, directory)
        conf = (directory / "apache2.conf").read_text()
        assert argv == [
            target.APACHE,
            "-f",
            f"{directory}/apache2.conf",
            "-d",
            str(directory),
            "-DFOREGROUND",
        ]
        assert "Listen 127.0.0.1:8999" in conf
        assert "MaxRequestWorkers 3" in conf
        assert f'DocumentRoot "{directory}/htdocs"' in conf
        assert (directory / "htdocs" / "index.html").stat().st_mode & stat.S_IROTH
        if os.geteuid() == 0:  # the children run as www-data
            assert directory.stat().st_mode & stat.S_IXOTH
    finally:
        shutil.rmtree(directory)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root's Apache serves as www-data")
def test_apache_as_root_refuses_a_scratch_directory_its_children_cannot_reach(
    tmp_path: Path,
) -> None:
    require_package(Path(target.APACHE).exists(), "apache2", "the Apache target")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "run").mkdir()
    with pytest.raises(ProfileError, match=f"{private} is not searchable by others"):
        command_line(load_bundled("apache-prefork"), 8999, 2, private / "run")


@pytest.mark.parametrize("sched", ["rr", "none"])
def test_node_runs_a_copy_of_the_bundled_supervisor_with_the_profiles_policy(
    tmp_path: Path, sched: str
) -> None:
    require_package(shutil.which(target.NODE) is not None, "nodejs", "the Node targets")
    argv = command_line(load_bundled(f"node-cluster-{sched}"), 8999, 3, tmp_path)
    script = tmp_path / "node_cluster.js"
    assert argv[1:] == [str(script), "--port", "8999", "--workers", "3", "--sched", sched]
    assert script.read_text() == target.bundled_target_file("node_cluster.js")


def test_a_missing_node_or_apache_names_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no node on it
    with pytest.raises(ProfileError, match="apt-get install nodejs"):
        command_line(load_bundled("node-cluster-rr"), 8999, 2, tmp_path)
    monkeypatch.setattr(target, "APACHE", str(tmp_path / "no-apache2"))
    with pytest.raises(ProfileError, match="apt-get install apache2"):
        command_line(load_bundled("apache-prefork"), 8999, 2, tmp_path)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('kind = "command"', "needs a command"),
        ('command = "x"\nmode = "round-robin"', "mode = 'round-robin' is not one of"),
        ('command = "x"\nparent_death = "workers-exit"\nreload_signal = "HUPP"', "not a signal"),
        ('command = "x"\nworkers = 3', "unknown key 'workers'"),
        ("command = ", "not valid TOML"),
    ],
)
def test_a_bad_profile_is_rejected_with_the_key_at_fault(text: str, complaint: str) -> None:
    with pytest.raises(ProfileError, match=complaint):
        parse_profile("bad", text)


def test_a_bad_profile_file_exits_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('command = "srv {port}"\nmode = "sideways"\n')
    assert main(["--profile", str(bad)]) == 2
    assert "mode = 'sideways' is not one of" in capsys.readouterr().err


def test_an_unknown_target_exits_2_listing_the_bundled_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--target", "apache"]) == 2
    assert "forkshare-exclusive" in capsys.readouterr().err


@pytest.mark.process
def test_a_target_that_fails_to_start_exits_3_with_its_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = "{python} -c 'import sys; sys.exit(\"no config for port {port}\")'"
    assert main(["--command", command, "--mode", "exclusive", "--examples", "1"]) == 3
    assert "no config for port" in capsys.readouterr().err


def test_the_record_of_a_started_model_server_shows_the_master_and_its_workers() -> None:
    config = Config(mode=Mode.EXCLUSIVE, workers=2)
    state = ACTIONS["start_master"].successors(config, initial_state(), ())[0]
    for slot in (0, 1):
        state = ACTIONS["spawn_worker"].successors(config, state, (1, slot))[0]
    record = of_state(state)
    assert record.processes == (("master", False, 1), ("worker", False, 1), ("worker", False, 1))
    assert record.queues == (0,)


def _trace(path: Path, events: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps({"ts": 0.0, **e}) + "\n" for e in events))
    return path


def test_trace_validation_accepts_a_well_behaved_mutex_trace(tmp_path: Path) -> None:
    events: list[dict[str, object]] = [
        {"pid": 1, "event": "listen", "inode": 7},
        {"pid": 1, "event": "fork", "child": 2, "role": "worker"},
        {"pid": 1, "event": "fork", "child": 3, "role": "worker"},
        {"pid": 2, "event": "mutex_acquire"},
        {"pid": 2, "event": "accept", "inode": 7, "peer": "127.0.0.1:5000", "fd": 9},
        {"pid": 2, "event": "mutex_release"},
        {"pid": 3, "event": "mutex_acquire"},
        {"pid": 1, "event": "reap", "child": 3, "status": None, "signal": 9, "respawn": True},
        {"pid": 1, "event": "mutex_force_unlock", "holder": 3},
        {"pid": 2, "event": "mutex_acquire"},
    ]
    assert check_trace(_trace(tmp_path / "t.jsonl", events), Mode.MUTEX).ok


def test_trace_validation_names_the_invariant_a_bad_trace_breaks(tmp_path: Path) -> None:
    events: list[dict[str, object]] = [
        {"pid": 1, "event": "listen", "inode": 7},
        {"pid": 1, "event": "fork", "child": 2, "role": "worker"},
        {"pid": 2, "event": "mutex_acquire"},
        {"pid": 1, "event": "reap", "child": 2, "status": None, "signal": 9, "respawn": True},
        {"pid": 1, "event": "fork", "child": 3, "role": "worker"},
        {"pid": 3, "event": "mutex_acquire"},
        {"pid": 1, "event": "accept", "inode": 7, "peer": "127.0.0.1:5000", "fd": 9},
        {"pid": 3, "event": "accept", "inode": 8, "peer": "127.0.0.1:5000", "fd": 9},
    ]
    report = check_trace(_trace(tmp_path / "t.jsonl", events), Mode.MUTEX)
    broken = {name for name, problems in report.problems.items() if problems}
    assert broken == {
        "mutex_holder_is_alive",
        "master_never_accepts",
        "accepted_at_most_once",
        "listeners_keep_identity",
    }


def test_every_property_the_trace_checker_judges_is_a_model_invariant() -> None:
    from forkshare.conformance.verify.trace_check import CHECKS
    from forkshare.model.invariants import INVARIANTS

    assert set(CHECKS) <= set(INVARIANTS)
