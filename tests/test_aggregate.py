"""Aggregation: the summary's numbers on constructed curves, and a family's choice on them."""

import json
import math

import pandas as pd
import pytest

from lrstudy import aggregate, tuning


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


def test_the_setting_is_chosen_on_the_mean_over_seeds_never_a_diverged_one(tmp_path):
    """A family's grid points as run folders, through aggregate's summary to the selection:
    `lucky` has the single best seed but the worse mean; `blown` the best mean of the seeds that
    finished, but one diverged; `tie_a`/`tie_b` equal means, the smaller multiplier first."""
    paths, grid = [], {0.5: "steady", 1.0: "lucky", 2.0: "blown", 4.0: "tie_b", 0.25: "tie_a"}
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
        paths.append(write_run(tmp_path, "tie_b", seed, [2.0, 0.3]))
        paths.append(write_run(tmp_path, "tie_a", seed, [2.0, 0.3]))
    summary = aggregate.aggregate(paths, target=0.3)[2]
    rows = tuning.tuning_rows(summary, "f", dict(sorted(grid.items())), "final_valid_loss")
    by_run = {row["run"]: row for row in rows}
    assert by_run["lucky"]["mean_final_valid_loss"] == pytest.approx(1.1 / 3)
    assert by_run["steady"]["seeds"] == "0 1 2" and by_run["steady"]["n_seeds"] == 3
    assert not by_run["blown"]["eligible"] and by_run["blown"]["status"] == "completed/diverged"
    chosen = tuning.select(rows, "final_valid_loss")
    assert chosen["run"] == "tie_a" and chosen["multiplier"] == 0.25 and chosen["at_grid_edge"]
    assert [row["run"] for row in rows if row["selected"]] == ["tie_a"]
