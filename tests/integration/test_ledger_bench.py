"""The ledger benchmarks run end to end at tiny sizes (the real runs are `make bench`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import run
from bench.report import render_report
from tests.conftest import run_async


@pytest.mark.parametrize("name", ["ledger_sequencer", "ledger_proofs"])
def test_scenario_smoke_run_writes_json_and_report(name: str, tmp_path: Path) -> None:
    assert run_async(lambda: run([name, "--smoke", "--results", str(tmp_path)])) == 0
    body = json.loads((tmp_path / f"{name}.json").read_text())
    assert body["scenario"] == name and body["metrics"] and body["checks"]
    assert all(isinstance(c["ok"], bool) for c in body["checks"])
    report = (tmp_path / "REPORT.md").read_text()
    assert f"| {name} |" in report and f"## {name}" in report
    assert render_report(tmp_path) == report


def test_unknown_scenario_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_async(lambda: run(["no_such_scenario", "--results", str(tmp_path)])) == 2
    assert "unknown scenario" in capsys.readouterr().err
    assert run_async(lambda: run(["--list"])) == 0
    assert "ledger_proofs" in capsys.readouterr().out
