"""The verdict's two figures, for the HTML report's verdict category (lrstudy.layout):

- tuning_curves.png: each family's mean final valid loss over the tuning seeds against its LR
  multiplier, with 95 % t-intervals, the chosen point ringed: how forgiving each schedule is.
- verdict_forest.png: each family's paired difference from #1 on the confirmation seeds (mean and
  95 % t-interval), the +-margin band of the equivalence test, and its verdict word.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lrstudy.layout import format_value  # noqa: E402

TUNING_SIZE = (5.5, 3.8)
WORD_COLORS = {
    "better": "#2ca02c",
    "worse": "#d62728",
    "equivalent": "#1f77b4",
    "undecided": "#7f7f7f",
    "reference": "#000000",
}


def mean_column(tuning: pd.DataFrame) -> str:
    return next(c for c in tuning.columns if c.startswith("mean_"))


def draw_tuning(tuning: pd.DataFrame, path: Path, save) -> None:
    """Mean and 95 % t-interval per grid point on a log axis (losses are positive; an interval
    reaching below zero is cut at the axis), the chosen point ringed, a grid point with a diverged
    or collapsed seed (not eligible) drawn as an x."""
    column = mean_column(tuning)
    fig, ax = plt.subplots(figsize=TUNING_SIZE, constrained_layout=True)
    cmap = plt.get_cmap("tab10")
    values = tuning[column].astype(float)
    floor = values[values > 0].min() / 2 if (values > 0).any() else 1e-3
    for i, (family, rows) in enumerate(tuning.groupby("family", sort=False)):
        rows = rows.sort_values("multiplier")
        color = cmap(i % cmap.N)
        mean = rows[column].astype(float)
        low = rows["ci_low"].astype(float).clip(lower=floor)
        high = rows["ci_high"].astype(float)
        errors = np.vstack([(mean - low).clip(lower=0), (high - mean).clip(lower=0)])
        ax.errorbar(
            rows["multiplier"],
            mean,
            yerr=np.nan_to_num(errors),
            color=color,
            marker="o",
            markersize=3.5,
            capsize=2.5,
            label=family,
        )
        for flag, style in (("selected", {"marker": "o", "markersize": 10}), ("eligible", None)):
            marked = rows[rows[flag].astype(str).str.lower() == ("true" if style else "false")]
            style = style or {"marker": "x", "markersize": 8}
            ax.plot(
                marked["multiplier"],
                marked[column],
                markerfacecolor="none",
                markeredgewidth=1.6,
                color=color,
                linestyle="none",
                **style,
            )
    ax.set_xscale("log", base=2)
    ticks = sorted(tuning["multiplier"].unique())
    ax.set_xticks(ticks, [f"x{format_value(float(t))}" for t in ticks])
    ax.minorticks_off()
    if (values > 0).any():
        ax.set_yscale("log")
    ax.set_xlabel("LR multiplier of the family's anchor (log scale)")
    ax.set_ylabel(column.removeprefix("mean_").replace("_", " ") + " (tuning seeds)")
    ax.set_title("tuning curves: mean and 95 % CI (ring: chosen; x: a seed failed)")
    ax.legend(loc="best", framealpha=0.85)
    save(fig, path)


def draw_forest(verdict: pd.DataFrame, path: Path, save) -> None:
    rows = verdict.sort_values("rank")
    fig, ax = plt.subplots(figsize=(5.5, 0.9 + 0.45 * len(rows)), constrained_layout=True)
    margin = float(rows["margin"].iloc[0]) if len(rows) else math.nan
    if math.isfinite(margin):
        ax.axvspan(-margin, margin, color="#1f77b4", alpha=0.12, linewidth=0)
    ax.axvline(0, color="0.3", linewidth=0.8)
    positions = np.arange(len(rows))[::-1]
    for y, row in zip(positions, rows.itertuples()):
        color = WORD_COLORS.get(row.verdict, "0.4")
        diff = float(row.diff) if row.diff == row.diff else 0.0
        low, high = float(row.diff_ci_low), float(row.diff_ci_high)
        if math.isfinite(low) and math.isfinite(high):
            ax.plot([low, high], [y, y], color=color, linewidth=2)
        ax.plot([diff], [y], marker="o", color=color, markersize=5)
        rank1 = f", P(#1) {row.p_rank1:.2f}" if row.p_rank1 == row.p_rank1 else ""
        ax.annotate(
            f"{row.verdict}{rank1}",
            (1.01, y),
            xycoords=("axes fraction", "data"),
            va="center",
            fontsize=7,
            color=color,
        )
    ax.set_yticks(
        positions,
        [f"#{r.rank} {r.family} x{format_value(float(r.multiplier))}" for r in rows.itertuples()],
    )
    band = f"\nshaded: the equivalence margin +-{margin:.3g}" if math.isfinite(margin) else ""
    ax.set_xlabel(f"paired difference from #1, mean and 95 % CI (positive: worse){band}")
    ax.set_title("each family against #1 on the confirmation seeds", loc="left")
    save(fig, path)


def draw(tuning: pd.DataFrame | None, verdict: pd.DataFrame | None, out: Path, save) -> list:
    """Both figures into `out` (the file names are lrstudy.layout.VERDICT_FIGURES'); their paths."""
    from lrstudy.layout import VERDICT_FIGURES

    tuning_name, forest_name = VERDICT_FIGURES
    paths = [Path(out) / f"{tuning_name}.png", Path(out) / f"{forest_name}.png"]
    draw_tuning(tuning if tuning is not None else pd.DataFrame(), paths[0], save)
    draw_forest(verdict if verdict is not None else pd.DataFrame(), paths[1], save)
    return paths
