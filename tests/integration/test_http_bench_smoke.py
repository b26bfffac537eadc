"""The HTTP throughput bench runs end to end at tiny durations (the real run is `make bench`).

It starts the real server process (one uvicorn worker, SQLite) and the raw-socket load
generator; no timing is asserted, only that every route answered and was reported.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bench.__main__ import run
from bench.http_load import build_request, percentile

pytestmark = pytest.mark.e2e


def test_http_throughput_smoke_run_reports_every_route(tmp_path: Path) -> None:
    assert asyncio.run(run(["http_throughput", "--smoke", "--results", str(tmp_path)])) == 0
    body = json.loads((tmp_path / "http_throughput.json").read_text())
    metrics = {m["name"]: m["value"] for m in body["metrics"]}
    for route in ("hello", "summary", "data_request"):
        assert metrics[f"{route} (median)"] > 0, route
        assert metrics[f"{route} p99 (median)"] >= metrics[f"{route} p50 (median)"] > 0
    assert metrics["data_request answered 200 (all phases)"] > 0
    assert metrics["data_request answered 403 (all phases)"] == 0
    assert {c["name"] for c in body["checks"]} == {
        "summary ≥ 60 % of hello (req/s, 1 worker)",
        "data_request ≥ 30 % of hello (req/s, 1 worker)",
    }
    assert all(isinstance(c["ok"], bool) for c in body["checks"])
    notes = "\n".join(body["notes"])
    assert "Unexpected answers" not in notes, notes
    # Every answered data request wrote exactly one ledger event (queued or integrated).
    assert "ledger sequencer" in notes and "database holds" not in notes, notes
    assert "## http_throughput" in (tmp_path / "REPORT.md").read_text()


def test_requests_are_framed_and_percentiles_are_nearest_rank() -> None:
    raw = build_request("POST", "/x", host="h:1", headers={"A": "b"}, body=b'{"k":1}')
    assert raw == b'POST /x HTTP/1.1\r\nHost: h:1\r\nA: b\r\nContent-Length: 7\r\n\r\n{"k":1}'
    assert build_request("GET", "/", host="h").endswith(b"Host: h\r\n\r\n")
    ordered = [float(i) for i in range(1, 101)]
    assert percentile(ordered, 0.5) == 50.0
    assert percentile(ordered, 0.99) == 99.0
    assert percentile([], 0.5) == 0.0
