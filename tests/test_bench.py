"""The benchmark's own machinery, in its smallest run.

Both servers are started as in the full run, the same subscribers and payloads are used,
and every delivery is counted. No figure of speed or memory is asserted here (they are
measured by ``bench/run.py`` and recorded in docs/benchmarks.md); this keeps the tool
that produces them working and exact.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_counts_every_delivery_on_both_servers(tmp_path: Path) -> None:
    """A --quick run delivers every post to every subscriber of both servers, once."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--no-pin", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["post_errors"] == 0
    assert results["frame_bytes"] >= 400
    for scenario in ("hold", "burst", "rate"):
        for server in ("baseline", "bulletin"):
            figures = results[scenario][server]
            assert figures["expected"] > 0, (scenario, server)
            assert figures["delivered"] == figures["expected"], (scenario, server, figures)
            assert figures["duplicates"] == figures["out_of_order"] == 0, (scenario, server)
            assert figures["disconnected"] == 0, (scenario, server)
            assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert results["hold"]["bulletin"]["unexpected_frames"] == 0
    assert results["burst"]["bulletin"]["deliveries_per_second"] > 0
    assert "| burst 100: deliveries/s |" in proc.stdout


def test_quick_scaleout_benchmark_counts_every_delivery_in_both_setups(tmp_path: Path) -> None:
    """A --quick scale-out run delivers every post once, in order, to every subscriber of
    one process and of two processes joined by Redis, and measures Redis's CPU."""
    import shutil

    from tests.conftest import service_unavailable

    if shutil.which("redis-server") is None:
        service_unavailable("redis-server is not installed")
    out = tmp_path / "scaleout.json"
    proc = subprocess.run(
        [sys.executable, "bench/scaleout.py", "--quick", "--no-pin", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    for setup in ("one", "two"):
        assert results[setup]["post_errors"] == 0
        for phase in ("burst", "rate"):
            figures = results[setup][phase]
            assert figures["expected"] > 0, (setup, phase)
            assert figures["delivered"] == figures["expected"], (setup, phase, figures)
            assert figures["duplicates"] == figures["out_of_order"] == 0, (setup, phase)
    assert results["two"]["burst"]["redis_cpu_seconds"] >= 0  # measured (may round to 0)
    assert "| burst 100: deliveries/s |" in proc.stdout


def test_quick_uploads_benchmark_delivers_every_post_and_stores_every_photo(
        tmp_path: Path) -> None:
    """A --quick uploads run delivers every post once to every reader with and without
    photo uploads going on, and every upload is accepted (201)."""
    out = tmp_path / "uploads.json"
    proc = subprocess.run(
        [sys.executable, "bench/uploads_latency.py", "--quick", "--no-pin", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["post_errors"] == 0
    assert results["runs"]
    for run in results["runs"]:
        for phase in ("none", "uploads"):
            figures = run[phase]
            assert figures["expected"] > 0, phase
            assert figures["delivered"] == figures["expected"], (phase, figures)
            assert figures["duplicates"] == figures["out_of_order"] == 0, phase
            assert figures["disconnected"] == 0, phase
        uploads = run["uploads"]["uploads"]
        assert len(uploads) == results["settings"]["photos"]
        assert {u["status"] for u in uploads} == {201}
    assert "| median (" in proc.stdout


def test_metrics_cost_parts_time_each_added_cost() -> None:
    """`bench/metrics_cost.py --parts` times a scrape, the HTTP middleware and the latency
    measurement, and what they add to a burst (no figure asserted)."""
    proc = subprocess.run(
        [sys.executable, "bench/metrics_cost.py", "--parts", "--subscribers", "200"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout)
    assert figures["subscribers"] == 200
    for name in ("scrape_ms", "latency_observe_us_per_event", "added_ms_per_burst"):
        assert figures[name] > 0, name
