"""Metric aggregation: every run folder into the study's tables, the tuning and the verdict.

results/tables/steps.csv    run, seed, step, epoch, lr, train_loss, smoothed_loss
results/tables/evals.csv    run, seed, step, epoch, split, loss, accuracy
results/tables/summary.csv  one row per run and seed (SUMMARY_FIELDS)
results/tables/tuning.csv   every family's grid points on the tuning seeds, the chosen one marked
results/tables/verdict.csv  every family at its chosen setting on the confirmation seeds against
                            #1, with its verdict word (lrstudy.verdict)
results/tables/best.csv     the verdict's first `best_count` families (the best section's runs)
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from lrstudy import faults, io, verdict, verdict_page
from lrstudy.families import confirmation_run
from lrstudy.io import atomic_path
from lrstudy.layout import format_value

SUMMARY_FIELDS = [
    "run",
    "seed",
    "family",
    "multiplier",
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


def summarise(run: dict, steps: pd.DataFrame, evals: pd.DataFrame, target: float) -> dict:
    """One summary row. `final_*` are read at the last evaluation, train loss as its smoothed
    value."""
    valid = evals[evals["split"] == "valid"].sort_values("step")
    test = evals[evals["split"] == "test"].sort_values("step")
    reached = valid[valid["loss"] <= target]
    last = lambda frame, column: float(frame[column].iloc[-1]) if len(frame) else math.nan  # noqa: E731
    tuning = run["spec"].get("tuning") or {}
    return {
        "run": run["run"],
        "seed": run["seed"],
        "family": tuning.get("family"),
        "multiplier": tuning.get("multiplier"),
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
        run = faults.read_record(path)  # a missing or mangled file stops here, named
        steps = faults.read_table(Path(path).parent / "steps.csv")
        evals = faults.read_table(Path(path).parent / "evals.csv")
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


def momentum_ranges(steps: pd.DataFrame) -> dict[str, str]:
    """Each run's momentum as trained (steps.csv): `0.9`, or `0.85-0.95` where it was cycled."""
    out = {}
    for run, values in steps.groupby("run")["momentum"]:
        values = values.dropna()
        if not len(values):
            out[run] = ""
        elif values.max() - values.min() > 1e-12:
            low, high = (format_value(round(float(v), 3)) for v in (values.min(), values.max()))
            out[run] = f"{low}-{high}"
        else:
            out[run] = format_value(round(float(values.iloc[0]), 3))
    return out


BEST_FIELDS = [
    "rank",
    "family",
    "run",
    "multiplier",
    "mean",
    "ci_low",
    "ci_high",
    "verdict",
    "p_rank1",
]


def verdict_tables(steps, summary, selection_files, settings: dict, test_size: int, best_count):
    """tuning.csv, verdict.csv and best.csv (the `best_count` first families of the verdict, at
    their confirmation runs) from the families' selections and the summary."""
    selections = {}
    for path in selection_files:
        selection = json.loads(Path(path).read_text())
        selections[selection["family"]] = selection
    runs = {family: confirmation_run(family) for family in selections}
    table = verdict.verdict_table(summary, selections, runs, settings, test_size)
    table["momentum"] = table["run"].map(momentum_ranges(steps))
    return verdict.tuning_table(selections), table, table.head(best_count)[BEST_FIELDS]


def write(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Aggregate run folders into the study's tables.")
    parser.add_argument(
        "run_files", nargs="+", type=Path, help="the run.json of every run and seed"
    )
    parser.add_argument(
        "--selections",
        nargs="+",
        type=Path,
        required=True,
        help="every family's tuning selection (lrstudy.verdict select)",
    )
    parser.add_argument(
        "--data-manifest",
        type=Path,
        required=True,
        help="the prepared data's manifest (its test split's size)",
    )
    parser.add_argument(
        "--verdict-json",
        required=True,
        help="config `verdict` and `metric` (the selection metric) as JSON",
    )
    parser.add_argument("--out", required=True, type=Path, help="tables folder")
    parser.add_argument(
        "--target", type=float, required=True, help="valid-loss target for steps_to_target"
    )
    parser.add_argument("--best-count", type=int, default=3)
    args = parser.parse_args(argv)
    steps, evals, summary = aggregate(args.run_files, args.target)
    test_size = json.loads(args.data_manifest.read_text())["sizes"]["test"]
    tuning, table, best = verdict_tables(
        steps, summary, args.selections, json.loads(args.verdict_json), test_size, args.best_count
    )
    tables = {
        "steps": steps,
        "evals": evals,
        "summary": summary,
        "tuning": tuning,
        "verdict": table,
        "best": best,
    }
    for name, frame in tables.items():
        write(frame, args.out / f"{name}.csv")
    io.write_text(args.out / "verdict.html", verdict_page.html_page(table, tuning))
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(tuning.to_string(index=False))
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
