"""Metric aggregation: every run folder into the study's tables, the tuning and the verdict.

results/tables/steps.csv    run, seed, step, epoch, lr, train_loss, smoothed_loss
results/tables/evals.csv    run, seed, step, epoch, split, loss, accuracy
results/tables/summary.csv  one row per run and seed (SUMMARY_FIELDS)
results/tables/tuning.csv   every family's grid points on the tuning seeds, the chosen one marked
results/tables/verdict.csv  every family at its chosen setting on the confirmation seeds against
                            tuning's pick, with its verdict word (lrstudy.verdict)
results/tables/best.csv     the `best_count` first families by rank (the best section's runs)
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from lrstudy import faults, io, tuning, verdict, verdict_page
from lrstudy.families import CYCLED, confirmation_run
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
    "chance_test_loss",
    "chance_test_accuracy",
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
    chance = (run.get("chance") or {}).get("test") or {}
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
        "chance_test_loss": chance.get("loss"),
        "chance_test_accuracy": chance.get("accuracy"),
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
    "could_be_best",
]


def summarise_runs(run_files) -> pd.DataFrame:
    """The summary table alone of the run folders of `run_files`."""
    return aggregate(run_files, target=math.inf)[2]


def read_selections(paths) -> dict[str, dict]:
    """{family: its tuning selection} from the select stage's files."""
    selections = {}
    for path in paths:
        selection = json.loads(Path(path).read_text())
        selections[selection["family"]] = selection
    return selections


def also_changes(differences: dict[str, list[str]], momentum: dict[str, str]) -> dict[str, str]:
    """Each family's `also_changes`: how it trains other than the families' optimizer beyond its
    schedule (lrstudy.families.differences), the cycled momentum with the range it trained at."""
    out = {}
    for family, parts in differences.items():
        cycled = momentum.get(confirmation_run(family), "")
        out[family] = "; ".join(f"{CYCLED} {cycled}" if p == CYCLED else p for p in parts)
    return out


def verdict_tables(steps, summary, selection_files, settings: dict, test_size: int, best_count):
    """tuning.csv, verdict.csv and best.csv (the `best_count` first families by rank, at their
    confirmation runs) from the families' selections and the summary."""
    selections = read_selections(selection_files)
    runs = {family: confirmation_run(family) for family in selections}
    momentum = momentum_ranges(steps)
    changes = also_changes(settings.get("differences", {}), momentum)
    table = verdict.verdict_table(summary, selections, runs, settings, test_size, changes)
    table["momentum"] = table["run"].map(momentum)
    return tuning.tuning_table(selections, changes), table, table.head(best_count)[BEST_FIELDS]


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
        help="every family's tuning selection (lrstudy.tuning)",
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
        help="config `verdict`, its looks and each family's differences, as JSON",
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
