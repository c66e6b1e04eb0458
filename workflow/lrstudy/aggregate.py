"""Metric aggregation: every run folder into the study's tables, and the choice of the best runs.

results/tables/steps.csv    run, seed, step, epoch, lr, train_loss, smoothed_loss
results/tables/evals.csv    run, seed, step, epoch, split, loss, accuracy
results/tables/summary.csv  one row per run and seed (SUMMARY_FIELDS)
results/tables/best.csv     the best scheduled runs by a metric's mean over seeds
results/tables/comparison.csv  every scheduled run against the #1: 95 % t-intervals over seeds
                            and a paired t-test (seeds pair runs: same initial weights,
                            same batches)
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from lrstudy.io import atomic_path

SUMMARY_FIELDS = [
    "run",
    "seed",
    "kind",
    "scheduler",
    "optimizer",
    "status",
    "steps",
    "final_train_loss",
    "final_valid_loss",
    "best_valid_loss",
    "final_valid_accuracy",
    "best_valid_accuracy",
    "test_loss",
    "test_accuracy",
    "steps_to_target",
    "wall_seconds",
]
METRICS = ("final_valid_loss", "best_valid_loss", "test_loss", "final_train_loss")


def summarise(run: dict, steps: pd.DataFrame, evals: pd.DataFrame, target: float) -> dict:
    """One summary row. `final_*` are read at the last evaluation, train loss as its smoothed
    value."""
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


def aggregate(
    run_files: list[Path], target: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    all_steps, all_evals, rows = [], [], []
    for path in run_files:
        run = json.loads(Path(path).read_text())
        steps = pd.read_csv(Path(path).parent / "steps.csv")
        evals = pd.read_csv(Path(path).parent / "evals.csv")
        rows.append(summarise(run, steps, evals, target))
        for frame, bucket in ((steps, all_steps), (evals, all_evals)):
            bucket.append(frame.assign(run=run["run"], seed=run["seed"]))
    order = lambda frame: frame[
        ["run", "seed"] + [c for c in frame.columns if c not in ("run", "seed")]
    ]  # noqa: E731
    summary = pd.DataFrame(rows, columns=SUMMARY_FIELDS)
    summary["steps_to_target"] = summary["steps_to_target"].astype("Int64")
    return (
        order(pd.concat(all_steps, ignore_index=True)),
        order(pd.concat(all_evals, ignore_index=True)),
        summary,
    )


def eligible(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Scheduled runs every seed of which completed with a finite `metric`: the ones that may be
    best. Range tests never qualify, nor a run any seed of which diverged or collapsed."""
    scheduled = summary[summary["kind"] == "scheduled"]
    bad = set(
        scheduled.loc[
            (scheduled["status"] != "completed") | ~scheduled[metric].map(math.isfinite), "run"
        ]
    )
    return scheduled[~scheduled["run"].isin(bad)]


def choose_best(summary: pd.DataFrame, metric: str, count: int) -> pd.DataFrame:
    """The `count` eligible runs with the lowest mean `metric` over seeds; ties in the mean are
    broken by the run's name, so the choice is deterministic."""
    if metric not in METRICS:
        raise ValueError(f"best metric {metric!r}; choose one of {', '.join(METRICS)}")
    best = (
        eligible(summary, metric)
        .groupby("run")[metric]
        .agg(mean="mean", std="std", min="min", max="max", seeds="count")
        .reset_index()
        .sort_values(["mean", "run"], kind="stable")
        .head(count)
    )
    best.insert(0, "rank", range(1, len(best) + 1))
    best.insert(2, "metric", metric)
    return best.reset_index(drop=True)


