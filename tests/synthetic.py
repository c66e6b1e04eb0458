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


def write_run(
    root: Path,
    run: str,
    seed: int,
    valid: float,
    test: tuple[float, float] = (0.5, 0.8),
    status: str = "completed",
    tuning: dict | None = None,
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
    }
    (out / "run.json").write_text(json.dumps(record))
    return out / "run.json"


def summary(values: dict[str, dict[int, float]], accuracy: float = 0.9) -> pd.DataFrame:
    """A summary table (the columns the verdict reads) of {run: {seed: final valid loss}}."""
    rows = [
        {
            "run": run,
            "seed": seed,
            "status": "completed",
            "final_valid_loss": value,
            "test_accuracy": accuracy,
        }
        for run, by_seed in values.items()
        for seed, value in by_seed.items()
    ]
    return pd.DataFrame(rows)


def selection(family: str, mean: float, multiplier: float = 1.0) -> dict:
    """A family's tuning selection (lrstudy.verdict.select's shape) with the given tuning mean."""
    return {
        "family": family,
        "metric": "final_valid_loss",
        "multiplier": multiplier,
        "run": f"tune-{family}-x1",
        "mean": mean,
        "eligible": True,
        "at_grid_edge": False,
        "rows": [],
    }
