"""The Markdown report's optional appendix (config `report.appendix`): the source runs' summary,
the tuning table, the verdict and the range-test suggestions, as Markdown tables."""

from __future__ import annotations

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
    as text) with 4 significant digits, other text as it is, NaN and empty cells empty."""
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
# verdict.csv's columns the appendix leaves out: the raw p-values beside the adjusted ones
VERDICT_HIDDEN = ("p", "p_equivalence", "seeds")
RULES = ("minimum", "steep", "valley", "slide")


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
    verdict = pd.read_csv(tables["verdict"], keep_default_na=False)
    lines += [
        "",
        f"### Verdict: every family against #1 on the confirmation seeds ({metric}, paired)",
    ]
    lines += markdown_table(
        verdict.to_dict("records"), [c for c in verdict if c not in VERDICT_HIDDEN]
    )
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