def t_interval(values) -> tuple[float, float, float, float]:
    """(mean, sd, ci_low, ci_high): the 95 % t-interval mean +- t(0.975, n-1) sd / sqrt(n);
    NaN bounds (and sd) with fewer than two values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (math.nan,) * 4
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(values) - 1)) * sd / math.sqrt(len(values))
    return mean, sd, mean - half, mean + half


def paired_p(ours: pd.Series, best: pd.Series) -> float:
    """Two-sided p of scipy's paired t-test over the seeds both runs have (finite values); 1.0 where
    every difference is zero (the runs are the same), NaN with fewer than two shared seeds."""
    pairs = pd.concat([ours, best], axis=1, join="inner").dropna()
    pairs = pairs[np.isfinite(pairs).all(axis=1)]
    if len(pairs) < 2:
        return math.nan
    if (pairs.iloc[:, 0] == pairs.iloc[:, 1]).all():
        return 1.0
    return float(stats.ttest_rel(pairs.iloc[:, 0], pairs.iloc[:, 1]).pvalue)


COMPARISON_FIELDS = [
    "rank",
    "run",
    "status",
    "n_seeds",
    "metric",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "test_accuracy_mean",
    "test_accuracy_ci_low",
    "test_accuracy_ci_high",
    "median_steps_to_target",
    "p_value",
    "tied_with_best",
    "note",
]


def compare(summary: pd.DataFrame, metric: str, alpha: float = 0.05) -> pd.DataFrame:
    """One row per scheduled run, ordered by mean `metric`: its 95 % t-intervals and a paired t-test
    against #1 (the best by mean, `choose_best`); tied_with_best where p >= alpha."""
    scheduled = summary[summary["kind"] == "scheduled"]
    ranked = choose_best(summary, metric, len(scheduled))
    top = ranked["run"].iloc[0] if len(ranked) else None
    by_seed = scheduled.pivot_table(
        index="seed", columns="run", values=metric, aggfunc="first", dropna=False
    )
    rows = []
    for run, group in scheduled.groupby("run", sort=False):
        mean, sd, low, high = t_interval(group[metric])
        acc_mean, _, acc_low, acc_high = t_interval(group["test_accuracy"])
        statuses = group["status"].value_counts()
        p = math.nan if run == top or top is None else paired_p(by_seed[run], by_seed[top])
        reached = group["steps_to_target"].astype("Float64").fillna(np.inf)
        median_steps = float(np.median(reached)) if len(reached) else math.inf
        notes = [f"{len(group)} seed: no interval or test" if len(group) < 2 else ""]
        if statuses.index.tolist() != ["completed"]:
            notes.append(", ".join(f"{n} {s}" for s, n in statuses.items()))
        rows.append(
            {
                "run": run,
                "status": statuses.index[0] if len(statuses) == 1 else "mixed",
                "n_seeds": len(group),
                "metric": metric,
                "mean": mean,
                "std": sd,
                "ci_low": low,
                "ci_high": high,
                "test_accuracy_mean": acc_mean,
                "test_accuracy_ci_low": acc_low,
                "test_accuracy_ci_high": acc_high,
                "median_steps_to_target": median_steps if math.isfinite(median_steps) else None,
                "p_value": p,
                "note": "; ".join(n for n in notes if n),
                "tied_with_best": bool(run in set(ranked["run"]) and run != top and p >= alpha)
                if math.isfinite(p)
                else None,
            }
        )
    frame = pd.DataFrame(rows)
    if not len(frame):
        return pd.DataFrame(columns=COMPARISON_FIELDS)
    frame["rank"] = frame["run"].map(dict(zip(ranked["run"], ranked["rank"]))).astype("Int64")
    frame["tied_with_best"] = frame["tied_with_best"].astype("boolean")
    return frame.sort_values(["rank", "mean", "run"], na_position="last", kind="stable")[
        COMPARISON_FIELDS
    ]


def mark_ties(best: pd.DataFrame, comparison: pd.DataFrame) -> pd.DataFrame:
    """best.csv with each run's p_value and tied_with_best from the comparison."""
    columns = comparison.set_index("run")[["p_value", "tied_with_best"]]
    return best.join(columns, on="run")


def write(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Aggregate run folders into the study's tables.")
    parser.add_argument(
        "run_files", nargs="+", type=Path, help="the run.json of every run and seed"
    )
    parser.add_argument("--out", required=True, type=Path, help="tables folder")
    parser.add_argument(
        "--target", type=float, required=True, help="valid-loss target for steps_to_target"
    )
    parser.add_argument("--best-metric", default="final_valid_loss", choices=METRICS)
    parser.add_argument("--best-count", type=int, default=3)
    args = parser.parse_args(argv)
    steps, evals, summary = aggregate(args.run_files, args.target)
    comparison = compare(summary, args.best_metric)
    best = mark_ties(choose_best(summary, args.best_metric, args.best_count), comparison)
    tables = {
        "steps": steps,
        "evals": evals,
        "summary": summary,
        "best": best,
        "comparison": comparison,
    }
    for name, frame in tables.items():
        write(frame, args.out / f"{name}.csv")
    print(summary.to_string(index=False))
    print(comparison.to_string(index=False))


if __name__ == "__main__":
    main()
