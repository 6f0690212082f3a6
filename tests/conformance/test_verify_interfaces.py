"""The verifier's machine- and user-facing interfaces: ``--json`` (one document on stdout), the
exit codes of each verdict, a saved violation replayed with ``--replay``, ``--profile-out`` read
back by ``--profile``, flags that do not apply to a target, and :func:`run_conformance` called
from a third party's pytest.

Violations are provoked on purpose: the reference server in passfd mode (its master accepts) is
claimed to be an ``exclusive`` server (workers accept), which the first client shows; a server
started with three workers when the verifier starts two does something no property explains.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from forkshare.cli import main as forkshare
from forkshare.conformance.verify.machine import NonconformanceError
from forkshare.conformance.verify.profile import load_bundled, load_file, profile_from_table
from forkshare.conformance.verify.verify import run_conformance

pytestmark = pytest.mark.process

LEAKY_HELPER = Path(__file__).parents[1] / "zoo" / "leaky_helper.py"

SHORT = ["--examples", "1", "--steps", "3", "--no-shrink", "--no-discover", "--no-scenarios"]
SIGNALS = ["--reload-signal", "HUP", "--graceful-signal", "QUIT", "--fast-signal", "TERM"]
MISCLAIMED = [
    "--command",
    "{forkshare} serve --listen 127.0.0.1:{port} --workers {workers} --mode passfd "
    "--log-level warning",
    "--mode",
    "exclusive",
    *SIGNALS,
    "--examples",
    "3",
    "--steps",
    "4",
    "--no-shrink",
    "--no-discover",
]


def test_json_is_one_document_on_stdout_for_a_conforming_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = forkshare(["verify", "--target", "forkshare-exclusive", *SHORT, "--json"])
    out = capsys.readouterr().out
    record = json.loads(out)  # the whole of stdout is the document
    assert status == 0
    assert record["verdict"] == "conforms"
    assert record["violation"] is None
    assert record["properties"]["no_queued_connection_lost"] == "holds"
    assert record["coverage"]["environment_actions"]["performed"] >= 1


def test_a_master_that_accepts_is_named_and_its_replay_names_it_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replay = tmp_path / "violation.json"
    status = forkshare(["verify", *MISCLAIMED, "--replay-out", str(replay), "--json"])
    first = json.loads(capsys.readouterr().out)
    assert status == 1, first
    assert first["violation"]["property"] == "master_never_accepts"
    assert "accepted" in first["violation"]["evidence"]
    again = forkshare(["verify", "--replay", str(replay), "--json"])
    second = json.loads(capsys.readouterr().out)
    assert again == 1
    assert second["violation"]["property"] == "master_never_accepts"


def test_behaviour_no_property_explains_is_reported_as_unexplained_with_exit_4(
    capsys: pytest.CaptureFixture[str],
) -> None:
    three_workers = (
        "{forkshare} serve --listen 127.0.0.1:{port} --workers 3 --mode exclusive "
        "--log-level warning"
    )
    status = forkshare(
        ["verify", "--command", three_workers, "--mode", "exclusive", *SIGNALS, *SHORT, "--json"]
    )
    record = json.loads(capsys.readouterr().out)
    assert status == 4, record
    assert record["verdict"] == "unexplained behaviour"
    assert record["violation"]["property"] is None
    assert record["violation"]["observed"] != ""
    assert record["violation"]["observed"] not in record["violation"]["allowed"]


def test_a_flag_that_does_not_apply_to_the_target_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert forkshare(["verify", "--target", "nginx", "--sched", "none"]) == 2
    assert "--sched applies only to kind node" in capsys.readouterr().err


def test_a_flag_overrides_the_targets_profile(tmp_path: Path) -> None:
    written = tmp_path / "profile.toml"
    status = forkshare(
        [
            "verify",
            "--target",
            "forkshare-exclusive",
            "--respawn-bound",
            "4.5",
            *SHORT,
            "--profile-out",
            str(written),
        ]
    )
    assert status == 0
    profile = load_file(written)
    assert profile.respawn_bound == 4.5
    assert profile.command == load_bundled("forkshare-exclusive").command


def test_run_conformance_passes_for_a_conforming_target() -> None:
    run_conformance(
        load_bundled("forkshare-exclusive"),
        settings=settings(max_examples=1, stateful_step_count=4, deadline=None, database=None),
    )


def test_run_conformance_raises_nonconformance_naming_the_property() -> None:
    leaky = profile_from_table(
        "leaky",
        {
            "kind": "command",
            "command": f"{sys.executable} {LEAKY_HELPER} --port {{port}} --workers {{workers}}",
            "reload_signal": "HUP",
            "graceful_signal": "TERM",
            "fast_signal": "INT",
        },
    )
    with pytest.raises(NonconformanceError) as failure:
        run_conformance(
            leaky,
            settings=settings(max_examples=1, stateful_step_count=2, deadline=None, database=None),
        )
    assert failure.value.prop == "no_leaked_listener"
    assert "leaked descriptor" in failure.value.message
