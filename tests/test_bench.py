"""`python workflow/benchmarks/bench.py --tiny` runs end to end and writes every measurement.

A test of the benchmark script, not a timed test: each measurement is a positive finite number,
each ratio the quotient of its two measurements and each target's verdict its value against its
limit; never how fast anything is."""

import importlib.util
import json
import math
import subprocess
import sys
import time
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

    # each ratio is its two measurements' quotient (one round in --tiny: the paired median is
    # that round's ratio), and each target says whether its value meets its limit
    quotients = {
        "b_over_a": ("ours", "plain", "repeats_ms_per_step"),
        "c_over_b": ("loader", "ours", "repeats_ms_per_step"),
        "input_speedup": ("mem_input", "dl_input", "repeats_samples_per_s"),
        "configured_over_b": ("configured", "ours", "repeats_ms_per_step"),
    }
    for name, (top, bottom, key) in quotients.items():
        assert set(report["ratios"][name]) == {"32", "128"}
        for batch, rows in report["results"].items():
            expected = rows[top][key][0] / rows[bottom][key][0]
            assert report["ratios"][name][batch] == pytest.approx(expected, rel=1e-12), name
    limits = {"b_over_a": ("<=", 1.05), "c_over_b": (">=", 2.0), "input_speedup": (">=", 50.0)}
    for name, (comparison, limit) in limits.items():
        for batch in ("32", "128"):
            target, value = report["targets"][f"{name}@{batch}"], report["ratios"][name][batch]
            assert target["value"] == value and target["target"] == f"{comparison} {limit}"
            assert target["met"] is (value <= limit if comparison == "<=" else value >= limit)

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


@pytest.mark.slow  # trains in-process: ~7 s with the worker's ColossalAI import
def test_steady_seconds_times_the_epochs_after_the_first(tmp_path, digits_data, monkeypatch):
    """A stall in the first epoch is left out of the span, one in the second is inside it, and
    the span counts the steps between the second epoch's first batch and the run's last: one run
    timed from within, never two runs' times differenced (which a busy machine turned negative)."""
    from lrstudy import inputs

    from .conftest import spec_of, study_config

    stall = {0: 1.0, 1: 0.3}  # seconds slept before the epoch's first batch: 1 s >> 39 steps
    plain = inputs.shuffled_batches

    def stalling(x, y, spec, epoch, runtime):
        time.sleep(stall.get(epoch, 0.0))
        yield from plain(x, y, spec, epoch, runtime)

    monkeypatch.setattr(inputs, "shuffled_batches", stalling)
    spec = spec_of(study_config(), "step", eval_every=10_000, checkpoint_every=0)
    seconds, steps = bench.steady_seconds(spec, digits_data, tmp_path, epochs=2)
    train_samples = json.loads(digits_data.with_suffix(".json").read_text())["sizes"]["train"]
    steps_per_epoch = train_samples // spec.batch_size
    assert steps == steps_per_epoch - 1
    assert stall[1] <= seconds < stall[0] + stall[1]
