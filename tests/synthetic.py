"""Synthetic run folders and summaries for the verdict's tests: known numbers, no training.

A run folder is what a training job leaves (run.json, steps.csv, evals.csv), with a final valid
loss and test numbers chosen by the test; a summary is aggregate.summarise's table of such runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

STEPS = 20  # steps of a synthetic run; evaluations at 0, 10 and 20
CHANCE = (2.3, 0.1)  # the test split's (loss, accuracy) of a model that learned nothing


def write_run(
    root: Path,
    run: str,
    seed: int,
    valid: float,
    test: tuple[float, float] = (0.5, 0.8),
    status: str = "completed",
    tuning: dict | None = None,
    chance: tuple[float, float] = CHANCE,
) -> Path:
    """A completed run folder under root/<run>/seed<seed>/ whose final valid loss is `valid` and
    final test (loss, accuracy) is `test`; returns its run.json."""
    out = Path(root) / run / f"seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    steps = pd.DataFrame(
        {
            "step": range(STEPS),
            "epoch": 0,
            "lr": 0.1,
            "momentum": 0.0,
            "train_loss": 1.0,
            "smoothed_loss": np.linspace(2.0, 1.0, STEPS),
        }
    )
    evals = [
        {"step": step, "epoch": 0, "split": split, "loss": loss, "accuracy": accuracy}
        for step, scale in ((0, 4.0), (10, 2.0), (STEPS, 1.0))
        for split, loss, accuracy in (
            ("valid", valid * scale, 0.9 / scale),
            ("test", test[0] * scale, test[1] / scale),
        )
    ]
    steps.to_csv(out / "steps.csv", index=False)
    pd.DataFrame(evals).to_csv(out / "evals.csv", index=False)
    spec = {"scheduler": {"class": "StepLR", "kwargs": {}}}
    if tuning:
        spec["tuning"] = tuning
    record = {
        "run": run,
        "seed": seed,
        "status": status,
        "steps": STEPS,
        "wall_seconds": 1.0,
        "spec": spec,
        "scheduler": {"class": "StepLR"},
        "optimizer": {"name": "SGD"},
        "chance": {"test": {"loss": chance[0], "accuracy": chance[1], "baseline": None}},
    }
    (out / "run.json").write_text(json.dumps(record))
    return out / "run.json"


def summary(
    values: dict[str, dict[int, float]], accuracy: float = 0.9, status=None
) -> pd.DataFrame:
    """A summary table (the columns the verdict reads) of {run: {seed: value}}: the value is the
    final valid loss and the final test loss alike; `status` {(run, seed): status} marks failed
    seeds."""
    status = status or {}
    rows = [
        {
            "run": run,
            "seed": seed,
            "status": status.get((run, seed), "completed"),
            "final_valid_loss": value,
            "test_loss": value,
            "test_accuracy": accuracy,
            "chance_test_loss": CHANCE[0],
            "chance_test_accuracy": CHANCE[1],
        }
        for run, by_seed in values.items()
        for seed, value in by_seed.items()
    ]
    return pd.DataFrame(rows)


def selection(family: str, mean: float, multiplier: float = 1.0, **changes) -> dict:
    """A family's tuning selection (lrstudy.tuning.select's shape) with the given tuning mean."""
    return {
        "family": family,
        "metric": "final_valid_loss",
        "multiplier": multiplier,
        "run": f"tune-{family}-x1",
        "mean": mean,
        "eligible": True,
        "trials": 5,
        "at_grid_edge": False,
        "next_to_failed": False,
        "extend": None,
        "rows": [],
        **changes,
    }


# What the verdict stages read of the config (workflow/rules/common.smk verdict_settings_json):
# the schema's defaults, one look of the confirmation seeds unless a test says otherwise.
def verdict_settings(seeds, **changes) -> dict:
    return {
        "metric": "final_test_loss",
        "margin": 0.1,
        "accuracy_margin": 0.005,
        "alpha": 0.05,
        "seeds_step": 10,
        "max_seeds": len(seeds),
        "looks": [list(seeds)],
        "differences": {},
        **changes,
    }


# A tie worked by hand: two families whose tuning means are equal (1.0; the name breaks the tie,
# so alpha is #1) and whose confirmation seeds give the same final valid loss, 1.0, 1.2, 1.4
# (mean 1.2, sd 0.2). Every paired difference is 0: p = 1, but three seeds cannot reach an
# interval at the equivalence test's level (the signed-rank test's smallest p with 3 pairs is
# 0.25), so beta is `undecided`, and both could be best. Each family's interval:
# 1.2 -+ t(0.975, 2) x 0.2 / sqrt(3) = 1.2 -+ 4.302653 x 0.115470 = 1.2 -+ 0.496828.
TIE_VALUES = [1.0, 1.2, 1.4]
TIE_SEEDS = [10, 11, 12]
TIE_MULTIPLIERS = {"alpha": 1.0, "beta": 0.5}
TIE_SETTINGS = verdict_settings(TIE_SEEDS)


def tie_study(folder: Path) -> dict:
    """The tie's tables (steps, evals, summary, tuning, verdict, best .csv) in `folder`, made by
    lrstudy.aggregate.verdict_tables from the selections and the confirmation runs' summary, as
    the aggregate rule makes them; returns {name: csv file}."""
    from lrstudy import aggregate
    from lrstudy.families import confirmation_run

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    runs = {family: confirmation_run(family) for family in TIE_MULTIPLIERS}
    frame = summary({run: dict(zip(TIE_SEEDS, TIE_VALUES)) for run in runs.values()})
    steps = pd.DataFrame(
        [
            {"run": run, "seed": seed, "step": step, "epoch": 0, "lr": 0.1 * (step + 1)}
            | {"momentum": 0.9, "train_loss": 1.0, "smoothed_loss": 1.0}
            for run in runs.values()
            for seed in TIE_SEEDS
            for step in range(3)
        ]
    )
    evals = pd.DataFrame(
        [
            {"run": run, "seed": seed, "step": 2, "epoch": 0, "split": split, "loss": 1.0}
            | {"accuracy": 0.9}
            for run in runs.values()
            for seed in TIE_SEEDS
            for split in ("valid", "test")
        ]
    )
    paths = []
    for family, multiplier in TIE_MULTIPLIERS.items():
        paths.append(folder / f"{family}.json")
        chosen = {**selection(family, 1.0, multiplier), "run": runs[family]}
        paths[-1].write_text(json.dumps(chosen))
    tuning, verdict, best = aggregate.verdict_tables(steps, frame, paths, TIE_SETTINGS, 1000, 3)
    tables = {"steps": steps, "evals": evals, "summary": frame}
    tables |= {"tuning": tuning, "verdict": verdict, "best": best}
    files = {}
    for name, table in tables.items():
        files[name] = folder / f"{name}.csv"
        table.to_csv(files[name], index=False)
    return files
