"""The Markdown report's optional appendix (config `report.appendix`): the source runs' summary,
the tuning table, the verdict (the study's line first) and the range-test suggestions, as Markdown
tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lrstudy.layout import BEST_METRIC


def _number(value, digits=4) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    if value != value:  # NaN
        return ""
    if value.is_integer() and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.{digits}g}"


def _cell(value) -> str:
    """A table cell: a number (or text that reads as one: a CSV column with an empty cell is read
    as text) with 4 significant digits, True/False and other text as they are, NaN and empty
    cells empty."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
    return _number(value)


def markdown_table(rows: list[dict], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return lines


# summary.csv's columns the appendix leaves out (the kind and optimizer the headings say, the
# best accuracy beside the final one, the wall time; family and multiplier: the source's runs have
# none)
SUMMARY_HIDDEN = (
    "family",
    "multiplier",
    "kind",
    "optimizer",
    "best_valid_accuracy",
    "wall_seconds",
)
# verdict.csv's columns the appendix leaves out: the run (the family names it), the seeds (n_seeds
# counts them), the raw p-values and the level they were compared with beside the adjusted ones
VERDICT_HIDDEN = ("run", "seeds", "p", "alpha_nominal", "p_failure")
RULES = ("minimum", "steep", "valley", "slide")


def verdict_lines(verdict: pd.DataFrame) -> list[str]:
    """The verdict's heading, the study's line (the reference row's note), then its table (the
    reference's note left empty there: it is that line)."""
    from lrstudy.verdict_page import study_line

    metric = verdict["metric"].iloc[0] if len(verdict) else ""
    heading = "### Verdict: every family against the reference (tuning's pick) on the"
    lines = ["", f"{heading} confirmation seeds ({metric} on the test split, paired)", ""]
    lines += [f"**{study_line(verdict)}**", ""]
    reference = verdict["note"] == study_line(verdict)
    rows = verdict.assign(note=verdict["note"].where(~reference, "")).to_dict("records")
    return lines + markdown_table(rows, [c for c in verdict if c not in VERDICT_HIDDEN])


def appendix(config: dict, tables: dict, suggestions: dict) -> list[str]:
    """The source runs' summary, the tuning table, the verdict and the range-test suggestions:
    after the source layout, on request. `tables`: {"summary", "tuning", "verdict": csv file};
    `suggestions`: {range-test run: its combined suggestion.json}."""
    lines = ["", "## Appendix", "### Summary of the source's runs (one row per run and seed)"]
    summary = pd.read_csv(tables["summary"])
    summary = summary[summary["run"].isin(list(config["runs"]))]
    lines += markdown_table(
        summary.to_dict("records"), [c for c in summary if c not in SUMMARY_HIDDEN]
    )
    metric = config["report"].get("best_metric", BEST_METRIC)
    tuning = pd.read_csv(tables["tuning"], keep_default_na=False)
    lines += ["", f"### Tuning: every family's LR multipliers, mean {metric} over the tuning seeds"]
    lines += markdown_table(tuning.to_dict("records"), list(tuning.columns))
    lines += verdict_lines(pd.read_csv(tables["verdict"], keep_default_na=False))
    lines += ["", "### Range-test suggestions (combined across seeds)"]
    rows = []
    for run in config["report"]["sections"]["range_test"]:
        found = suggestions.get(run) or {}
        sugg, bounds = found.get("suggestions") or {}, found.get("bounds") or {}
        rows.append(
            {
                "run": run,
                **{r: sugg.get(r) for r in RULES},
                "base_lr": bounds.get("base_lr"),
                "max_lr": bounds.get("max_lr"),
            }
        )
    lines += markdown_table(rows, ["run", *RULES, "base_lr", "max_lr"])
    return lines
