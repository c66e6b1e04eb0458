"""The verdict: every family at the setting tuning chose, retrained on confirmation seeds that
chose nothing and judged on the test split, which chose nothing either.

    python -m lrstudy.verdict look results/runs/confirm-*/seed*/run.json \
        --selections results/tuning/*.json --settings-json '{...}' --look 1 \
        --out results/verdict/look1.json

The reference is the family tuning chose (the lowest tuning mean of the eligible picks), so the
tests are not biased by the choice. Every family is compared with it paired by seed (a seed gives
every family the same initial weights and batches) on `verdict.metric` (final test loss by
default). A seed that diverged or collapsed counts, at W = the worse of the chance-level value
and the worst value observed. The words, their multiplicity and the looks at which seeds are
added are lrstudy.decision's: `better`/`worse` from the paired signed-rank test, `equivalent`
from the Hodges-Lehmann interval inside the margin, `undecided` else; a family still undecided
is retrained on more seeds, with the reference, at the next look (`look` writes which). `rank`
is the order of the means over the seeds every family has; `could_be_best` the families Hsu's
multiple comparisons with the best cannot rule out.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from lrstudy import decision
from lrstudy.families import confirmation_run
from lrstudy.io import write_json
from lrstudy.layout import REFERENCE
from lrstudy.tuning import t_interval

# verdict.metric -> (summary column, chance-level key, +1 lower is better / -1 higher is)
JUDGING = {
    "final_test_loss": ("test_loss", "chance_test_loss", 1.0),
    "final_test_accuracy": ("test_accuracy", "chance_test_accuracy", -1.0),
}
VERDICT_FIELDS = [
    "family",
    "run",
    "rank",
    "multiplier",
    "trials",
    "also_changes",
    "momentum",
    "metric",
    "n_seeds",
    "seeds",
    "look",
    "n_failed",
    "mean",
    "ci_low",
    "ci_high",
    "diff",
    "dz",
    "hl",
    "diff_ci_low",
    "diff_ci_high",
    "diff_level",
    "p",
    "alpha_nominal",
    "p_adjusted",
    "margin",
    "equivalence_low",
    "equivalence_high",
    "equivalence_level",
    "equivalence_bound",
    "equivalence_share",
    "within_margin",
    "p_failure",
    "p_failure_holm",
    "verdict",
    "could_be_best",
    "test_accuracy_mean",
    "test_accuracy_ci_low",
    "test_accuracy_ci_high",
    "status",
    "note",
]


def look_order(settings: dict) -> list[int]:
    """Every confirmation seed, in the order the looks add them."""
    return [s for look in settings["looks"] for s in look]


def reference_of(selections: dict[str, dict]) -> str:
    """Tuning's pick: the family whose chosen setting has the lowest tuning mean (eligible first,
    then the name)."""
    order = lambda f: (not selections[f]["eligible"], _finite(selections[f]["mean"]), f)  # noqa: E731
    return min(selections, key=order)


def margin_base(selections: dict, reference: str, settings: dict) -> float:
    """What the margin is a share of: the reference's tuning mean for a loss (fixed before any
    confirmation seed is read), 1 for an accuracy (its margin is in points)."""
    if JUDGING[settings["metric"]][2] < 0:
        return 1.0
    return float(selections[reference]["mean"])


def margin_of(selections: dict, reference: str, settings: dict) -> float:
    """The equivalence margin on the judging metric's scale: `margin` x the reference's tuning
    mean for a loss, `accuracy_margin` points for an accuracy."""
    key = "accuracy_margin" if JUDGING[settings["metric"]][2] < 0 else "margin"
    return float(settings[key]) * margin_base(selections, reference, settings)


def judged(summary: pd.DataFrame, run: str, seeds: list[int], metric: str):
    """(values, failed) of a confirmation run in look order over the `seeds` it has, oriented so
    that lower is better; a seed not `completed` or without a finite value has failed (NaN)."""
    column, _, sign = JUDGING[metric]
    group = summary[summary["run"] == run].set_index("seed")
    have = [s for s in seeds if s in group.index]
    values = sign * group.loc[have, column].to_numpy(dtype=float)
    failed = (group.loc[have, "status"] != "completed").to_numpy() | ~np.isfinite(values)
    return np.where(failed, np.nan, values), failed


def chance_of(summary: pd.DataFrame, runs: list[str], metric: str) -> float:
    """The chance-level value of the judging metric (oriented), from the runs' records."""
    _, key, sign = JUDGING[metric]
    values = summary.loc[summary["run"].isin(runs), key].dropna()
    return sign * float(values.iloc[0]) if len(values) else math.nan


