"""Diverged runs: a range test stops where its smoothed loss passes stop_factor x its best, any run
stops at a non-finite loss; both end with status `diverged`, complete files, and never win
`best`."""

import csv
import json
import math

import pytest

from lrstudy import aggregate, tuning
from lrstudy.config import SELECTION_METRICS

from .conftest import spec_of, study_config

pytestmark = pytest.mark.slow

RANGE_TEST = "range_test"  # tiny.yaml: 1e-3 to 1e3 over 400 steps, stop_factor 4 (default)
RUNS = {
    # lr 0.1 for 60 steps (it learns), then 1e3: the loss overflows to NaN
    "blowup": {"scheduler": "StepLR", "kwargs": {"step_size": 60, "gamma": 1.0e4}},
    # completes, and learns slowly: its best valid loss stays above blowup's (2.2 vs 1.6 here),
    # its accuracy well above chance (0.30, where `collapsed` ends at 0.15)
    "slow": {
        "scheduler": "ExponentialLR",
        "kwargs": {"gamma": 1.0},
        "optimizer": {"name": "SGD", "kwargs": {"lr": 0.02}},
    },
    # the range test without stop_factor
    "range_nostop": {
        "range_test": {"start_lr": 1.0e-3, "end_lr": 1.0e3, "steps": 400, "stop_factor": None}
    },
}


@pytest.fixture(scope="module")
def specs():
    config = study_config(runs=RUNS)
    specs = {name: spec_of(config, name, 0) for name in (RANGE_TEST, *RUNS)}
    return specs


def read(folder):
    steps = list(csv.DictReader(open(folder / "steps.csv")))
    evals = list(csv.DictReader(open(folder / "evals.csv")))
    return json.loads((folder / "run.json").read_text()), steps, evals


def running_best(smoothed):
    best, out = math.inf, []
    for value in smoothed:
        best = min(best, value) if math.isfinite(value) else best
        out.append(best)
    return out


def assert_complete_files(meta, steps, evals):
    assert (
        [int(row["step"]) for row in steps] == list(range(len(steps))) == list(range(meta["steps"]))
    )
    # evaluated at the start and where the run stopped, both splits
    assert {(int(r["step"]), r["split"]) for r in evals} >= {(0, "valid"), (0, "test")}
    last_eval = max(int(r["step"]) for r in evals)
    assert last_eval >= len(steps) and {
        r["split"] for r in evals if int(r["step"]) == last_eval
    } == {"valid", "test"}


def test_range_test_stops_at_stop_factor_times_its_best(trainer, specs):
    spec = specs[RANGE_TEST]
    assert spec.range_test.end_lr == 1e3 and spec.range_test.stop_factor == 4
    meta, steps, evals = read(trainer.reference(spec))
    assert meta["status"] == "diverged" and meta["steps"] < meta["total_steps"] == 400
    assert_complete_files(meta, steps, evals)
    smoothed = [float(r["smoothed_loss"]) for r in steps]
    best = running_best(smoothed)
    stopped = [
        i for i, (s, b) in enumerate(zip(smoothed, best)) if not math.isfinite(s) or s > 4 * b
    ]
    assert stopped and stopped[0] == len(steps) - 1, "the last row is the first one past 4 x best"


def test_range_test_without_stop_factor_runs_past_where_it_would_have_stopped(trainer, specs):
    """Without stop_factor the test goes on past the step where stop_factor 4 would have stopped it,
    and records every step up to its end, or up to its first non-finite loss where it stops (whether
    the loss overflows before LR 1e3 depends on the CPU's floating point, so both endings hold)."""
    meta, steps, evals = read(trainer.reference(specs["range_nostop"]))
    smoothed = [float(r["smoothed_loss"]) for r in steps]
    losses = [float(r["train_loss"]) for r in steps]
    would_stop = next(
        i
        for i, (s, b) in enumerate(zip(smoothed, running_best(smoothed)))
        if not math.isfinite(s) or s > 4 * b
    )
    assert math.isfinite(smoothed[would_stop]), (
        "the smoothed loss passed 4 x its best before any non-finite loss"
    )
    assert len(steps) - 1 > would_stop, (
        f"it stopped at step {len(steps) - 1}, where stop_factor 4 stops ({would_stop})"
    )
    assert meta["total_steps"] == 400 and meta["steps"] == len(steps)
    first_bad = next((i for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
    if first_bad is None:
        assert meta["status"] == "completed" and len(steps) == 400
    else:
        assert meta["status"] == "diverged" and first_bad == len(steps) - 1, (
            "it stops at its first non-finite loss"
        )
    assert_complete_files(meta, steps, evals)


def test_non_finite_loss_diverges_a_scheduled_run(trainer, specs):
    meta, steps, evals = read(trainer.reference(specs["blowup"]))
    losses = [float(r["train_loss"]) for r in steps]
    assert meta["status"] == "diverged" and 60 < meta["steps"] < meta["total_steps"]
    assert not math.isfinite(losses[-1]) and all(map(math.isfinite, losses[:-1])), (
        "stops at the first non-finite loss"
    )
    assert_complete_files(meta, steps, evals)


@pytest.mark.parametrize("metric", SELECTION_METRICS)
def test_aggregate_takes_diverged_runs_and_never_picks_them(trainer, specs, tmp_path, metric):
    names = (RANGE_TEST, "blowup", "slow")
    files = [trainer.reference(specs[name]) / "run.json" for name in names]
    steps_table, evals_table, summary = aggregate.aggregate(files, target=1.0)
    summary = summary.set_index("run")
    assert list(summary.index) == list(names)
    assert summary.loc[RANGE_TEST, "status"] == summary.loc["blowup", "status"] == "diverged"
    assert summary.loc["slow", "status"] == "completed"
    # whatever the diverged run's value on this CPU, give it the better one: only its status
    # may keep it from being chosen
    frame = summary.reset_index()
    frame.loc[frame["run"] == "blowup", metric] = summary.loc["slow", metric] / 2
    rows = tuning.tuning_rows(frame, "f", {1.0: "blowup", 2.0: "slow"}, metric)
    assert tuning.select(rows, metric)["run"] == "slow"
    tables = {"steps": steps_table, "evals": evals_table}
    for name in names:
        meta, steps, evals = read(trainer.reference(specs[name]))
        assert (tables["steps"]["run"] == name).sum() == len(steps) == meta["steps"]
        assert (tables["evals"]["run"] == name).sum() == len(evals)
