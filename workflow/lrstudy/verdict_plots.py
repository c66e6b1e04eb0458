"""The verdict's two figures, for the HTML report's verdict category (lrstudy.layout):

- tuning_curves.png: each family's mean final valid loss over the tuning seeds against its LR
  multiplier (the grid and any points past its edge), with 95 % t-intervals, the chosen point
  ringed, a family that trains otherwise than its schedule named with its also_changes.
- verdict_forest.png: each family against the reference (tuning's pick) on the confirmation
  seeds: the Hodges-Lehmann estimate of the paired difference, the HL intervals the difference
  test and the equivalence test used (at the levels of the look that decided; an infinite end as
  an arrow at the axis edge), the +-margin band, and per row its word, look, seeds, failed seeds
  and also_changes; the reference owns the zero line."""

from __future__ import annotations

import math
from numbers import Real
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lrstudy.layout import LEVEL_TEXT, format_value, level_text  # noqa: E402
from lrstudy.verdict import JUDGING, REFERENCE  # noqa: E402

TUNING_SIZE = (5.5, 3.8)
WORD_COLORS = {
    "better": "#2ca02c",
    "worse": "#d62728",
    "equivalent": "#1f77b4",
    "undecided": "#7f7f7f",
    REFERENCE: "#000000",
}


def mean_column(tuning: pd.DataFrame) -> str:
    return next(c for c in tuning.columns if c.startswith("mean_"))


def tuning_label(family: str, rows: pd.DataFrame) -> str:
    """A family's legend entry: its name, and how else it trains (also_changes) where it does."""
    changes = rows["also_changes"].dropna().astype(str) if "also_changes" in rows else []
    changes = [c for c in changes if c]
    return f"{family} (also: {changes[0]})" if changes else family


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
            label=tuning_label(family, rows),
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
    ax.set_title(
        f"tuning curves: mean and {LEVEL_TEXT} CI (ring: chosen; x: a seed failed)", fontsize=9
    )
    ax.legend(loc="best", framealpha=0.85)
    save(fig, path)


# The forest plot: each family's two HL intervals around its HL estimate, the difference test's
# thick above the row and the equivalence test's thin below it (the offset, in rows), an end that
# is infinite drawn as an arrow at the axis edge.
DIFFERENCE_STYLE = {"linewidth": 5.0, "alpha": 0.45, "solid_capstyle": "butt"}
EQUIVALENCE_STYLE = {"linewidth": 1.3}
OFFSET = 0.14
MARGIN_COLOR = "#1f77b4"


def _finite(*values) -> list[float]:
    """The finite numbers among `values` (numpy's too), as floats."""
    real = [float(v) for v in values if isinstance(v, Real) and not isinstance(v, bool)]
    return [v for v in real if math.isfinite(v)]


def forest_limits(rows: pd.DataFrame, margin: float) -> tuple[float, float]:
    """The x range: every finite estimate and interval end, the margin band and 0, padded."""
    columns = ["hl", "diff_ci_low", "diff_ci_high", "equivalence_low", "equivalence_high"]
    values = _finite(0.0, margin, -margin, *rows.reindex(columns=columns).to_numpy().ravel())
    low, high = min(values), max(values)
    pad = 0.08 * (high - low) if high > low else 1.0
    return low - pad, high + pad


def draw_interval(ax, y: float, low, high, limits, color, style: dict) -> bool:
    """An interval at height y; an infinite end runs to the axis edge and ends in an arrow there.
    Draws nothing when an end is unknown (NaN); returns whether an end was infinite."""
    low, high = float(low), float(high)
    if math.isnan(low) or math.isnan(high):
        return False
    ends = [min(max(low, limits[0]), limits[1]), max(min(high, limits[1]), limits[0])]
    ax.plot(ends, [y, y], color=color, **style)
    unbounded = [(ends[0], "<")] * math.isinf(low) + [(ends[1], ">")] * math.isinf(high)
    for x, head in unbounded:
        ax.plot([x], [y], marker=head, color=color, markersize=6, clip_on=False)
    return bool(unbounded)


def forest_labels(row) -> tuple[str, str]:
    """(left, right) labels of a row: rank, family, multiplier and what else it changes; the word,
    the look and seeds it was decided at, its failed seeds and its intervals' levels."""
    left = f"#{row.rank} {row.family} x{format_value(float(row.multiplier))}"
    changes = row.also_changes if isinstance(row.also_changes, str) else ""
    if changes:
        left += "\nalso: " + changes.replace("; ", ";\n")
    best = " (could be best)" if str(row.could_be_best).lower() == "true" else ""
    right = f"{row.verdict}{best}\nlook {_int(row.look)}, n={_int(row.n_seeds)}"
    right += f", {_int(row.n_failed)} failed"
    if _finite(row.diff_level, row.equivalence_level):
        right += f"\ndiff {level_text(row.diff_level)}, equiv {level_text(row.equivalence_level)}"
    return left, right


def _int(value) -> str:
    return str(int(value)) if _finite(value) else "?"