def decide(summary: pd.DataFrame, selections: dict, runs: dict[str, str], settings: dict):
    """lrstudy.decision.decide on the confirmation runs `runs` ({family: run}) in `summary`:
    (the reference, the oriented values and failures by family, the decision)."""
    seeds = look_order(settings)
    sizes = list(np.cumsum([len(look) for look in settings["looks"]]))
    values, failed = {}, {}
    for family, run in runs.items():
        values[family], failed[family] = judged(summary, run, seeds, settings["metric"])
    reference = reference_of(selections)
    result = decision.decide(
        values,
        failed,
        reference,
        margin=margin_of(selections, reference, settings),
        chance=chance_of(summary, list(runs.values()), settings["metric"]),
        alpha=settings["alpha"],
        sizes=sizes,
    )
    return reference, values, failed, result


def _finite(value) -> float:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else math.inf


def verdict_table(
    summary: pd.DataFrame, selections: dict, runs: dict, settings: dict, test_size: int, changes
) -> pd.DataFrame:
    """One row per family (VERDICT_FIELDS) in rank order; `runs` maps a family to its
    confirmation run, `settings` is config `verdict` with its looks, `changes` each family's
    also_changes."""
    reference, values, failed, result = decide(summary, selections, runs, settings)
    filled, _ = decision.substitute_failures(values, failed, result["failure_value"])
    order = decision.rank(filled)
    best = decision.could_be_best(filled, settings["alpha"])
    sign = JUDGING[settings["metric"]][2]
    rows = []
    for number, family in enumerate(order, start=1):
        record, group = result["families"][family], summary[summary["run"] == runs[family]]
        accuracy = group["test_accuracy"].where(group["status"] == "completed")
        chance = group["chance_test_accuracy"].astype(float)
        rows.append(
            {
                "family": family,
                "run": runs[family],
                "rank": number,
                "multiplier": selections[family]["multiplier"],
                "trials": selections[family]["trials"],
                "also_changes": changes.get(family, ""),
                "metric": settings["metric"],
                "seeds": " ".join(str(s) for s in _in_look_order(group["seed"], settings)),
                **dict(zip(("mean", "ci_low", "ci_high"), _oriented(filled[family], sign))),
                **{k: v for k, v in record.items() if k in VERDICT_FIELDS},
                "diff_ci_low": record["diff_low"],
                "diff_ci_high": record["diff_high"],
                "margin": margin_of(selections, reference, settings),
                "verdict": REFERENCE if family == reference else record["word"],
                "could_be_best": family in best,
                **_accuracy(accuracy.fillna(chance), test_size),
                "status": "/".join(sorted(set(group["status"]))),
                "note": notes(family, record, selections[family]),
            }
        )
    frame = pd.DataFrame(rows).reindex(columns=VERDICT_FIELDS)
    frame["equivalence_share"] = frame["equivalence_bound"] / margin_base(
        selections, reference, settings
    )
    is_reference = frame["family"] == reference
    frame.loc[is_reference, "look"] = result["look"]  # it is retrained at every look
    frame.loc[is_reference, "note"] = study_line(frame, reference, settings)
    return frame


