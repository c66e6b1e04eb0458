"""verdict.html: the verdict's main columns and the tuning table as one page for the HTML report
(which shows an HTML file in place and a CSV only as a download)."""

from __future__ import annotations

import pandas as pd

from lrstudy.verdict import VERDICT_FIELDS

# verdict.csv's columns the page leaves out: the run (the family names it), the seeds (the same
# confirmation seeds for all), the raw p-values beside the adjusted ones, the margin (its caption)
PAGE_HIDDEN = ("run", "n_seeds", "seeds", "p", "p_equivalence", "margin", "status")


def html_page(table: pd.DataFrame, tuning: pd.DataFrame) -> str:
    """verdict.html: the verdict (its main columns) and the tuning table, for the HTML report,
    which shows an HTML file in place and a CSV only as a download."""
    style = (
        "body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    )
    shown = table.reindex(columns=[c for c in VERDICT_FIELDS if c not in PAGE_HIDDEN])
    parts = [
        f"<html><head><meta charset='utf-8'><style>{style}</style></head><body>",
        "<h3>Verdict: every family against #1 on the confirmation seeds</h3>",
        shown.to_html(
            index=False, float_format=lambda v: f"{v:.4g}", na_rep="", table_id="verdict"
        ),
        "<h3>Tuning: every family's grid on the tuning seeds</h3>",
        tuning.to_html(
            index=False, float_format=lambda v: f"{v:.4g}", na_rep="", table_id="tuning"
        ),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
