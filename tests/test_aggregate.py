"""Aggregation: the summary's numbers on constructed curves, and the choice of the best runs."""

import json
import math

import pandas as pd
import pytest

from lrstudy import aggregate


def write_run(folder, run, seed, valid, status="completed", kind="scheduled", eval_every=10):
    """A run folder whose valid loss follows `valid` (one value per evaluation)."""
    out = folder / run / f"seed{seed}"
    out.mkdir(parents=True)
    n = eval_every * (len(valid) - 1)
    steps = pd.DataFrame(
        {
            "step": range(n),
            "epoch": 0,
            "lr": 0.1,
            "train_loss": 1.0,
            "smoothed_loss": [1.0 - i / (2 * n) for i in range(n)],
        }
    )
    evals = pd.DataFrame(
        [
            {
                "step": i * eval_every,
                "epoch": 0,
                "split": split,
                "loss": v + (0.05 if split == "test" else 0),
                "accuracy": 1 - v / 3,
            }
            for i, v in enumerate(valid)
            for split in ("valid", "test")
        ]
    )
    steps.to_csv(out / "steps.csv", index=False)
    evals.to_csv(out / "evals.csv", index=False)
    spec = {"range_test": {}} if kind == "range_test" else {"scheduler": {}}
    run_json = {
        "run": run,
        "seed": seed,
        "status": status,
        "steps": n,
        "wall_seconds": 1.5,
        "spec": spec,
        "scheduler": {"class": "LambdaLR" if kind == "range_test" else "StepLR"},
        "optimizer": {"name": "SGD"},
    }
    (out / "run.json").write_text(json.dumps(run_json))
    return out / "run.json"


def test_summary_reads_the_curves(tmp_path):
    path = write_run(tmp_path, "a", 0, [2.3, 1.2, 0.25, 0.4, 0.35])
    _, evals, summary = aggregate.aggregate([path], target=0.3)
    row = summary.iloc[0]
    assert row["final_valid_loss"] == 0.35 and row["best_valid_loss"] == 0.25
    assert (
        row["test_loss"] == pytest.approx(0.4) and row["steps_to_target"] == 20
    )  # first eval <= 0.3
    assert row["final_train_loss"] == pytest.approx(1.0 - 39 / 80)
    assert row["final_valid_accuracy"] == pytest.approx(1 - 0.35 / 3)
    assert set(evals["run"]) == {"a"} and len(evals) == 10


def test_steps_to_target_is_empty_when_never_reached(tmp_path):
    path = write_run(tmp_path, "a", 0, [2.3, 1.2, 0.9])
    assert pd.isna(aggregate.aggregate([path], target=0.3)[2].iloc[0]["steps_to_target"])


def test_best_uses_the_mean_over_seeds_and_skips_range_tests_and_diverged(tmp_path):
    paths = []
    # `lucky` has the single best seed but the worse mean; `steady` wins on the mean.
    for seed, v in enumerate([0.1, 0.5, 0.5]):
        paths.append(write_run(tmp_path, "lucky", seed, [2.0, v]))
    for seed in range(3):
        paths.append(write_run(tmp_path, "steady", seed, [2.0, 0.3]))
        paths.append(write_run(tmp_path, "range", seed, [2.0, 0.01], kind="range_test"))
        paths.append(
            write_run(
                tmp_path,
                "blown",
                seed,
                [2.0, 0.05 if seed else math.nan],
                status="diverged" if seed == 0 else "completed",
            )
        )
        paths.append(write_run(tmp_path, "tie_b", seed, [2.0, 0.6]))
        paths.append(write_run(tmp_path, "tie_a", seed, [2.0, 0.6]))
    summary = aggregate.aggregate(paths, target=0.3)[2]
    best = aggregate.choose_best(summary, "final_valid_loss", 3)
    assert best["run"].tolist() == ["steady", "lucky", "tie_a"]  # ties by name
    assert best["mean"].tolist() == pytest.approx([0.3, 1.1 / 3, 0.6])
    assert best["seeds"].tolist() == [3, 3, 3] and best["rank"].tolist() == [1, 2, 3]
    assert best.loc[1, "min"] == 0.1 and best.loc[1, "max"] == 0.5


def test_unknown_metric_is_refused(tmp_path):
    summary = aggregate.aggregate([write_run(tmp_path, "a", 0, [2.0, 1.0])], target=0.3)[2]
    with pytest.raises(ValueError, match="best metric 'accuracy'"):
        aggregate.choose_best(summary, "accuracy", 3)
