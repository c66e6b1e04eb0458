"""The fair comparison: each family's setting chosen on validation data, the families compared on
fresh seeds, a verdict word per family from tests that support it.

    python -m lrstudy.verdict select results/runs/tune-step-x*/seed*/run.json \
        --family step --metric final_valid_loss --out results/tuning/step.json

Tuning (`select`): a family's grid point (multiplier) is eligible when every tuning seed
completed with a finite metric; the chosen one has the lowest mean over the tuning seeds (the
smaller multiplier of equal means). The test split is never read.

The verdict (`verdict_table`, called by lrstudy.aggregate): the reference (#1) is the family whose
chosen setting has the lowest tuning mean; every other family is compared with it on the
confirmation seeds only, paired by seed (the same seed gives the same initial weights and the same
batches). For each: the paired mean difference `diff` (family - #1, positive = worse) with its
95 % t-interval (scipy's ttest_rel), the effect size dz = mean / sd of the differences, a paired
t-test whose p-values are Holm-adjusted over the comparisons with #1 (statsmodels), and TOST, two
one-sided paired t-tests against +-margin (statsmodels' ttost_paired; margin = `verdict.margin` x
#1's confirmation mean), Holm-adjusted alike. The word: `equivalent` (adjusted TOST p < alpha),
else `worse` / `better` (adjusted p < alpha, by the sign of diff), else `undecided`. Also each
family's chance of ranking first (paired bootstrap over the confirmation seeds) and a test-accuracy
interval that counts both the seeds' spread and the test images' own sampling (`accuracy_interval`).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from lrstudy.io import write_json
from lrstudy.layout import BEST_METRIC, CONFIDENCE

WORDS = ("worse", "better", "equivalent", "undecided")
REFERENCE = "reference"
VERDICT_FIELDS = [
    "family",
    "run",
    "rank",
    "multiplier",
    "momentum",
    "n_seeds",
    "seeds",
    "mean",
    "ci_low",
    "ci_high",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "dz",
    "p",
    "p_holm",
    "p_equivalence",
    "p_equivalence_holm",
    "margin",
    "verdict",
    "p_rank1",
    "test_accuracy_mean",
    "test_accuracy_ci_low",
    "test_accuracy_ci_high",
    "status",
    "note",
]
TUNING_FIELDS = [
    "family",
    "run",
    "multiplier",
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


# ------------------------------------------------------------------------------------ tuning
def tuning_rows(summary: pd.DataFrame, family: str, runs: dict, metric: str) -> list[dict]:
    """One row per grid point: {multiplier: run} of the family, its seeds' mean `metric`."""
    rows = []
    for multiplier, run in runs.items():
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


def select(rows: list[dict], metric: str) -> dict:
    """The chosen grid point: the lowest mean of the eligible ones (then the smaller multiplier);
    where none is eligible, the lowest finite mean, flagged. Marks `selected` on the rows."""
    column = mean_column(metric)
    finite = [r for r in rows if math.isfinite(r[column])]
    pool = [r for r in finite if r["eligible"]] or finite or rows
    order = lambda r: (r[column] if math.isfinite(r[column]) else math.inf, r["multiplier"])  # noqa: E731
    chosen = min(pool, key=order)
    for row in rows:
        row["selected"] = row is chosen
    multipliers = sorted(r["multiplier"] for r in rows)
    return {
        "family": chosen["family"],
        "metric": metric,
        "multiplier": chosen["multiplier"],
        "run": chosen["run"],
        "mean": chosen[column],
        "eligible": chosen["eligible"],
        "at_grid_edge": chosen["multiplier"] in (multipliers[0], multipliers[-1]),
        "rows": rows,
    }


def mean_column(metric: str) -> str:
    return f"mean_{metric}"


def tuning_table(selections: dict[str, dict]) -> pd.DataFrame:
    rows = [row for selection in selections.values() for row in selection["rows"]]
    metric = next(iter(selections.values()))["metric"] if selections else BEST_METRIC
    fields = [mean_column(metric) if f == "mean" else f for f in TUNING_FIELDS]
    return pd.DataFrame(rows, columns=fields)


# ------------------------------------------------------------------------------------ verdict
def word(diff: float, p_holm: float, p_equivalence_holm: float, alpha: float) -> str:
    """The verdict word of one comparison with #1 (diff = family - #1, positive = worse).

    `equivalent` comes first: a difference shown to lie inside the margin is one the margin says
    does not matter, even where the t-test also finds it (p_holm still shows that)."""
    if math.isfinite(p_equivalence_holm) and p_equivalence_holm < alpha:
        return "equivalent"
    if math.isfinite(p_holm) and p_holm < alpha and diff != 0:
        return "worse" if diff > 0 else "better"
    return "undecided"


