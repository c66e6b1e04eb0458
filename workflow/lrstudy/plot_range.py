"""The range test's loss figure: train & valid loss against the step (top) and the loss against the
LR with the suggested LRs (bottom)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from lrstudy import plot_base  # noqa: E402
from lrstudy.plot_base import (  # noqa: E402
    AXIS,
    RANGE_LOSS_SIZE,
    RANGE_TOP,
    Tables,
    band,
    before_first_stop,
    plot_band,
    stop_points,
)
from lrstudy.plot_loss import draw_train_valid, loss_panel, style_handles  # noqa: E402

SUGGESTION_STYLES = {"minimum": ":", "steep": "--", "valley": "-", "slide": "-."}

SUGGESTION_COLORS = {
    "minimum": "#7f7f7f",
    "steep": "#d62728",
    "valley": "#2ca02c",
    "slide": "#9467bd",
}


def draw_range_loss(
    runs: list[str], tables: Tables, colors: dict, title: str, path: Path, labels: dict
):
    """Top: train & valid loss against the step. Bottom: the loss against the LR (log axis), the
    classic range-test view, with the suggested LRs (suggestion.json) as vertical lines."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=RANGE_LOSS_SIZE, constrained_layout=True)
    run_handles = draw_train_valid(
        top, runs, tables, colors, labels, top_factor=RANGE_TOP, until_first_stop=True
    )
    top.set_ylabel(AXIS["loss"])
    top.set_title(title)
    if run_handles:
        top.legend(handles=run_handles + style_handles(tables, runs), loc="best", framealpha=0.85)

    def draw_run(ax, run, color):
        every = tables.run_steps(run)
        if not len(every):
            return None
        frame = before_first_stop(tables, run, every)
        lr = band(every, "step", "lr")[["step", "mean"]].rename(columns={"mean": "lr"})
        raw = band(frame, "step", "train_loss").merge(lr, on="step")
        smooth = band(frame, "step", "smoothed_loss").merge(raw[["step", "lr"]], on="step")
        ax.plot(raw["lr"], raw["mean"], color=color, alpha=0.2, linewidth=0.6)
        plot_band(ax, smooth, "lr", color)
        stops = stop_points(tables, run, every, "lr", "smoothed_loss", color)
        evals = tables.run_evals(run, "range_valid")
        if len(evals):
            merged = band(evals, "step", "loss").merge(raw[["step", "lr"]], on="step")
            plot_band(ax, merged, "lr", color, linestyle=":", marker="o", markersize=3)
        handles = [Line2D([], [], color=color, label=f"{labels[run]}: smoothed train loss")]
        return (
            [smooth["mean"].to_numpy()],
            stops,
            handles + suggestion_lines(ax, tables.suggestions.get(run), run, runs, color),
        )

    handles = loss_panel(
        bottom,
        runs,
        tables,
        colors,
        draw_run,
        xlabel="learning rate (log scale)",
        top_factor=RANGE_TOP,
        log_x=True,
    )
    bottom.set_ylabel(f"train {AXIS['loss']}")
    bottom.set_title("loss against learning rate, suggested LRs")
    if handles:
        bottom.legend(handles=handles, loc="upper left", framealpha=0.85)
    plot_base.save(fig, path)


def suggestion_lines(ax, suggestion: dict | None, run: str, runs: list[str], color) -> list:
    """The range test's suggested LRs (suggestion.json) as vertical lines; their legend handles."""
    handles = []
    sugg = (suggestion or {}).get("suggestions") or {}
    for rule, lr in sugg.items():
        if lr is None or not np.isfinite(lr) or lr <= 0:
            continue
        style = {
            "color": SUGGESTION_COLORS.get(rule, color),
            "linestyle": SUGGESTION_STYLES.get(rule, "-"),
        }
        ax.axvline(lr, linewidth=1.2, **style)
        name = f"{rule} {lr:.2g}" if len(runs) == 1 else f"{run} {rule} {lr:.2g}"
        handles.append(Line2D([], [], label=f"suggested: {name}", **style))
    return handles
