"""comparison.csv: 95 % t-intervals over seeds and the paired t-test against #1, on known answers
and recomputed independently from a real study's evals.csv."""

import math
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lrstudy import aggregate

from .conftest import raw_config, snakemake_cmd


def summary_of(losses: dict, accuracy=0.9, status="completed") -> pd.DataFrame:
    """A summary table: run -> final valid loss per seed (seed i is the i-th value)."""
    rows = [
        {
            "run": run,
            "seed": seed,
            "kind": "scheduled",
            "status": status,
            "final_valid_loss": loss,
            "test_accuracy": accuracy,
            "steps_to_target": 100 + seed,
        }
        for run, values in losses.items()
        for seed, loss in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_t_interval_is_scipys():
    values = np.array([0.31, 0.27, 0.35, 0.29, 0.30])
    mean, sd, low, high = aggregate.t_interval(values)
    want = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert (mean, sd) == pytest.approx((values.mean(), values.std(ddof=1)), rel=1e-12)
    assert (low, high) == pytest.approx(want, rel=1e-12)


def test_paired_p_is_scipys_paired_test_not_an_unpaired_one():
    a = pd.Series([0.30, 0.40, 0.50, 0.60])
    b = pd.Series([0.32, 0.41, 0.53, 0.61])  # always a bit worse: paired, a clear difference
    assert aggregate.paired_p(b, a) == pytest.approx(stats.ttest_rel(b, a).pvalue, rel=1e-12)
    assert aggregate.paired_p(b, a) < 0.05 < stats.ttest_ind(b, a).pvalue


def test_a_clearly_better_run_is_not_tied():
    good = [0.10, 0.12, 0.11, 0.13, 0.12]
    table = aggregate.compare(
        summary_of({"good": good, "bad": [v + 0.2 + 0.01 * i for i, v in enumerate(good)]}),
        "final_valid_loss",
    )
    rows = table.set_index("run")
    assert rows.loc["good", "rank"] == 1 and pd.isna(rows.loc["good", "p_value"])
    assert rows.loc["bad", "p_value"] < 0.05 and not rows.loc["bad", "tied_with_best"]


def test_two_identical_runs_are_tied():
    same = [0.10, 0.12, 0.11]
    rows = aggregate.compare(summary_of({"a": same, "b": same}), "final_valid_loss").set_index(
        "run"
    )
    assert rows.loc["b", "p_value"] == 1.0 and rows.loc["b", "tied_with_best"]


def test_noise_alone_is_tied():
    # b differs from a by +-0.01 around zero: no evidence of a difference
    a = [0.10, 0.12, 0.11, 0.13, 0.12]
    b = [v + d for v, d in zip(a, [0.01, -0.01, 0.012, -0.008, -0.003])]
    rows = aggregate.compare(summary_of({"a": a, "b": b}), "final_valid_loss").set_index("run")
    assert rows.loc["b", "p_value"] > 0.05 and rows.loc["b", "tied_with_best"]


def test_one_seed_gives_no_interval_and_says_so():
    rows = aggregate.compare(summary_of({"a": [0.1], "b": [0.2]}), "final_valid_loss").set_index(
        "run"
    )
    for run in ("a", "b"):
        assert math.isnan(rows.loc[run, "ci_low"]) and math.isnan(rows.loc[run, "ci_high"])
        assert "1 seed: no interval" in rows.loc[run, "note"]
    assert math.isnan(rows.loc["b", "p_value"]) and pd.isna(rows.loc["b", "tied_with_best"])


def test_a_collapsed_run_is_listed_but_never_ranked_or_tied():
    summary = pd.concat(
        [
            summary_of({"a": [0.10, 0.12, 0.11]}),
            summary_of({"dead": [0.10, 0.12, 0.11]}, status="collapsed"),
        ]
    )
    rows = aggregate.compare(summary, "final_valid_loss").set_index("run")
    assert pd.isna(rows.loc["dead", "rank"]) and not rows.loc["dead", "tied_with_best"]
    assert rows.loc["dead", "status"] == "collapsed"


@pytest.mark.slow
def test_comparison_recomputed_from_evals_csv(workflow_copy):
    """The tiny study with three seeds; every interval and p-value of comparison.csv recomputed from
    the runs' own evals.csv with scipy's t.interval and ttest_rel."""
    folder = workflow_copy(raw_config(seeds=[0, 1, 2]))
    proc = subprocess.run(
        snakemake_cmd("--cores", "2"), cwd=folder, capture_output=True, text=True, timeout=1200
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    runs = folder / "results" / "runs"
    comparison = pd.read_csv(folder / "results" / "tables" / "comparison.csv").set_index("run")
    final = {}
    for path in sorted(runs.glob("*/seed*/evals.csv")):
        run, seed = path.parent.parent.name, int(path.parent.name.removeprefix("seed"))
        evals = pd.read_csv(path)
        if run in comparison.index:
            last = evals[evals["split"] == "valid"].sort_values("step").iloc[-1]
            test = evals[evals["split"] == "test"].sort_values("step").iloc[-1]
            final[run, seed] = (last["loss"], test["accuracy"])
    assert set(comparison.index) == {run for run, _ in final}
    top = comparison.index[0]
    for run, row in comparison.iterrows():
        loss = np.array([final[run, s][0] for s in (0, 1, 2)])
        accuracy = np.array([final[run, s][1] for s in (0, 1, 2)])
        low, high = stats.t.interval(0.95, len(loss) - 1, loc=loss.mean(), scale=stats.sem(loss))
        assert (row["n_seeds"], row["mean"], row["ci_low"], row["ci_high"]) == pytest.approx(
            (3, loss.mean(), low, high), rel=1e-9
        )
        low, high = stats.t.interval(0.95, 2, loc=accuracy.mean(), scale=stats.sem(accuracy))
        assert (row["test_accuracy_ci_low"], row["test_accuracy_ci_high"]) == pytest.approx(
            (low, high), rel=1e-9
        )
        if run != top:
            best = np.array([final[top, s][0] for s in (0, 1, 2)])
            assert row["p_value"] == pytest.approx(stats.ttest_rel(loss, best).pvalue, rel=1e-9)
            assert bool(row["tied_with_best"]) == (row["p_value"] >= 0.05)
    best = pd.read_csv(folder / "results" / "tables" / "best.csv")
    assert best["run"].iloc[0] == top and best["tied_with_best"].iloc[1:].tolist() == [
        bool(comparison.loc[r, "tied_with_best"]) for r in best["run"].iloc[1:]
    ]

    # the same run trained one seed per job gives the same bytes as inside its run's job
    per_seed = workflow_copy(
        raw_config(seeds=[0, 1, 2], train_jobs="per_seed"), folder.parent / "per_seed"
    )
    target = "results/runs/step/seed1/steps.csv"
    proc = subprocess.run(
        snakemake_cmd("--cores", "2", target),
        cwd=per_seed,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (per_seed / target).read_bytes() == (folder / target).read_bytes()
    assert (per_seed / "results" / "logs" / "train" / "step" / "seed1.log").is_file()