def paired_tests(ours: np.ndarray, reference: np.ndarray, margin: float) -> dict:
    """Paired difference, its 95 % t-interval, dz, the t-test's and TOST's p over seed pairs."""
    diffs = ours - reference
    mean = float(diffs.mean())
    sd = float(diffs.std(ddof=1)) if len(diffs) > 1 else math.nan
    if len(diffs) < 2 or sd == 0:  # identical on every seed: no spread to test against
        same = len(diffs) > 1 and mean == 0
        return {
            "diff": mean,
            "diff_ci_low": mean if len(diffs) > 1 else math.nan,
            "diff_ci_high": mean if len(diffs) > 1 else math.nan,
            "dz": 0.0 if same else math.nan,
            "p": 1.0 if same else math.nan,
            "p_equivalence": (0.0 if abs(mean) < margin else 1.0) if len(diffs) > 1 else math.nan,
        }
    test = stats.ttest_rel(ours, reference)
    interval = test.confidence_interval(CONFIDENCE)
    p_equivalence = float(ttost_paired(ours, reference, -margin, margin)[0])
    return {
        "diff": mean,
        "diff_ci_low": float(interval.low),
        "diff_ci_high": float(interval.high),
        "dz": mean / sd,
        "p": float(test.pvalue),
        "p_equivalence": p_equivalence,
    }


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels); NaN stays NaN and takes no part."""
    values = np.asarray(pvalues, dtype=float)
    adjusted = np.full(len(values), math.nan)
    finite = np.isfinite(values)
    if finite.any():
        adjusted[finite] = multipletests(values[finite], method="holm")[1]
    return adjusted.tolist()


def rank1_chances(by_seed: pd.DataFrame, bootstraps: int, seed: int) -> dict[str, float]:
    """Each family's share of paired bootstrap resamples (the same resampled confirmation seeds
    for every family) in which its mean is the lowest; equal lowest means share the count."""
    complete = by_seed.dropna()
    if complete.empty:
        return {family: math.nan for family in by_seed}
    values = complete.to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(values), size=(bootstraps, len(values)))
    means = values[index].mean(axis=1)  # (bootstraps, families)
    lowest = np.isclose(means, means.min(axis=1, keepdims=True), rtol=0, atol=1e-12)
    shares = (lowest / lowest.sum(axis=1, keepdims=True)).mean(axis=0)
    return dict(zip(complete.columns, map(float, shares)))


def accuracy_interval(accuracies, test_size: int, confidence: float = CONFIDENCE):
    """Mean test accuracy over seeds and an interval for the accuracy on unseen data: the seeds'
    variance of the mean (s^2/n) plus the test images' own sampling variance, p(1-p)/N of a
    binomial proportion (each seed is scored on the same N images, so that error is shared by
    every seed and does not shrink with more of them); t quantile at the Welch-Satterthwaite
    degrees of freedom (the image part counts as known)."""
    values = np.asarray(accuracies, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    seed_var = float(values.var(ddof=1)) / len(values) if len(values) > 1 else 0.0
    image_var = mean * (1 - mean) / test_size
    total = seed_var + image_var
    df = (total**2 / (seed_var**2 / (len(values) - 1))) if seed_var > 0 else math.inf
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(total)
    return mean, mean - half, mean + half


def compare_with_reference(by_seed: pd.DataFrame, reference: str, settings: dict) -> dict:
    """{family: its paired tests against `reference` and its word} from a seeds x families table
    of the metric (NaN where a seed did not complete): each pair over the seeds both completed,
    margin = settings["margin"] x the reference's mean, Holm over the families other than it."""
    ref = by_seed[reference]
    margin = settings["margin"] * float(ref.mean())
    others = [f for f in by_seed if f != reference]
    results = {}
    for family in others:
        pairs = by_seed[[family, reference]].dropna().to_numpy(dtype=float)
        results[family] = paired_tests(pairs[:, 0], pairs[:, 1], margin)
    for key in ("p", "p_equivalence"):
        adjusted = holm([results[f][key] for f in others])
        for family, value in zip(others, adjusted):
            results[family][f"{key}_holm"] = value
    for family in others:
        r = results[family]
        r["verdict"] = word(r["diff"], r["p_holm"], r["p_equivalence_holm"], settings["alpha"])
    results[reference] = {"diff": 0.0, "verdict": REFERENCE}
    for r in results.values():
        r["margin"] = margin
    return results


