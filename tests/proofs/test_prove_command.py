"""``forkshare prove``: the table, the JSON records and the exit statuses."""

from __future__ import annotations

import json

import pytest

from forkshare import prove
from forkshare.cli import main as forkshare
from forkshare.proofs.report import Kind, Record, Result, SuiteReport


def test_prove_only_one_action_prints_its_obligations_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert prove.main(["--only", "accept", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "consecution" in out
    assert "witness" in out
    assert "all proved" in out


def test_prove_json_has_one_record_per_obligation(capsys: pytest.CaptureFixture[str]) -> None:
    assert prove.main(["--json", "--only", "no-respawn", "--jobs", "1"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True
    (record,) = document["records"]
    assert {"kind", "action", "invariant", "result", "ms"} <= record.keys()
    assert record["kind"] == "refutation"
    assert record["result"] == "found"
    assert "reap(" in record["detail"]


def test_prove_json_reports_a_freedom_witness_as_its_own_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert prove.main(["--json", "--only", "F8", "--jobs", "1"]) == 0
    document = json.loads(capsys.readouterr().out)
    (record,) = document["records"]
    assert record["kind"] == "freedom"
    assert record["target"] == "F8"
    assert record["result"] == "found"
    assert "exit_master(master1)" in record["detail"]


def test_prove_json_says_how_each_obligation_was_proved(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert prove.main(["--json", "--only", "exclusive", "--jobs", "1"]) == 0
    document = json.loads(capsys.readouterr().out)
    bases = {r["basis"] for r in document["records"] if r["kind"] == "consecution"}
    assert bases == {"solver", "frame"}


def test_an_unknown_only_name_is_a_usage_error_listing_the_valid_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert forkshare(["prove", "--only", "no_such_thing"]) == 2
    err = capsys.readouterr().err
    assert "no_such_thing" in err
    assert "accept" in err
    assert "private-reuseport" in err


def test_a_failed_obligation_exits_1_and_prints_its_counterexample(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = Record(
        Kind.CONSECUTION,
        "exclusive",
        "reap",
        "type_ok",
        Result.FAILED,
        3.0,
        "counterexample to induction: type_ok is not preserved by reap(worker2)",
    )
    monkeypatch.setattr(prove, "run_proof_suite", lambda only, jobs: SuiteReport([failed], 0.1))
    assert prove.main([]) == 1
    out = capsys.readouterr().out
    assert "NOT PROVED" in out
    assert "not preserved by reap(worker2)" in out
