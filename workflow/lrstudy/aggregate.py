"""Metric aggregation: every run folder into the study's tables, and the choice of the best runs.

    results/tables/steps.csv    run, seed, step, epoch, lr, train_loss, smoothed_loss
    results/tables/evals.csv    run, seed, step, epoch, split, loss, accuracy
    results/tables/summary.csv  one row per run and seed (SUMMARY_FIELDS)
    results/tables/best.csv     the best scheduled runs by a metric's mean over seeds
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from lrstudy.io import atomic_path

SUMMARY_FIELDS = [
    "run", "seed", "kind", "scheduler", "optimizer", "status", "steps", "final_train_loss", "final_valid_loss",
    "best_valid_loss", "final_valid_accuracy", "best_valid_accuracy", "test_loss", "test_accuracy",
    "steps_to_target", "wall_seconds",
]
METRICS = ("final_valid_loss", "best_valid_loss", "test_loss", "final_train_loss")


def summarise(run: dict, steps: pd.DataFrame, evals: pd.DataFrame, target: float) -> dict:
    """One summary row. `final_*` are read at the last evaluation, train loss as its smoothed value."""
    valid = evals[evals["split"] == "valid"].sort_values("step")
    test = evals[evals["split"] == "test"].sort_values("step")
    reached = valid[valid["loss"] <= target]
    last = lambda frame, column: float(frame[column].iloc[-1]) if len(frame) else math.nan  # noqa: E731
    return {
        "run": run["run"],
        "seed": run["seed"],
        "kind": "range_test" if "range_test" in run["spec"] else "scheduled",
        "scheduler": run["scheduler"]["class"] if "range_test" not in run["spec"] else "range_test",
        "optimizer": run["optimizer"]["name"],
        "status": run["status"],
        "steps": run["steps"],
        "final_train_loss": last(steps, "smoothed_loss"),
        "final_valid_loss": last(valid, "loss"),
        "best_valid_loss": float(valid["loss"].min()) if len(valid) else math.nan,
        "final_valid_accuracy": last(valid, "accuracy"),
        "best_valid_accuracy": float(valid["accuracy"].max()) if len(valid) else math.nan,
        "test_loss": last(test, "loss"),
        "test_accuracy": last(test, "accuracy"),
        "steps_to_target": int(reached["step"].iloc[0]) if len(reached) else None,
        "wall_seconds": run["wall_seconds"],
    }


def aggregate(run_files: list[Path], target: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    all_steps, all_evals, rows = [], [], []
    for path in run_files:
        run = json.loads(Path(path).read_text())
        steps = pd.read_csv(Path(path).parent / "steps.csv")
        evals = pd.read_csv(Path(path).parent / "evals.csv")
        rows.append(summarise(run, steps, evals, target))
        for frame, bucket in ((steps, all_steps), (evals, all_evals)):
            bucket.append(frame.assign(run=run["run"], seed=run["seed"]))
    order = lambda frame: frame[["run", "seed"] + [c for c in frame.columns if c not in ("run", "seed")]]  # noqa: E731
    summary = pd.DataFrame(rows, columns=SUMMARY_FIELDS)
    summary["steps_to_target"] = summary["steps_to_target"].astype("Int64")
    return order(pd.concat(all_steps, ignore_index=True)), order(pd.concat(all_evals, ignore_index=True)), summary


def choose_best(summary: pd.DataFrame, metric: str, count: int) -> pd.DataFrame:
    """The `count` scheduled runs with the lowest mean `metric` over seeds.

    Range tests never qualify, nor does a run any of whose seeds diverged or has no finite value.
    Ties are broken by the run's name, so the choice is deterministic.
    """
    if metric not in METRICS:
        raise ValueError(f"best metric {metric!r}; choose one of {', '.join(METRICS)}")
    scheduled = summary[summary["kind"] == "scheduled"]
    bad = set(scheduled.loc[(scheduled["status"] != "completed") | ~scheduled[metric].map(math.isfinite), "run"])
    stats = (
        scheduled[~scheduled["run"].isin(bad)]
        .groupby("run")[metric]
        .agg(mean="mean", std="std", min="min", max="max", seeds="count")
        .reset_index()
        .sort_values(["mean", "run"], kind="stable")
        .head(count)
    )
    stats.insert(0, "rank", range(1, len(stats) + 1))
    stats.insert(2, "metric", metric)
    return stats.reset_index(drop=True)


def write(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Aggregate run folders into the study's tables.")
    parser.add_argument("run_files", nargs="+", type=Path, help="the run.json of every run and seed")
    parser.add_argument("--out", required=True, type=Path, help="tables folder")
    parser.add_argument("--target", type=float, required=True, help="valid-loss target for steps_to_target")
    parser.add_argument("--best-metric", default="final_valid_loss", choices=METRICS)
    parser.add_argument("--best-count", type=int, default=3)
    args = parser.parse_args(argv)
    steps, evals, summary = aggregate(args.run_files, args.target)
    best = choose_best(summary, args.best_metric, args.best_count)
    for name, frame in (("steps", steps), ("evals", evals), ("summary", summary), ("best", best)):
        write(frame, args.out / f"{name}.csv")
    print(summary.to_string(index=False))
    print(best.to_string(index=False))


if __name__ == "__main__":
    main()