def draw_forest_rows(ax, rows: pd.DataFrame, limits) -> bool:
    """Each row: the reference's marker on the zero line it owns, or a family's HL estimate and
    its two intervals. Returns whether an interval was unbounded."""
    unbounded = False
    for y, row in zip(np.arange(len(rows))[::-1], rows.itertuples()):
        color = WORD_COLORS.get(row.verdict, "0.4")
        if row.verdict == REFERENCE:
            ax.plot([0], [y], marker="D", color=color, markersize=6, zorder=3)
            continue
        difference = (row.diff_ci_low, row.diff_ci_high)
        equivalence = (row.equivalence_low, row.equivalence_high)
        unbounded |= draw_interval(ax, y + OFFSET, *difference, limits, color, DIFFERENCE_STYLE)
        unbounded |= draw_interval(ax, y - OFFSET, *equivalence, limits, color, EQUIVALENCE_STYLE)
        if _finite(row.hl):
            ax.plot([float(row.hl)], [y], marker="o", color=color, markersize=5, zorder=3)
    return unbounded


def forest_legend(fig, margin: float, unbounded: bool) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ink = "0.25"
    handles = [
        Line2D([], [], color=ink, marker="o", linestyle="none", label="HL estimate"),
        Line2D([], [], color=ink, label="difference test's HL interval", **DIFFERENCE_STYLE),
        Line2D([], [], color=ink, label="equivalence test's HL interval", **EQUIVALENCE_STYLE),
        Line2D([], [], color=WORD_COLORS[REFERENCE], marker="D", label="reference: the 0 line"),
    ]
    if math.isfinite(margin):
        band = f"equivalence margin ±{margin:.3g}"
        handles.append(Patch(color=MARGIN_COLOR, alpha=0.15, linewidth=0, label=band))
    if unbounded:
        handles.append(Line2D([], [], color=ink, marker=">", linestyle="none", label="unbounded"))
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=7, frameon=False)


def draw_forest(verdict: pd.DataFrame, path: Path, save) -> None:
    """Each family against the reference (tuning's pick) on the confirmation seeds: the HL
    estimate of the paired difference, the HL intervals the difference test and the equivalence
    test used (at the levels of the look that decided, written at the right), the +-margin band;
    left the family, its multiplier and also_changes, right its word, look, seeds and failures."""
    rows = verdict.sort_values("rank") if "rank" in verdict else verdict
    fig, ax = plt.subplots(figsize=(TUNING_SIZE[0], 1.9 + 0.62 * len(rows)), layout="constrained")
    margin = float(rows["margin"].iloc[0]) if len(rows) else math.nan
    limits = forest_limits(rows, margin)
    if math.isfinite(margin):
        ax.axvspan(-margin, margin, color=MARGIN_COLOR, alpha=0.15, linewidth=0)
    ax.axvline(0, color=WORD_COLORS[REFERENCE], linewidth=1.0)
    unbounded = draw_forest_rows(ax, rows, limits)
    ax.set_xlim(limits)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    labels = [forest_labels(row) for row in rows.itertuples()]
    positions = np.arange(len(rows))[::-1]
    ax.set_yticks(positions, [left for left, _ in labels], fontsize=7)
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(positions, [text for _, text in labels], fontsize=7)
    for text, row in zip(right.get_yticklabels(), rows.itertuples()):
        text.set_color(WORD_COLORS.get(row.verdict, "0.4"))
    for axis in (ax, right):
        axis.tick_params(axis="y", length=0, pad=7)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel(forest_axis_label(rows), fontsize=8)
    reference = rows.loc[rows["verdict"] == REFERENCE, "family"] if len(rows) else []
    against = f"the reference, {reference.iloc[0]}" if len(reference) else "the reference"
    ax.set_title(f"each family against {against}, on the confirmation seeds", fontsize=9)
    forest_legend(fig, margin, unbounded)
    save(fig, path)


def forest_axis_label(rows: pd.DataFrame) -> str:
    """What the x axis measures: the paired difference on the judging metric, oriented so that
    positive is worse (an accuracy's difference is reference - family, lrstudy.verdict.JUDGING)."""
    metric = str(rows["metric"].iloc[0]) if len(rows) else "final_test_loss"
    sign = JUDGING.get(metric, (None, None, 1.0))[2]
    order = "family - reference" if sign > 0 else "reference - family"
    return f"paired difference in {metric.replace('_', ' ')}, {order} (positive: worse)"


def draw(tuning: pd.DataFrame | None, verdict: pd.DataFrame | None, out: Path, save) -> list:
    """Both figures into `out` (the file names are lrstudy.layout.VERDICT_FIGURES'); their paths."""
    from lrstudy.layout import VERDICT_FIGURES

    tuning_name, forest_name = VERDICT_FIGURES
    paths = [Path(out) / f"{tuning_name}.png", Path(out) / f"{forest_name}.png"]
    draw_tuning(tuning if tuning is not None else pd.DataFrame(), paths[0], save)
    draw_forest(verdict if verdict is not None else pd.DataFrame(), paths[1], save)
    return paths
