"""`python workflow/benchmarks/bench.py --tiny` runs end to end and writes every measurement.

A smoke test of the benchmark script, not a timed test: it checks that each measurement is a
positive finite number, never how fast anything is."""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "workflow" / "benchmarks" / "bench.py"
_spec = importlib.util.spec_from_file_location("benchmarks_bench", BENCH)
bench = sys.modules["benchmarks_bench"] = importlib.util.module_from_spec(_spec)  # a script
_spec.loader.exec_module(bench)

KINDS = ("plain", "ours", "loader", "configured", "mem_input", "dl_input")


def positive(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


@pytest.mark.slow
def test_tiny_bench_writes_every_measurement(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(out.read_text())

    assert set(report["results"]) == {"32", "128"}
    for batch, rows in report["results"].items():
        for kind in KINDS:
            row = rows[kind]
            keys = (
                ("samples_per_s", "ms_per_batch")
                if kind.endswith("_input")
                else ("ms_per_step", "samples_per_s")
            )
            for key in keys:
                assert positive(row[key]), (batch, kind, key, row[key])
            repeats = (
                row["repeats_samples_per_s"]
                if kind.endswith("_input")
                else row["repeats_ms_per_step"]
            )
            assert len(repeats) == 1 and all(positive(v) for v in repeats), (batch, kind, repeats)
        assert positive(rows["measured_steps"])

    for name in ("b_over_a", "c_over_b", "input_speedup", "configured_over_b"):
        assert set(report["ratios"][name]) == {"32", "128"}
        assert all(positive(v) for v in report["ratios"][name].values()), (
            name,
            report["ratios"][name],
        )

    startup = report["startup"]
    for key in ("ours_s", "floor_s"):
        assert positive(startup[key]), (key, startup[key])
    assert math.isfinite(startup["extra_s"])
    assert len(startup["ours_runs_s"]) == len(startup["floor_runs_s"]) == 1

    assert "ranks" not in report and "study" not in report  # off in --tiny unless asked for
    assert set(report["targets"]) == {
        f"{n}@{b}" for n in ("b_over_a", "input_speedup", "c_over_b") for b in ("32", "128")
    } | {"startup_extra_s"}
    assert all(isinstance(t["met"], bool) for t in report["targets"].values())

    # The table ends with the ratios and, last, the start-up line.
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("start-up to first step")
    assert any(line.strip().startswith("b/a") for line in lines)


def test_tiny_and_repeat_flags():
    args = bench.parse_args(["--tiny"])
    assert args.repeats == 1 and args.ranks is None and args.study is None
    assert bench.parse_args([]).repeats >= 3
    with pytest.raises(SystemExit):
        bench.parse_args(["--repeats", "2"])
