"""verdict.html: the study's line, the verdict's main columns and the tuning table as one page for
the HTML report (which shows an HTML file in place and a CSV only as a download)."""

from __future__ import annotations

import html
import math

import pandas as pd

from lrstudy.layout import level_text
from lrstudy.verdict import REFERENCE, VERDICT_FIELDS

# The page's verdict columns in order: verdict.csv's, the decision's two intervals written as one
# cell each with their levels (INTERVALS). verdict.csv has the rest: the run (the family names
# it), the seeds, the raw p and its level, the margin (the page's text says it), the within flag
# (the word says it), dz, the status.
INTERVALS = {
    "diff_interval": ("diff_ci_low", "diff_ci_high", "diff_level"),
    "equivalence_interval": ("equivalence_low", "equivalence_high", "equivalence_level"),
}
PAGE_COLUMNS = (
    "rank family multiplier trials also_changes momentum verdict could_be_best look n_seeds"
    " n_failed mean ci_low ci_high hl diff_interval equivalence_interval equivalence_bound"
    " equivalence_share p_adjusted p_failure_holm test_accuracy_mean note"
).split()
STYLE = (
    "body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap}"
    "#verdict td:last-child{text-align:left;white-space:normal;min-width:24em}"  # the note
)


def number(value) -> str:
    """4 significant digits; an infinite end as -inf/inf, a missing value empty."""
    value = float(value)
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def interval_text(low, high, level) -> str:
    """`[low, high] at 98.5 %`: an interval the decision used, at its level ("" where none)."""
    if any(pd.isna(v) for v in (low, high, level)):
        return ""
    return f"[{number(low)}, {number(high)}] at {level_text(float(level))}"


def study_line(table: pd.DataFrame) -> str:
    """The study's answer: the reference row's note (lrstudy.verdict.study_line)."""
    notes = table.loc[table["verdict"] == REFERENCE, "note"].dropna()
    return str(notes.iloc[0]) if len(notes) else ""


def page_table(table: pd.DataFrame) -> pd.DataFrame:
    """The verdict's columns as the page shows them: PAGE_COLUMNS, the reference's note left
    empty (it is the study's line, which opens the page)."""
    shown = table.reindex(columns=VERDICT_FIELDS).copy()
    for name, (low, high, level) in INTERVALS.items():
        shown[name] = [interval_text(*row) for row in shown[[low, high, level]].to_numpy()]
    shown["note"] = shown["note"].where(shown["verdict"] != REFERENCE, "")
    return shown.reindex(columns=PAGE_COLUMNS)


def reading(table: pd.DataFrame) -> str:
    """How to read the verdict's columns, with the margin and metric of this study."""
    margin = number(table["margin"].iloc[0]) if len(table) else ""
    metric = str(table["metric"].iloc[0]) if len(table) else ""
    return (
        f"Judged on {metric} (test split), paired by seed; <i>diff_interval</i>: the Hodges-Lehmann"
        " interval of the paired difference (family − reference, positive: worse) that the"
        " difference test used, at its level at the deciding <i>look</i>;"
        " <i>equivalence_interval</i>: the one the equivalence test used, which must lie inside"
        f" ±{margin} (the margin) for <i>equivalent</i>; <i>equivalence_bound</i>: its larger"
        " |end|, <i>equivalence_share</i>: that as a share of the margin's base;"
        " <i>n_failed</i>: seeds that diverged or collapsed, counted at the failure value."
    )


def html_page(table: pd.DataFrame, tuning: pd.DataFrame) -> str:
    """verdict.html: the study's line, then the verdict (PAGE_COLUMNS) and the tuning table."""
    floats = lambda v: f"{v:.4g}"  # noqa: E731
    parts = [
        f"<html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>",
        f"<p id='study-line'><b>{html.escape(study_line(table))}</b></p>",
        "<h3>Verdict: every family against the reference (tuning's pick) on the confirmation"
        " seeds</h3>",
        f"<p id='reading'>{reading(table)}</p>",
        page_table(table).to_html(index=False, float_format=floats, na_rep="", table_id="verdict"),
        "<h3>Tuning: every family's grid on the tuning seeds</h3>",
        tuning.to_html(index=False, float_format=floats, na_rep="", table_id="tuning"),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