def _in_look_order(seeds, settings: dict) -> list[int]:
    order = look_order(settings)
    return sorted(seeds, key=lambda s: order.index(s) if s in order else len(order) + s)


def _oriented(values: np.ndarray, sign: float) -> tuple[float, float, float]:
    """Mean and t-interval of oriented values, back in the metric's own direction."""
    return t_interval(sign * np.asarray(values, dtype=float))


def _accuracy(accuracies, test_size: int) -> dict:
    from lrstudy.layout import CONFIDENCE

    mean, low, high = accuracy_interval(accuracies, test_size, CONFIDENCE)
    return {"test_accuracy_mean": mean, "test_accuracy_ci_low": low, "test_accuracy_ci_high": high}


def notes(family: str, record: dict, selection: dict) -> str:
    """What a reader must know beside the numbers: failed seeds and how they counted, the
    decision's own notes, a pick at the grid's edge (extensions spent), next to a failed point,
    or at a point no tuning seed completed at every seed."""
    parts = list(record.get("note", []))
    if record.get("n_failed"):
        parts.append(f"{record['n_failed']} failed seed(s) counted at the failure value")
    if selection["at_grid_edge"]:
        parts.append("chosen at the grid's edge after its extensions: the best LR may lie beyond")
    if selection.get("next_to_failed"):
        parts.append("chosen next to a grid point that failed")
    if not selection["eligible"]:
        parts.append("no grid point completed on every tuning seed")
    return "; ".join(parts)


def study_line(frame: pd.DataFrame, reference: str, settings: dict) -> str:
    """The study's answer in a sentence, from tests only: the families that could be best, and
    whether tuning's pick was beaten (a family `better` than it) or not."""
    best = ", ".join(frame.loc[frame["could_be_best"], "family"])
    better = frame.loc[frame["verdict"] == "better", "family"].tolist()
    level = f"Hsu's MCB at alpha {settings['alpha']:g}"
    line = f"Could be best ({level}, {settings['metric']} on the test split): {best}."
    if better:
        return line + f" Tuning's pick, {reference}, was beaten by {', '.join(better)}."
    return line + f" No family tested better than tuning's pick, {reference}."


def accuracy_interval(accuracies, test_size: int, confidence: float):
    """Mean test accuracy over seeds and an interval for the accuracy on unseen data: the seeds'
    variance of the mean (s^2/n) plus the test images' own sampling variance, p(1-p)/N of a
    binomial proportion (each seed is scored on the same N images, so that error is shared by
    every seed and does not shrink with more of them); t quantile at the Welch-Satterthwaite
    degrees of freedom (the image part counts as known)."""
    from scipy import stats

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


def look_main(args) -> None:
    """The interim decision after a look: which families (and the reference) train on."""
    from lrstudy.aggregate import read_selections, summarise_runs

    selections = read_selections(args.selections)
    settings = json.loads(args.settings_json)
    summary = summarise_runs(args.run_files)
    runs = {family: confirmation_run(family) for family in selections}
    _, _, _, result = decide(summary, selections, runs, settings)
    if result["look"] != args.look:
        raise SystemExit(
            f"look {args.look}: the runs given reach look {result['look']}; "
            "delete results/verdict/ and rerun"
        )
    words = {family: r["word"] for family, r in result["families"].items()}
    out = {"look": args.look, "continuing": result["continuing"], "words": words}
    write_json(args.out, out)
    print(json.dumps(out))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="The verdict's interim decision at a look.")
    sub = parser.add_subparsers(dest="command", required=True)
    look = sub.add_parser("look", help="decide at a look; name the families needing more seeds")
    look.add_argument("run_files", nargs="+", type=Path, help="run.json of every confirmation run")
    look.add_argument("--selections", nargs="+", type=Path, required=True)
    look.add_argument("--settings-json", required=True, help="config `verdict`, with its looks")
    look.add_argument("--look", type=int, required=True)
    look.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    look_main(args)


if __name__ == "__main__":
    main()