def verdict_table(
    summary: pd.DataFrame,
    selections: dict[str, dict],
    confirmation_runs: dict[str, str],
    settings: dict,
    test_size: int,
) -> pd.DataFrame:
    """One row per family (VERDICT_FIELDS), ranked by the tuning stage: #1 is the reference.
    `confirmation_runs` maps a family to its confirmation run; `settings` is config `verdict`
    plus `metric`."""
    order = sorted(
        selections, key=lambda f: (not selections[f]["eligible"], _finite(selections[f]["mean"]), f)
    )
    by_seed = pd.DataFrame(
        {f: _by_seed(summary, confirmation_runs[f], settings["metric"]) for f in order}
    )
    tests = compare_with_reference(by_seed, order[0], settings)
    chances = rank1_chances(by_seed, settings["bootstraps"], settings["bootstrap_seed"])
    rows = []
    for rank, family in enumerate(order, start=1):
        group = summary[summary["run"] == confirmation_runs[family]].sort_values("seed")
        mean, low, high = t_interval(by_seed[family])
        accuracy = accuracy_interval(group["test_accuracy"], test_size)
        rows.append(
            {
                "family": family,
                "run": confirmation_runs[family],
                "rank": rank,
                "multiplier": selections[family]["multiplier"],
                "n_seeds": len(group),
                "seeds": " ".join(str(s) for s in group["seed"]),
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
                **tests[family],
                "p_rank1": chances[family],
                "test_accuracy_mean": accuracy[0],
                "test_accuracy_ci_low": accuracy[1],
                "test_accuracy_ci_high": accuracy[2],
                "status": "/".join(sorted(set(group["status"]))),
            }
        )
    frame = pd.DataFrame(rows).reindex(columns=VERDICT_FIELDS)
    frame["note"] = notes(frame, selections, order[0])
    return frame


def _finite(value) -> float:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else math.inf


def _by_seed(summary: pd.DataFrame, run: str, metric: str) -> pd.Series:
    """A run's `metric` by seed, NaN where a seed did not complete."""
    group = summary[summary["run"] == run]
    values = group[metric].where(group["status"] == "completed")
    return pd.Series(values.to_numpy(dtype=float), index=group["seed"].to_numpy(), name=run)


def notes(frame: pd.DataFrame, selections: dict, reference: str) -> list[str]:
    """What a reader must know beside the numbers: a pick that did not replicate, a setting at
    the grid's edge (widen the grid), a setting no grid point trained well at, lost seeds."""
    ref_mean = float(frame.loc[frame["family"] == reference, "mean"].iloc[0])
    out = []
    for row in frame.itertuples():
        parts = []
        if row.family == reference:
            lower = frame[(frame["family"] != reference) & (frame["mean"] < ref_mean)]
            if len(lower):
                parts.append(
                    "the pick did not replicate: lower confirmation mean for "
                    + ", ".join(lower["family"])
                )
        elif row.mean < ref_mean:
            parts.append("lower confirmation mean than the reference")
        selection = selections[row.family]
        if selection["at_grid_edge"]:
            parts.append("chosen at the grid's edge: the best LR may lie outside it")
        if not selection["eligible"]:
            parts.append("no grid point completed on every tuning seed")
        if row.status != "completed":
            parts.append(f"confirmation seeds not all completed ({row.status}): those left out")
        out.append("; ".join(parts))
    return out


# ------------------------------------------------------------------------------------ command
def main(argv=None) -> None:
    from lrstudy.aggregate import aggregate

    parser = argparse.ArgumentParser(description="Choose a family's setting on its tuning runs.")
    sub = parser.add_subparsers(dest="command", required=True)
    chooser = sub.add_parser("select", help="the best grid point of one family, by validation")
    chooser.add_argument("run_files", nargs="+", type=Path, help="run.json of every tuning run")
    chooser.add_argument("--family", required=True)
    chooser.add_argument("--metric", required=True)
    chooser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    _, _, summary = aggregate(args.run_files, target=math.inf)  # the run.json read, checked, once
    grid = summary.groupby("multiplier")["run"].first().to_dict()  # {multiplier: run}, sorted
    selection = select(tuning_rows(summary, args.family, grid, args.metric), args.metric)
    write_json(args.out, selection, allow_nan=True)
    print(json.dumps({k: v for k, v in selection.items() if k != "rows"}))


if __name__ == "__main__":
    main()
