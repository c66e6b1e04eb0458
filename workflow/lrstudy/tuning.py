"""Tuning: each family's grid points on the tuning seeds, its setting chosen on validation data
alone, and the grid extended where the choice sits at its edge.

    python -m lrstudy.tuning results/runs/tune-step-x*/seed*/run.json --family step \
        --metric final_valid_loss --extensions-left 2 --out results/tuning/step/round0.json

A grid point (multiplier) is eligible when every tuning seed completed with a finite metric; the
chosen one has the lowest mean over the tuning seeds (the smaller multiplier of equal means). The
test split is never read. Where the choice is the largest (smallest) point trained and extensions
are left, `extend` names the next point beyond, one more factor of the grid's ratio: the workflow
trains it on the tuning seeds and chooses again (Snakemake checkpoints, workflow/rules/train.smk).
A choice next to a point that failed (a seed diverged or collapsed) is flagged.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from lrstudy.io import write_json
from lrstudy.layout import BEST_METRIC, CONFIDENCE

TUNING_FIELDS = [
    "family",
    "run",
    "multiplier",
    "also_changes",
    "seeds",
    "n_seeds",
    "mean",  # mean_<metric>: mean_final_valid_loss by default
    "ci_low",
    "ci_high",
    "status",
    "eligible",
    "selected",
]


def t_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high) of scipy's t-interval over the finite values (NaN bounds below two)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if len(values) < 2 or np.all(values == values[0]):
        return (mean, mean, mean) if len(values) > 1 else (mean, math.nan, math.nan)
    low, high = stats.t.interval(confidence, len(values) - 1, mean, stats.sem(values))
    return mean, float(low), float(high)


def mean_column(metric: str) -> str:
    return f"mean_{metric}"


def tuning_rows(summary: pd.DataFrame, family: str, runs: dict, metric: str) -> list[dict]:
    """One row per grid point: {multiplier: run} of the family, its seeds' mean `metric`."""
    rows = []
    for multiplier, run in sorted(runs.items()):
        group = summary[summary["run"] == run].sort_values("seed")
        values = group[metric].to_numpy(dtype=float)
        mean, low, high = t_interval(values)
        statuses = sorted(set(group["status"]))
        eligible = bool(len(group) and statuses == ["completed"] and np.isfinite(values).all())
        rows.append(
            {
                "family": family,
                "run": run,
                "multiplier": float(multiplier),
                "seeds": " ".join(str(s) for s in group["seed"]),
                "n_seeds": len(group),
                mean_column(metric): mean,
                "ci_low": low,
                "ci_high": high,
                "status": "/".join(statuses),
                "eligible": eligible,
            }
        )
    return rows


def select(rows: list[dict], metric: str, extensions_left: int = 0) -> dict:
    """The chosen grid point: the lowest mean of the eligible ones (then the smaller multiplier);
    where none is eligible, the lowest finite mean, flagged. Marks `selected` on the rows; says
    where the grid is to be extended (`extend`) and whether a neighbour of the pick failed."""
    column = mean_column(metric)
    rows = sorted(rows, key=lambda r: r["multiplier"])
    finite = [r for r in rows if math.isfinite(r[column])]
    pool = [r for r in finite if r["eligible"]] or finite or rows
    order = lambda r: (r[column] if math.isfinite(r[column]) else math.inf, r["multiplier"])  # noqa: E731
    chosen = min(pool, key=order)
    for row in rows:
        row["selected"] = row is chosen
    at = rows.index(chosen)
    neighbours = rows[max(at - 1, 0) : at] + rows[at + 1 : at + 2]
    return {
        "family": chosen["family"],
        "metric": metric,
        "multiplier": chosen["multiplier"],
        "run": chosen["run"],
        "mean": chosen[column],
        "eligible": chosen["eligible"],
        "trials": len(rows),
        "at_grid_edge": at in (0, len(rows) - 1),
        "next_to_failed": any(not r["eligible"] for r in neighbours),
        "extend": extension([r["multiplier"] for r in rows], at, chosen, extensions_left),
        "rows": rows,
    }


def extension(multipliers: list[float], at: int, chosen: dict, left: int) -> float | None:
    """The point beyond the grid's edge where the pick `at` sits at it (and completed): one more
    factor of the ratio between the edge and its neighbour (the grid being geometric); None
    where the pick is inside, failed, or no extension is left."""
    if left <= 0 or not chosen["eligible"] or len(multipliers) < 2:
        return None
    if at == len(multipliers) - 1:
        return multipliers[-1] * multipliers[-1] / multipliers[-2]
    if at == 0:
        return multipliers[0] * multipliers[0] / multipliers[1]
    return None


def tuning_table(selections: dict[str, dict], also_changes: dict[str, str]) -> pd.DataFrame:
    rows = [
        {**row, "also_changes": also_changes.get(family, "")}
        for family, selection in selections.items()
        for row in selection["rows"]
    ]
    metric = next(iter(selections.values()))["metric"] if selections else BEST_METRIC
    fields = [mean_column(metric) if f == "mean" else f for f in TUNING_FIELDS]
    return pd.DataFrame(rows, columns=fields)


def main(argv=None) -> None:
    from lrstudy.aggregate import summarise_runs

    parser = argparse.ArgumentParser(description="Choose a family's setting on its tuning runs.")
    parser.add_argument("run_files", nargs="+", type=Path, help="run.json of every tuning run")
    parser.add_argument("--family", required=True)
    parser.add_argument("--metric", required=True)
    parser.add_argument(
        "--extensions-left", type=int, default=0, help="grid points that may still be added"
    )
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    summary = summarise_runs(args.run_files)  # the run.json read, checked, once
    grid = summary.groupby("multiplier")["run"].first().to_dict()  # {multiplier: run}
    rows = tuning_rows(summary, args.family, grid, args.metric)
    selection = select(rows, args.metric, args.extensions_left)
    write_json(args.out, selection, allow_nan=True)
    print(json.dumps({k: v for k, v in selection.items() if k != "rows"}))


if __name__ == "__main__":
    main()
